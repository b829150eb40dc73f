"""`mesoslite task list|logs|kill`: tasks, their output, and stopping them."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING

import click

from mesoslite.cli import CliConfig
from mesoslite.cli._args import checked

if TYPE_CHECKING:
    from collections.abc import Callable

    from mesoslite.cli._client import BlockingOperatorClient

TASK_HEADERS = ("ID", "NAME", "FRAMEWORK", "AGENT", "STATE", "EXIT", "UPDATED")
# How often `task logs --follow` asks for more output once it has read all there is.
FOLLOW_INTERVAL_S = 0.2
# Bytes asked for per read; the master caps reads at 1 MiB.
READ_CHUNK_BYTES = 1024 * 1024

framework_option = click.option(
    "--framework", "framework_id", default="", metavar="ID", callback=checked("framework id"),
    help="the task's framework; needed only when several frameworks use the same task id",
)


@click.group()
def task() -> None:
    """Inspect, read the output of, and kill tasks."""


@task.command("list")
@click.option("--all", "include_completed", is_flag=True, help="include completed tasks")
@click.option("--framework", "framework_id", default="", metavar="ID",
              callback=checked("framework id"),
              help="only this framework's tasks")
@click.option("--json", "as_json", is_flag=True, help="print a JSON array (keys: see below)")
@click.pass_obj
def list_tasks(cfg: CliConfig, include_completed: bool, framework_id: str, as_json: bool) -> None:
    """List live tasks, and with --all recently completed ones, oldest update first.

    EXIT is the process's exit code (-N: killed by signal N); UPDATED is the time of the
    task's latest status update.

    \b
    JSON keys: id, name, framework_id, agent_id, state ("TASK_RUNNING"...), terminal,
    exit_code (null until the process ends), message, reason, updated_at, resources,
    command, labels.
    """
    from mesoslite.cli import _output as out
    from mesoslite.cli._client import BlockingOperatorClient

    with BlockingOperatorClient(cfg.master) as client:
        tasks = client.tasks(framework_id=framework_id, include_completed=include_completed)
    tasks.sort(key=lambda t: (t.updated_at, t.framework_id, t.id))
    if as_json:
        click.echo(out.to_json(tasks))
        return
    now = time.time()
    rows = [
        (
            t.id,
            t.name or out.NONE,
            t.framework_id,
            t.agent_id or out.NONE,
            t.state,
            out.format_exit_code(t.exit_code),
            out.format_age(t.updated_at, now),
        )
        for t in tasks
    ]
    click.echo(out.table(TASK_HEADERS, rows))


@task.command("logs")
@click.argument("task_id", callback=checked("task id"))
@click.option("--stderr", "use_stderr", is_flag=True, help="show stderr instead of stdout")
@click.option("-f", "--follow", is_flag=True,
              help="keep printing new output until the task has ended")
@framework_option
@click.pass_context
def task_logs(
    ctx: click.Context, task_id: str, use_stderr: bool, follow: bool, framework_id: str
) -> None:
    """Print a task's stdout (or stderr) from its sandbox, byte for byte.

    With --follow, wait for more output until the task has ended and everything it wrote
    has been printed, then exit 0.
    """
    from mesoslite.cli._client import BlockingOperatorClient
    from mesoslite.cli.exit_codes import EXIT_INTERRUPTED

    cfg: CliConfig = ctx.obj
    stream = sys.stdout.buffer

    def write(data: bytes) -> None:
        stream.write(data)
        stream.flush()

    name = "stderr" if use_stderr else "stdout"
    try:
        with BlockingOperatorClient(cfg.master) as client:
            copy_file(client, task_id, name, framework_id, follow, write)
    except KeyboardInterrupt:
        ctx.exit(EXIT_INTERRUPTED)


def copy_file(
    client: BlockingOperatorClient, task_id: str, name: str, framework_id: str, follow: bool,
    write: Callable[[bytes], None],
) -> None:
    """Read the file from offset 0 in chunks and `write` each; see `task_logs`."""
    from mesoslite.errors import NotFoundError

    offset = 0
    # True once a read was made after a reply said the task had ended: that read saw all
    # the task will ever write, so when it is consumed we are done.
    ended = False
    while True:
        try:
            chunk = client.read_file(
                task_id, name=name, offset=offset, length=READ_CHUNK_BYTES,
                framework_id=framework_id,
            )
        except NotFoundError:
            if follow and _not_started(client, task_id, framework_id):
                time.sleep(FOLLOW_INTERVAL_S)
                continue
            raise
        if chunk.data:
            write(chunk.data)
            offset += len(chunk.data)
            if offset < chunk.size:
                continue
        if not follow or ended:
            return
        if chunk.terminal:
            ended = True
            continue
        time.sleep(FOLLOW_INTERVAL_S)


def _not_started(client: BlockingOperatorClient, task_id: str, framework_id: str) -> bool:
    """True if the task is live, so its sandbox files may just not exist yet."""
    tasks = client.tasks(framework_id=framework_id, include_completed=False)
    return any(t.id == task_id and not t.terminal for t in tasks)


@task.command("kill")
@click.argument("task_id", callback=checked("task id"))
@framework_option
@click.pass_obj
def kill_task(cfg: CliConfig, task_id: str, framework_id: str) -> None:
    """Ask the master to kill a task (SIGTERM, then SIGKILL after its grace period).

    Returns once the master has accepted the request; watch `mesoslite task list --all`
    for the task's end.
    """
    from mesoslite.cli._client import BlockingOperatorClient

    with BlockingOperatorClient(cfg.master) as client:
        owner = client.kill_task(task_id, framework_id=framework_id)
    click.echo(f"killing task {task_id} of framework {owner}")
