"""`mesoslite job logs NAME`: the output of a job's latest task, or of one instance's.

Registered on the `job` group by `extend_job_group`, which also gives `job list` its
`--watch` (`cli/job.py` belongs to the jobs commands; this keeps the hook there one call).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from mesoslite.cli import CliConfig
from mesoslite.cli._args import checked

if TYPE_CHECKING:
    from collections.abc import Sequence

    from mesoslite.jobs.model import AttemptView


def latest_attempt(name: str, attempts: Sequence[AttemptView], instance: int | None) -> str:
    """The task id of the newest attempt (of `instance`, if given) that has a task.

    Raises:
        NotFoundError: the job (or that instance) has run no task yet.
    """
    from mesoslite.errors import NotFoundError

    for a in reversed(attempts):
        if a.task_id and (instance is None or a.instance == instance):
            return a.task_id
    which = f"instance {instance} of job {name!r}" if instance is not None else f"job {name!r}"
    raise NotFoundError(f"{which} has run no task yet")


@click.command("logs")
@click.argument("name", callback=checked("job name", "job name"))
@click.option("--instance", type=click.IntRange(min=0), default=None, metavar="I",
              help="the latest task of instance I (from 0) rather than the job's latest")
@click.option("--stderr", "use_stderr", is_flag=True, help="show stderr instead of stdout")
@click.option("-f", "--follow", is_flag=True,
              help="keep printing new output until the task has ended")
@click.pass_context
def logs(
    ctx: click.Context, name: str, instance: int | None, use_stderr: bool, follow: bool
) -> None:
    """Print the stdout (or stderr) of a job's latest task, byte for byte.

    The latest task is the newest attempt of any instance (of any run, for a cron job), or
    with --instance the newest attempt of that instance; `job history` lists them all.
    With --follow, new output is printed as the task writes it, until it ends. A job that
    has run no task yet exits 66.
    """
    from mesoslite.cli._client import BlockingOperatorClient
    from mesoslite.cli.exit_codes import EXIT_INTERRUPTED
    from mesoslite.cli.task import print_task_file

    cfg: CliConfig = ctx.obj
    try:
        with BlockingOperatorClient(cfg.master) as client:
            task_id = latest_attempt(name, client.job_history(name), instance)
    except KeyboardInterrupt:
        ctx.exit(EXIT_INTERRUPTED)
    print_task_file(ctx, cfg.master, task_id, "stderr" if use_stderr else "stdout", "", follow)


def extend_job_group(group: click.Group) -> None:
    """Add `job logs` to `group`, and `--watch` to its `list`."""
    from mesoslite.cli._watch import add_watch

    group.add_command(logs)
    if "list" in group.commands:
        add_watch(group.commands["list"])
