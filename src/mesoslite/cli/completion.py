"""`mesoslite completion bash|zsh|fish`: the shell's completion script (click's own), and
completion of task, job, agent, framework ids and roles from the master.

Completion must never get in the way of typing: ids are asked of the master with a short
deadline, and on any error (no master, a bad address, a timeout) nothing is completed and
nothing is printed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click
from click.shell_completion import CompletionItem, get_completion_class

PROG = "mesoslite"
COMPLETE_VAR = "_MESOSLITE_COMPLETE"
# The deadline of the one call that lists the ids: a completion that lags is worse than none.
COMPLETE_TIMEOUT_S = 1.0
SHELLS = ("bash", "zsh", "fish")

Lister = Callable[[Any], list[tuple[str, str]]]


def _tasks(client: Any) -> list[tuple[str, str]]:
    return [(t.id, f"{t.state} {t.name}") for t in client.tasks(include_completed=True)]


def _agents(client: Any) -> list[tuple[str, str]]:
    return [(a.id, f"{a.hostname} {a.status}") for a in client.agents()]


def _frameworks(client: Any) -> list[tuple[str, str]]:
    return [(f.id, f.name) for f in client.frameworks(include_completed=True)]


def _jobs(client: Any) -> list[tuple[str, str]]:
    return [(j.name, str(getattr(j.state, "value", j.state))) for j in client.jobs()]


def _roles(client: Any) -> list[tuple[str, str]]:
    return [(r.role, "") for r in client.roles()]


# A parameter's name -> what completes it. `name` is a job's name only under `job`.
_BY_PARAM: dict[str, Lister] = {
    "task_id": _tasks,
    "agent_id": _agents,
    "framework_id": _frameworks,
    "role_name": _roles,
}
_BY_GROUP_PARAM: dict[tuple[str, str], Lister] = {("job", "name"): _jobs}


def _master(ctx: click.Context) -> str:
    """The master the command line names so far: after the command, before it, env, default."""
    from mesoslite.cli import DEFAULT_MASTER, CliConfig

    if isinstance(ctx.obj, CliConfig):
        return ctx.obj.master
    return str(ctx.find_root().params.get("master") or DEFAULT_MASTER)


def _completer(lister: Lister) -> Callable[[click.Context, click.Parameter, str], list[Any]]:
    def complete(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
        import logging

        # Nothing may reach the terminal mid-line: kazoo, for one, logs an unreachable
        # ZooKeeper as warnings (this process ends right after completing).
        logging.disable(logging.CRITICAL)
        try:
            from mesoslite.cli._client import BlockingOperatorClient

            with BlockingOperatorClient(_master(ctx), timeout_s=COMPLETE_TIMEOUT_S) as client:
                items = lister(client)
        except Exception:  # noqa: BLE001 (anything: completion must stay silent)
            return []
        return [
            CompletionItem(v, help=h or None) for v, h in sorted(items) if v.startswith(incomplete)
        ]

    return complete


def add_id_completion(command: click.Command, group: str) -> None:
    """Complete `command`'s id arguments and options from the master (`group`: the name of
    the group holding it, e.g. "job")."""
    for param in command.params:
        name = param.name or ""
        lister = _BY_GROUP_PARAM.get((group, name)) or _BY_PARAM.get(name)
        # click keeps a parameter's `shell_complete=` here; one given by its module wins.
        if lister is not None and getattr(param, "_custom_shell_complete", None) is None:
            param._custom_shell_complete = _completer(lister)


@click.command(short_help="Print the shell completion script for bash, zsh or fish.")
@click.argument("shell", type=click.Choice(SHELLS))
def completion(shell: str) -> None:
    """Print the completion script for SHELL; load it in the shell's start-up file.

    Commands, options, and task, job, agent and framework ids and roles complete (ids are
    asked of the master given by --master or $MESOSLITE_MASTER, with a 1 s deadline).

    \b
    Examples:
      bash: echo 'eval "$(mesoslite completion bash)"' >> ~/.bashrc
      zsh:  echo 'eval "$(mesoslite completion zsh)"' >> ~/.zshrc
      fish: mesoslite completion fish > ~/.config/fish/completions/mesoslite.fish
    """
    from mesoslite.cli import cli

    cls = get_completion_class(shell)
    assert cls is not None, shell  # every name of SHELLS is one of click's
    click.echo(cls(cli, {}, PROG, COMPLETE_VAR).source())
