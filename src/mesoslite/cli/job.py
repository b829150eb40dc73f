"""`mesoslite job submit|validate|list|status|history|kill|remove|update`: the jobs framework
(`plan|suspend|resume|run-now` are in `job_steer.py`).

Like every noun module this imports only click and the standard library at its top; grpc,
protobuf, YAML and the jobs views are imported inside the commands and helpers that use them.
"""

from __future__ import annotations

import sys
import time
from typing import IO, TYPE_CHECKING, Any

import click

from mesoslite import fastjob_text
from mesoslite.cli import CliConfig, job_steer, job_wait
from mesoslite.cli._args import checked

if TYPE_CHECKING:
    from mesoslite.jobs.model import AttemptView, InstanceView, JobView, RunView

# How often `--wait` asks the master for the job's status.
WAIT_INTERVAL_S = 0.5
# How many of the newest runs `job status` shows (`--json` has every run the master keeps).
STATUS_RUNS = 10
LIST_HEADERS = ("NAME", "TYPE", "STATE", "RUNNING", "VERSION", "NEXT RUN", "UPDATED", "MESSAGE")
INSTANCE_HEADERS = ("INSTANCE", "STATE", "ATTEMPT", "HOST", "TASK", "EXIT", "HEALTHY",
                    "STARTED", "MESSAGE")
RUN_HEADERS = ("RUN", "STATE", "SCHEDULED", "STARTED", "FINISHED", "ATTEMPTS", "EXIT CODES",
               "MESSAGE")
HISTORY_HEADERS = ("RUN", "INSTANCE", "ATTEMPT", "TASK", "STATE", "HOST", "STARTED",
                   "FINISHED", "EXIT", "MESSAGE")

json_option = click.option("--json", "as_json", is_flag=True, help="print JSON (keys: see below)")
spec_argument = click.argument("spec_file", metavar="FILE", type=click.File("r"))


@click.group()
def job() -> None:
    """Run batch jobs, services and cron jobs with the master's built-in jobs framework.

    A job is described by a YAML spec (see docs/jobs.md); FILE may be `-` for stdin.
    """


# ---------------------------------------------------------------------------- commands


@job.command("submit")
@spec_argument
@click.option("--wait", is_flag=True,
              help="follow the job until it ends (a service: until HEALTHY; a cron job: until "
              "SCHEDULED) and exit with its outcome")
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=0), default=0, metavar="S",
              help="with --wait: give up after S seconds (exit 75); 0 waits forever")
@click.pass_context
def submit(ctx: click.Context, spec_file: IO[str], wait: bool, timeout_s: float) -> None:
    """Submit a new job and print its name.

    With --wait, a progress line goes to stderr (rewritten in place on a terminal, one line
    per change otherwise) and the exit code is the outcome: 0 when a batch job SUCCEEDED,
    a service is HEALTHY or a cron job is SCHEDULED; 1 when the job FAILED or was KILLED.
    Ctrl-C stops waiting (exit 130); the job keeps running.
    """
    _submit(ctx, spec_file, wait, timeout_s, update=False)


@job.command("update")
@spec_argument
@click.option("--wait", is_flag=True,
              help="follow the job as with `submit --wait` (a service: until HEALTHY again)")
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=0), default=0, metavar="S",
              help="with --wait: give up after S seconds (exit 75); 0 waits forever")
@click.pass_context
def update(ctx: click.Context, spec_file: IO[str], wait: bool, timeout_s: float) -> None:
    """Replace a job's spec (the job is named in it) and print its name.

    A service's instances are replaced a few at a time (its `service.max_unavailable`);
    a cron job's next runs use the new spec. The type of a job cannot change (exit 65).
    """
    _submit(ctx, spec_file, wait, timeout_s, update=True)


@job.command("wait")
@click.argument("name", callback=checked("job name", "job name"))
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=0), default=0, metavar="S",
              help="give up after S seconds (exit 75); 0 waits forever")
