"""The `mesoslite` command: a click group whose subcommands are imported only when used.

Start-up time is part of the contract (`mesoslite run -- true` must be dominated by the task),
so this module imports nothing but click and the standard library. Each noun module
imports the same at its top, and its commands import `_client` (grpc, protobuf) inside the
function. `tests/unit/cli/test_startup.py` holds this line.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from typing import Any

import click

from mesoslite import __version__

DEFAULT_MASTER = "127.0.0.1:5050"
MASTER_ENV = "MESOSLITE_MASTER"

# name -> "module:attribute". A module that does not exist (yet) is left out of the group.
_COMMANDS: dict[str, str] = {
    "agent": "mesoslite.cli.agent:agent",
    "framework": "mesoslite.cli.framework:framework",
    "job": "mesoslite.cli.job:job",
    "task": "mesoslite.cli.task:task",
    "local": "mesoslite.cli.local:local",
    "simulate": "mesoslite.cli.simulate:simulate",
    "role": "mesoslite.cli.role:role",
    "master": "mesoslite.cli.master:master",
    # ---- `mesoslite run`: cli/run.py, written separately. It is wired here, lazily: listed
    # ---- once the module exists, imported only when `run` (or the help) is asked for.
    "run": "mesoslite.cli.run:run",
    "completion": "mesoslite.cli.completion:completion",
    "credentials": "mesoslite.cli.credentials:credentials",
}
# Commands that talk to no master: they get no `--master` of their own (`cli/_globals.py`).
_NO_MASTER = frozenset({"local", "simulate", "completion", "credentials"})


@dataclass(frozen=True, slots=True)
class CliConfig:
    """The group's options, passed to every command as `ctx.obj` (`@click.pass_obj`).

    `master` is the text the user gave (`--master` or `$MESOSLITE_MASTER`); resolve it with
    `mesoslite.cli._client.resolve_master`.
    """

    master: str
    # `--json` before the command: every command with a `--json` of its own prints JSON.
    json: bool = False


def _module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ImportError:
        return False


class LazyGroup(click.Group):
    """A group that imports a subcommand's module only when that subcommand is needed,
    and turns `MesosliteError` into a one-line message and its exit code."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        lazy = [n for n, target in _COMMANDS.items() if _module_exists(target.split(":")[0])]
        return sorted(set(lazy) | set(self.commands))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = self._load(cmd_name)
        if command is None or cmd_name in _NO_MASTER:
            return command
        from mesoslite.cli._globals import add_global_options

        return add_global_options(command)

    def _load(self, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        target = _COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        if not _module_exists(module_name):
            return None
        command = getattr(importlib.import_module(module_name), attr)
        assert isinstance(command, click.Command), target
        return command

    def invoke(self, ctx: click.Context) -> Any:
        from mesoslite.errors import MesosliteError

        try:
            return super().invoke(ctx)
        except MesosliteError as e:
            from mesoslite.cli.exit_codes import exit_code_for

            click.echo(f"mesoslite: {e.message}", err=True)
            ctx.exit(exit_code_for(e))


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "--master",
    envvar=MASTER_ENV,
    default=DEFAULT_MASTER,
    show_default=True,
    metavar="HOST:PORT",
    help=f"the master to talk to: HOST:PORT, a list HOST:PORT,HOST:PORT or "
    f"zk://HOST:PORT[,...]/PATH [env {MASTER_ENV}]; also accepted after the command, "
    "where it wins",
)
@click.option(
    "--json", "as_json", is_flag=True,
    help="print JSON, as the command's own --json (refused by a command without it)",
)
@click.option("--tls-ca", envvar="MESOSLITE_TLS_CA", default="", metavar="PEM",
              help="TLS: the CA the master's certificate must be signed by [env MESOSLITE_TLS_CA]")
@click.option("--tls-cert", envvar="MESOSLITE_TLS_CERT", default="", metavar="PEM",
              help="TLS: our certificate, for a master that requires one (mutual TLS) "
              "[env MESOSLITE_TLS_CERT]")
@click.option("--tls-key", envvar="MESOSLITE_TLS_KEY", default="", metavar="PEM",
              help="TLS: the private key of --tls-cert [env MESOSLITE_TLS_KEY]")
@click.option(
    "--principal", envvar="MESOSLITE_PRINCIPAL", default="", metavar="NAME",
    help="authenticate as this principal, to a master with --credentials "
    "[env MESOSLITE_PRINCIPAL]",
)
@click.option(
    "--secret-file", envvar="MESOSLITE_SECRET_FILE", default="", metavar="FILE",
    help="file whose first line is the principal's secret [env MESOSLITE_SECRET_FILE]",
)
@click.version_option(__version__, prog_name="mesoslite")
@click.pass_context
def cli(
    ctx: click.Context, master: str, as_json: bool, tls_ca: str, tls_cert: str, tls_key: str,
    principal: str, secret_file: str,
) -> None:
    """Run work on a mesoslite cluster and look inside it.

    Exit codes: 0 ok, 1 failure, 2 bad usage or input, 65 rejected by the master,
    66 not found, 69 master unavailable, 70 internal error, 75 timed out, 77 not permitted.
    """
    ctx.obj = CliConfig(master=master, json=as_json)
    if tls_ca or tls_cert or tls_key:
        from mesoslite.cli._globals import set_tls

        set_tls(tls_ca, tls_cert, tls_key)
    if principal or secret_file:
        from mesoslite.cli._globals import use_credentials

        use_credentials(principal, secret_file)


def main() -> None:
    """The `mesoslite` console script."""
    from mesoslite.logging import quiet_cli

    quiet_cli()
    cli.main(prog_name="mesoslite")
