"""`mesoslite task list|logs|kill`: tasks, their output, and stopping them."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING

import click

from mesoslite.cli import CliConfig
from mesoslite.cli._args import checked
from mesoslite.cli._watch import watchable

if TYPE_CHECKING:
    from collections.abc import Callable

    from mesoslite.cli._client import BlockingOperatorClient

TASK_HEADERS = ("ID", "NAME", "FRAMEWORK", "AGENT", "STATE", "EXIT", "UPDATED")
# After a broken `task logs --follow` stream, wait this long before following again, and
# give up after this long without getting anything.
FOLLOW_RETRY_S = 0.2
FOLLOW_RETRY_LIMIT_S = 30.0
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
@watchable
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
    from mesoslite.cli._ids import resolve_framework

    with BlockingOperatorClient(cfg.master) as client:
        framework_id = resolve_framework(client, framework_id)
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

    With --follow, the master streams new output as the task writes it; the command exits 0
    once the task has ended and everything it wrote has been printed.
    """
    from mesoslite.cli._ids import resolve_task_at

    cfg: CliConfig = ctx.obj
    name = "stderr" if use_stderr else "stdout"
    task_id, framework_id = resolve_task_at(cfg.master, task_id, framework_id)
    print_task_file(ctx, cfg.master, task_id, name, framework_id, follow)


def print_task_file(
    ctx: click.Context, master: str, task_id: str, name: str, framework_id: str, follow: bool
) -> None:
    """Write a task's `name` file to stdout byte for byte (with `follow`, until the task has
    ended); Ctrl-C exits EXIT_INTERRUPTED. Shared by `task logs` and `job logs`."""
    from mesoslite.cli._client import BlockingOperatorClient
    from mesoslite.cli.exit_codes import EXIT_INTERRUPTED

    stream = sys.stdout.buffer

    def write(data: bytes) -> None:
        stream.write(data)
        stream.flush()

    try:
        if follow:
            import asyncio  # here, not at the top: `task list` should not pay for it

            asyncio.run(follow_file(master, task_id, name, framework_id, write))
            return
        with BlockingOperatorClient(master) as client:
            copy_file(client, task_id, name, framework_id, write)
    except KeyboardInterrupt:
        ctx.exit(EXIT_INTERRUPTED)


def copy_file(
    client: BlockingOperatorClient, task_id: str, name: str, framework_id: str,
    write: Callable[[bytes], None],
) -> None:
    """Read the file from offset 0 to its current end in chunks and `write` each."""
    offset = 0
    while True:
        chunk = client.read_file(
            task_id, name=name, offset=offset, length=READ_CHUNK_BYTES, framework_id=framework_id,
        )
        if chunk.data:
            write(chunk.data)
            offset += len(chunk.data)
        if not chunk.data or offset >= chunk.size:
            return


async def follow_file(
    master: str, task_id: str, name: str, framework_id: str, write: Callable[[bytes], None]
) -> None:
    """`write` the file from offset 0 as the master streams it, until the task has ended and
    all of it was written (`Operator.FollowFile`). A stream that breaks while the task runs
    (its agent or the master failing over) is followed again from where it stopped, for up to
    `FOLLOW_RETRY_LIMIT_S` without progress."""
    import asyncio
    from contextlib import aclosing

    from mesoslite.cli._client import OperatorClient
    from mesoslite.errors import MesosliteError, UnavailableError

    offset = 0
    loop = asyncio.get_running_loop()
    last_progress = loop.time()
    async with OperatorClient(master) as client:
        while True:
            chunks = client.follow_file(task_id, name, offset, framework_id=framework_id)
            try:
                async with aclosing(chunks):
                    async for chunk in chunks:
                        data = chunk.data[max(0, offset - chunk.offset):]
                        if data:
                            write(data)
                            offset += len(data)
                            last_progress = loop.time()
                        if chunk.end:
                            return
            except UnavailableError as e:
                error: MesosliteError = e  # its agent or the master is failing over: again
            else:
                error = UnavailableError(f"the stream of {name} of task {task_id!r} ended early")
            if loop.time() - last_progress > FOLLOW_RETRY_LIMIT_S:
                raise error
            await asyncio.sleep(FOLLOW_RETRY_S)


@task.command("kill")
@click.argument("task_id", callback=checked("task id"))
@framework_option
@click.pass_obj
def kill_task(cfg: CliConfig, task_id: str, framework_id: str) -> None:
    """Ask the master to kill a task (SIGTERM, then SIGKILL after its grace period).

    Returns once the master has accepted the request; watch `mesoslite task list --all`
    for the task's end. A task that had already ended is left as it is: the command says
    so, with its state, and exits 0.
    """
    from mesoslite.cli._client import BlockingOperatorClient
    from mesoslite.cli._ids import resolve_task

    with BlockingOperatorClient(cfg.master) as client:
        task_id, framework_id = resolve_task(client, task_id, framework_id)
        owner, ended_state = client.kill_task(task_id, framework_id=framework_id)
    if ended_state:
        click.echo(f"task {task_id} of framework {owner} has already ended: {ended_state}")
    else:
        click.echo(f"killing task {task_id} of framework {owner}")
