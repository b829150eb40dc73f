"""Global options accepted after the subcommand too: `mesoslite agent list --master X`.

`add_global_options` gives every leaf command of a (sub)group, once, a `--master` of its own
and merges the group-level `--json` into the command's `--json`. A command added to the
group later gets both for free: `LazyGroup.get_command` applies this to whatever it returns.

Precedence: the later one wins. The group's `--master` (or `$MESOSLITE_MASTER`, or the
default) is read first; a `--master` after the subcommand replaces it, as an option given
twice on one command does in click. `--json` is a flag: given in either place, it is on.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import click

# Set on a command once it has the global options, so that a command reached twice (a
# group asked for the same subcommand again, as shell completion does) is not given two.
_DONE = "_mesoslite_global_options"
MASTER_HELP = "the master to talk to, as the global --master (given here, it wins)"


def add_global_options(command: click.Command, group: str = "") -> click.Command:
    """Give `command` and every command under it the global options, and ids completed
    from the master (`cli/completion.py`); returns `command`. `group`: its group's name."""
    if getattr(command, _DONE, False):
        return command
    setattr(command, _DONE, True)
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            add_global_options(sub, command.name or "")
        return command
    from mesoslite.cli.completion import add_id_completion

    add_id_completion(command, group)
    json_param = next((p for p in command.params if "--json" in p.opts), None)
    if json_param is not None:
        json_param.callback = _merged_json(json_param.callback)
    if not any("--master" in p.opts for p in command.params):
        # Its callback runs whether or not the option is given: it also refuses a
        # group-level `--json` for a command that has no JSON output.
        command.params.append(
            click.Option(
                ["--master"],
                metavar="HOST:PORT",
                default=None,
                expose_value=False,
                help=MASTER_HELP,
                callback=_set_master if json_param else _set_master_no_json,
            )
        )
    return command


def _config(ctx: click.Context) -> Any:
    from mesoslite.cli import DEFAULT_MASTER, CliConfig

    return ctx.obj if isinstance(ctx.obj, CliConfig) else CliConfig(master=DEFAULT_MASTER)


def _set_master(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value is not None:
        # The leaf's own context: only this command sees the replaced master.
        ctx.obj = dataclasses.replace(_config(ctx), master=value)


def _merged_json(original: Any) -> Any:
    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        value = bool(value) or bool(getattr(ctx.obj, "json", False))
        return original(ctx, param, value) if original is not None else value

    return callback


def _set_master_no_json(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if getattr(ctx.obj, "json", False):
        raise click.UsageError(f"--json: '{ctx.command_path}' has no JSON output", ctx)
    _set_master(ctx, param, value)


def set_tls(tls_ca: str, tls_cert: str, tls_key: str) -> None:
    """The group's `--tls-ca/--tls-cert/--tls-key`: every client this process opens uses them.

    Raises:
        click.UsageError: a certificate without its key or the reverse, or a file unreadable.
    """
    from mesoslite.errors import ConfigError
    from mesoslite.security.tls import check_files
    from mesoslite.tls_settings import set_client_security
    from mesoslite.transport import Security

    security = Security(tls_ca=tls_ca, tls_cert=tls_cert, tls_key=tls_key)
    try:
        check_files(security)
    except ConfigError as e:
        raise click.UsageError(str(e)) from None
    set_client_security(security)


def use_credentials(principal: str, secret_file: str) -> None:
    """`--principal`/`--secret-file` (#14): every channel this process opens presents them.

    A bad pair is a usage error naming the flag; the secret is never echoed.
    """
    from mesoslite.errors import ConfigError
    from mesoslite.transport import client_security, use_client_credentials

    try:
        security = client_security(principal, secret_file)
    except ConfigError as e:
        raise click.UsageError(e.message) from None
    use_client_credentials(security.principal, security.secret)