# The fast path's hand-over after a broken watch: the `--timeout` the user gave, for the
# message (`--timeout` is then what is left of it).
@click.option("--timeout-given", "said_s", type=float, default=None, hidden=True)
@click.pass_context
def wait(ctx: click.Context, name: str, timeout_s: float, said_s: float | None) -> None:
    """Follow a job until it settles, as `submit --wait` does: the same progress line on
    stderr and exit codes (0 SUCCEEDED, a service HEALTHY or a cron job SCHEDULED; 1 FAILED
    or KILLED; 75 timed out; 130 Ctrl-C, the job keeps running). An unknown name exits 66.
    """
    from mesoslite.cli._client import BlockingOperatorClient
    from mesoslite.cli.exit_codes import EXIT_INTERRUPTED

    cfg: CliConfig = ctx.obj
    with BlockingOperatorClient(cfg.master) as client:
        try:
            code = job_wait.wait_for(client, name, timeout_s=timeout_s,
                                     tty=sys.stderr.isatty(), said_s=said_s)
        except KeyboardInterrupt:
            click.echo(f"\nstopped waiting; job {name} keeps running", err=True)
            code = EXIT_INTERRUPTED
    ctx.exit(code)


@job.command("validate")
@spec_argument
def validate(spec_file: IO[str]) -> None:
    """Check a job spec here, without a master: print `ok: NAME (TYPE)`, or every problem,
    one per line with the path of its field (exit 2)."""
    from mesoslite.jobs.spec import parse_job_spec

    source = _source(spec_file)
    text = spec_file.read()
    _report_problems(text, source)
    spec = parse_job_spec(text, source=source)
    click.echo(f"ok: {spec.name} ({spec.type.value})")


def _report_problems(text: str, source: str) -> None:
    """Print every problem of the spec, one per line with its field, and exit 2 if any."""
    from mesoslite.cli.exit_codes import EXIT_USAGE
    from mesoslite.jobs.spec import validate_job_spec

    problems = validate_job_spec(text, source=source)
    for field, message in problems:
        # A problem of the YAML itself (no field) names the file already.
        click.echo(fastjob_text.problem_line(source, field, message), err=True)
    if problems:
        sys.exit(EXIT_USAGE)


@job.command("list")
@json_option
@click.pass_obj
def list_jobs(cfg: CliConfig, as_json: bool) -> None:
    """List the jobs the framework knows, ended ones included, by name.

    RUNNING is the instances running out of those wanted; NEXT RUN is a cron job's next time.

    \b
    JSON: an array of the objects `job status --json` prints.
    """
    import json

    from mesoslite.cli import _output as out
    from mesoslite.cli._client import BlockingOperatorClient

    with BlockingOperatorClient(cfg.master) as client:
        jobs = sorted(client.jobs(), key=lambda j: j.name)
    if as_json:
        click.echo(json.dumps([job_json(j) for j in jobs], indent=2))
        return
    now = time.time()
    rows = [
        (
            j.name,
            j.type.value,
            j.state.value,
            f"{_count(j.instances, 'RUNNING')}/{j.instances_wanted}",
            j.version,
            format_when(j.next_run_at, now) if j.next_run_at is not None else out.NONE,
            out.format_age(j.updated_at, now),
            j.message or out.NONE,
        )
        for j in jobs
    ]
    click.echo(out.table(LIST_HEADERS, rows))


@job.command("status")
@click.argument("name", callback=checked("job name", "job name"))
@json_option
@click.pass_obj
def status(cfg: CliConfig, name: str, as_json: bool) -> None:
    """Show a job: its state and message, its instances and their attempts, a cron job's
    next run, and its latest runs with their exit codes. A waiting instance says why it
    waits (judged now, as `job plan` does), a failed one why it failed. An unknown name
    exits 66.

    \b
    JSON keys: name, type ("batch", "service", "cron"), state ("PENDING", "RUNNING",
    "DEPLOYING", "HEALTHY", "SCHEDULED", "SUSPENDED", "SUCCEEDED", "FAILED", "KILLED"),
    spec_yaml, instances_wanted, submitted_at, updated_at, version, message, next_run_at
    (null but for cron), instances (index, state, attempt, task_id, agent_id, hostname, started_at,
    exit_code, healthy, next_attempt_at, message), runs (run_id, state, scheduled_at,
    started_at, finished_at, exit_codes, attempts, message), newest last, older_runs (the
    runs dropped past keep_runs, summed up). Times are Unix seconds.
    """
    import json

    from mesoslite.cli._client import BlockingOperatorClient

    with BlockingOperatorClient(cfg.master) as client:
        view = client.job_status(name)
    if as_json:
        click.echo(json.dumps(job_json(view), indent=2))
        return
    click.echo(format_status(view, time.time()))


