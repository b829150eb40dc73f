"""`mesoslite job plan|suspend|resume|run-now`: look before submitting, and steer cron jobs.

Registered on the `job` group by `cli/job.py`. Like every noun module this imports only
click and the standard library at its top.
"""

from __future__ import annotations

import time
from typing import IO, TYPE_CHECKING, Any

import click

from mesoslite.cli import CliConfig
from mesoslite.cli._args import checked

if TYPE_CHECKING:
    from mesoslite.jobs.model import JobPlan

PLAN_CHANGE_HEADERS = ("FIELD", "OLD", "NEW")
PLAN_INSTANCE_HEADERS = ("INSTANCE", "ACTION", "HOST", "REASON")

_json_option = click.option("--json", "as_json", is_flag=True,
                            help="print JSON (keys: see below)")
_name_argument = click.argument("name", callback=checked("job name", "job name"))


@click.command("plan")
@click.argument("spec_file", metavar="FILE", type=click.File("r"))
@_json_option
@click.pass_obj
def plan(cfg: CliConfig, spec_file: IO[str], as_json: bool) -> None:
    """Show what submitting FILE would do now, changing nothing.

    For a new job: where each instance would start (an agent), or why it would wait (its
    role's quota, no agent with that much free now, its constraints, then the allocator's
    explanation). For a job of that name that has not ended: the
    update, i.e. the spec fields that change and what happens to each instance (a service's
    running instances are replaced; a batch job's keep running). An estimate on the
    master's current state: where tasks really go depends on the offers made. A spec
    `submit` would refuse is refused the same way (exit 2, or 65 for a type change), a
    task no agent could ever hold included.

    \b
    JSON keys: name, type, action ("create", "update", "resubmit"), version, changes
    (field, old, new), instances (index, action: "launch", "replace", "keep", "stop" or
    "wait"; agent_id, hostname, reason), next_run_at (cron, else null), message.
    """
    import json

    from mesoslite.cli._client import BlockingOperatorClient
    from mesoslite.cli.job import _report_problems, _source

    text = spec_file.read()
    _report_problems(text, _source(spec_file))
    with BlockingOperatorClient(cfg.master) as client:
        result = client.plan_job(text, _source(spec_file))
    if as_json:
        click.echo(json.dumps(_plan_json(result), indent=2))
        return
    click.echo(format_plan(result, time.time()))


def format_plan(p: JobPlan, now: float) -> str:
    """What `job plan FILE` prints."""
    from mesoslite.cli import _output as out
    from mesoslite.cli.job import format_when

    lines = [f"job {p.name} ({p.type.value}): {p.action}, version {p.version}"]
    if p.message:
        lines.append(p.message)
    if p.next_run_at is not None:
        lines.append(f"next run: {format_when(p.next_run_at, now)}")
    if p.action == "update":
        rows = [(c.field, c.old, c.new) for c in p.changes]
        lines += ["", "changes:", out.table(PLAN_CHANGE_HEADERS, rows) if rows else "  (none)"]
    rows2 = [(i.index, i.action, i.hostname or out.NONE, i.reason or out.NONE)
             for i in p.instances]
    lines += ["", "instances:", out.table(PLAN_INSTANCE_HEADERS, rows2)]
    return "\n".join(lines)


def _plan_json(p: JobPlan) -> dict[str, Any]:
    import dataclasses

    doc = dataclasses.asdict(p)
    doc["type"] = p.type.value
    return doc


@click.command("suspend")
@_name_argument
@click.pass_obj
def suspend(cfg: CliConfig, name: str) -> None:
    """Start no run of cron job NAME until `job resume` (runs under way go on).

    Kept in the master's registry: a failover keeps it suspended. `job status` and `job
    list` show SUSPENDED. Prints `suspended job NAME` (or that it already was). An unknown
    name exits 66; a job that is not cron, or has ended, exits 65.
    """
    view = _steer(cfg, "Suspend", name)
    already = view is None
    click.echo(f"job {name} was already suspended" if already else f"suspended job {name}")


@click.command("resume")
@_name_argument
@click.pass_obj
def resume(cfg: CliConfig, name: str) -> None:
    """Run cron job NAME on its schedule again.

    The times missed while it was suspended follow its `starting_deadline_s`: the latest
    runs at once if it is within the deadline (or there is none), the others are recorded
    as skipped. Prints `resumed job NAME` and its next run. Exit codes as `suspend`.
    """
    from mesoslite.cli.job import format_when

    view = _steer(cfg, "Resume", name)
    if view is None:
        click.echo(f"job {name} was not suspended")
        return
    click.echo(f"resumed job {name}; next run {format_when(view.next_run_at, time.time())}")


@click.command("run-now")
@_name_argument
@click.pass_obj
def run_now(cfg: CliConfig, name: str) -> None:
    """Start one run of cron job NAME now, outside its schedule (also while suspended).

    Its concurrency policy applies: `forbid` refuses while a run is under way (exit 65),
    `replace` kills the runs under way, `allow` adds a run beside them. Prints `started run
    RUN of job NAME`. Exit codes otherwise as `suspend`.
    """
    view = _steer(cfg, "RunNow", name)
    assert view is not None and view.runs
    click.echo(f"started run {view.runs[-1].run_id} of job {name}")


def _steer(cfg: CliConfig, verb: str, name: str) -> Any:
    """Call the Jobs service's `verb`; None if it had nothing to do (already suspended,
    not suspended), as the job's state before and after say."""
    from mesoslite.cli._client import BlockingOperatorClient
    from mesoslite.jobs.model import JobState

    with BlockingOperatorClient(cfg.master) as client:
        before = client.job_status(name)
        view = client.steer_job(verb, name)
    if verb == "Suspend" and before.state is JobState.SUSPENDED:
        return None
    if verb == "Resume" and before.state is JobState.SCHEDULED:
        return None
    return view