@job.command("history")
@click.argument("name", callback=checked("job name", "job name"))
@json_option
@click.pass_obj
def history(cfg: CliConfig, name: str, as_json: bool) -> None:
    """List every task a job ran (each attempt of each instance of each run), oldest first.
    An unknown name exits 66.

    \b
    JSON keys: run_id, instance, attempt, task_id, state ("TASK_FINISHED"...), hostname,
    started_at, finished_at, exit_code (null while it runs), message.
    """
    import json

    from mesoslite.cli import _output as out
    from mesoslite.cli._client import BlockingOperatorClient

    with BlockingOperatorClient(cfg.master) as client:
        attempts = client.job_history(name)
    if as_json:
        click.echo(json.dumps([view_json(a) for a in attempts], indent=2))
        return
    click.echo(out.table(HISTORY_HEADERS, [_history_row(a) for a in attempts]))


@job.command("kill")
@click.argument("name", callback=checked("job name", "job name"))
@click.pass_obj
def kill(cfg: CliConfig, name: str) -> None:
    """Kill a job's tasks and end it KILLED (a cron job runs no more).

    Prints `killing job NAME`, or `job NAME has already ended: STATE` (exit 0). An unknown
    name exits 66.
    """
    from mesoslite.cli._client import BlockingOperatorClient

    with BlockingOperatorClient(cfg.master) as client:
        before = client.job_status(name)
        view = client.kill_job(name) if not before.state.terminal else before
    if before.state.terminal:
        click.echo(f"job {view.name} has already ended: {view.state.value}")
    else:
        click.echo(f"killing job {view.name}")


@job.command("remove")
@click.argument("name")
@click.pass_obj
def remove(cfg: CliConfig, name: str) -> None:
    """Forget a job that has ended: its runs and history go from the master's registry
    (the master also removes ended jobs by itself after --job-retention-s, 7 days by default).

    Prints `removed job NAME`. A job that has not ended is refused (exit 65: kill it first);
    an unknown name exits 66.
    """
    from mesoslite.cli._client import BlockingOperatorClient

    with BlockingOperatorClient(cfg.master) as client:
        client.remove_job(name)
    click.echo(f"removed job {name}")


# Commands in modules of their own, one line each.
for _command in (job_steer.plan, job_steer.suspend, job_steer.resume, job_steer.run_now):
    job.add_command(_command)


# ---------------------------------------------------------------------------- submit and wait


def _source(spec_file: IO[str]) -> str:
    name = getattr(spec_file, "name", "") or "-"
    return "<stdin>" if name in ("-", "<stdin>") else str(name)


def _submit(
    ctx: click.Context, spec_file: IO[str], wait: bool, timeout_s: float, *, update: bool
) -> None:
    from mesoslite.cli._client import BlockingOperatorClient
    from mesoslite.cli.exit_codes import EXIT_INTERRUPTED

    cfg: CliConfig = ctx.obj
    text = spec_file.read()
    # Checked here first, so that every problem is listed on its own line with the file's
    # name; the master checks again (with the same code) and against its agents and roles.
    _report_problems(text, _source(spec_file))
    with BlockingOperatorClient(cfg.master) as client:
        view = client.submit_job(text, _source(spec_file), update=update)
        click.echo(view.name)
        if not wait:
            return
        try:
            code = job_wait.wait_for(client, view.name, timeout_s=timeout_s,
                                     tty=sys.stderr.isatty())
        except KeyboardInterrupt:
            click.echo(f"\nstopped waiting; job {view.name} keeps running", err=True)
            code = EXIT_INTERRUPTED
    ctx.exit(code)


def outcome(view: JobView) -> int | None:
    """The exit code of `--wait` once the job is where it waits for, else None."""
    return job_wait.verdict(view.state, view.type)


# ---------------------------------------------------------------------------- formatting


def _count(instances: tuple[InstanceView, ...], state: str) -> int:
    return sum(1 for i in instances if i.state.value == state)


def progress_counts(view: JobView) -> str:
    """`2/3 running (1 unhealthy), 1 waiting`."""
    counts: dict[str, int] = {}
    for i in view.instances:
        counts[i.state.value] = counts.get(i.state.value, 0) + 1
    unhealthy = sum(1 for i in view.instances
                    if i.state.value == "RUNNING" and i.healthy is False)
    return counts_text(counts, view.instances_wanted, unhealthy)


def counts_text(counts: dict[str, int], wanted: int, unhealthy: int) -> str:
    """`progress_counts` from instance counts by state name (also `job_wait`'s)."""
    return fastjob_text.counts_text(counts, wanted, unhealthy)


def progress_line(view: JobView, now: float) -> str:
    """`web: 2/3 running, 1 waiting: hostname UNIQUE: ...`; once settled `web: SUCCEEDED`."""
    from mesoslite.jobs.model import JobState

    settled = view.state.terminal or view.state in (
        JobState.HEALTHY, JobState.SCHEDULED, JobState.SUSPENDED)
    if settled or not view.instances:
        text = f"{view.name}: {view.state.value}"
        if view.next_run_at is not None and not view.state.terminal:
            text += f", next run {format_when(view.next_run_at, now)}"
    else:
        text = f"{view.name}: {progress_counts(view)}"
    return text + (f": {view.message}" if view.message else "")


# The progress line's text and times: one implementation for this and the fast path.
format_time, format_relative, format_when = (
    fastjob_text.format_time, fastjob_text.format_relative, fastjob_text.format_when)


def _exit_codes(codes: tuple[int | None, ...]) -> str:
    return ",".join("-" if c is None else str(c) for c in codes) or "-"


def _instance_row(i: InstanceView, now: float) -> tuple[object, ...]:
    from mesoslite.cli import _output as out

    message = i.message
    if not message and i.next_attempt_at is not None and i.state.value == "BACKOFF":
        message = f"next attempt {format_relative(i.next_attempt_at, now)}"
    return (
        i.index, i.state.value, i.attempt or out.NONE, i.hostname or out.NONE,
        i.task_id or out.NONE, out.format_exit_code(i.exit_code),
        out.NONE if i.healthy is None else out.yes_no(i.healthy),
        out.format_age(i.started_at or 0, now), message or out.NONE,
    )


def _run_row(r: RunView) -> tuple[object, ...]:
    return (
        r.run_id, r.state.value, format_time(r.scheduled_at), format_time(r.started_at),
        format_time(r.finished_at), r.attempts, _exit_codes(r.exit_codes), r.message or "-",
    )


def _history_row(a: AttemptView) -> tuple[object, ...]:
    from mesoslite.cli import _output as out

    return (
        a.run_id, a.instance, a.attempt, a.task_id, a.state, a.hostname or out.NONE,
        format_time(a.started_at), format_time(a.finished_at), out.format_exit_code(a.exit_code),
        a.message or out.NONE,
    )


def format_status(view: JobView, now: float) -> str:
    """What `job status NAME` prints."""
    from mesoslite.cli import _output as out

    lines = [
        f"name:       {view.name} ({view.type.value}, version {view.version})",
        f"state:      {view.state.value}",
        f"instances:  {progress_counts(view)}" if view.instances else "",
        f"message:    {view.message}" if view.message else "",
        f"submitted:  {format_when(view.submitted_at, now)}",
        f"updated:    {format_when(view.updated_at, now)}",
        f"next run:   {format_when(view.next_run_at, now)}" if view.next_run_at is not None
        else "",
    ]
    text = "\n".join(line for line in lines if line)
    if view.instances:
        rows = [_instance_row(i, now) for i in view.instances]
        text += f"\n\ninstances ({view.instances_wanted} wanted):\n"
        text += out.table(INSTANCE_HEADERS, rows)
    if view.runs:
        runs = view.runs[-STATUS_RUNS:]
        more = f", newest last; {len(view.runs) - len(runs)} older" \
            if len(view.runs) > len(runs) else ", newest last"
        text += f"\n\nruns ({len(runs)}{more}):\n"
        text += out.table(RUN_HEADERS, [_run_row(r) for r in runs])
    o = view.older_runs
    if o.runs:
        text += (
            f"\n\nolder runs (past keep_runs): {o.runs}: {o.succeeded} succeeded, "
            f"{o.failed} failed, {o.killed} killed, {o.skipped} skipped; instances "
            f"{o.instances_succeeded} succeeded, {o.instances_failed} failed; "
            f"{o.attempts} attempts"
        )
    return text


# ---------------------------------------------------------------------------- JSON


def view_json(view: Any) -> dict[str, Any]:
    """A jobs view as JSON: enums as their values, tuples as arrays, nested views as objects."""
    import dataclasses
    import enum

    def value(v: Any) -> Any:
        if isinstance(v, enum.Enum):
            return v.value
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            return {f.name: value(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, tuple | list):
            return [value(x) for x in v]
        return v

    doc = value(view)
    assert isinstance(doc, dict)
    return doc


def job_json(view: JobView) -> dict[str, Any]:
    return view_json(view)


# `job logs` and `job list --watch` live in cli/job_logs.py (issue 13).
__import__("mesoslite.cli.job_logs", fromlist=["_"]).extend_job_group(job)
