"""`job suspend|resume|run-now` in `JobsCore`, on virtual time: no run while suspended, the
missed times follow the starting deadline on resume, suspension survives a reload from the
registry documents, and run-now honours each concurrency policy (issue 16)."""

from __future__ import annotations

import pytest

from mesoslite.errors import ConflictError, NotFoundError
from mesoslite.ids import AgentId
from mesoslite.jobs.core import JobsCore, Kill
from mesoslite.jobs.documents import job_to_doc
from mesoslite.jobs.model import JobState, RunState
from mesoslite.model import TaskState
from tests.unit.jobs.test_core import CRON, T0, launch_all, offer, reloaded, status, submit

MINUTE = 60.0
FIRST = T0 + 30  # the first scheduled time after T0 (a whole minute)


def states(core: JobsCore) -> list[RunState]:
    return [r.state for r in core.jobs["tick"].runs]


def test_a_suspended_cron_job_starts_no_run_and_says_suspended() -> None:
    core = JobsCore()
    submit(core, CRON)
    job = core.suspend("tick", T0 + 1)
    assert job.state == JobState.SUSPENDED
    assert job.view().state == JobState.SUSPENDED and job.view().next_run_at is None
    for minutes in range(5):
        core.tick(FIRST + minutes * MINUTE)
    assert core.jobs["tick"].runs == []


def test_resume_without_a_deadline_runs_the_latest_missed_time_and_skips_the_rest() -> None:
    core = JobsCore()
    submit(core, CRON)
    core.suspend("tick", T0 + 1)
    core.tick(FIRST + 3 * MINUTE)  # four times pass while suspended
    job = core.resume("tick", FIRST + 3 * MINUTE + 10)
    assert job.state == JobState.SCHEDULED
    core.tick(FIRST + 3 * MINUTE + 10.2)
    runs = core.jobs["tick"].runs
    assert [r.state for r in runs] == [RunState.SKIPPED] * 3 + [RunState.RUNNING]
    assert all("suspended" in r.message for r in runs[:3])
    assert runs[-1].scheduled_at == FIRST + 3 * MINUTE
    assert core.jobs["tick"].next_run_at == FIRST + 4 * MINUTE


def test_resume_skips_every_missed_time_older_than_the_starting_deadline() -> None:
    core = JobsCore()
    submit(core, CRON + "starting_deadline_s: 20\n")
    core.suspend("tick", T0 + 1)
    core.resume("tick", FIRST + 2 * MINUTE + 25)  # the latest time was missed by 25 s
    core.tick(FIRST + 2 * MINUTE + 25.2)
    assert states(core) == [RunState.SKIPPED] * 3
    assert "starting_deadline_s" in core.jobs["tick"].runs[-1].message
    core.tick(FIRST + 3 * MINUTE)  # on schedule again
    assert states(core)[-1] == RunState.RUNNING


def test_suspension_is_kept_in_the_registry_document() -> None:
    core = JobsCore()
    submit(core, CRON)
    core.suspend("tick", T0 + 1)
    assert core.take_dirty()[0].name == "tick"  # written
    core = reloaded(core)  # a failover: the new leader reads the documents
    core.tick(FIRST + MINUTE)
    assert core.jobs["tick"].runs == []
    assert core.get("tick").view().state == JobState.SUSPENDED
    core.resume("tick", FIRST + MINUTE + 1)
    core = reloaded(core)
    assert core.jobs["tick"].resumed_at == FIRST + MINUTE + 1
    core.tick(FIRST + MINUTE + 2)
    assert states(core)[-1] == RunState.RUNNING


def test_documents_of_jobs_never_suspended_have_no_suspension_keys() -> None:
    core = JobsCore()
    submit(core, CRON)
    assert "suspended_at" not in job_to_doc(core.jobs["tick"])


def test_an_update_of_a_suspended_job_keeps_it_suspended() -> None:
    core = JobsCore()
    spec_text = CRON
    submit(core, spec_text)
    core.suspend("tick", T0 + 1)
    from mesoslite.jobs.spec import parse_job_spec

    new = spec_text.replace("command: date", "command: uptime")
    core.update(parse_job_spec(new), new, T0 + 2)
    core.tick(FIRST + MINUTE)
    assert core.jobs["tick"].runs == [] and core.jobs["tick"].next_run_at is None


def test_suspend_and_resume_twice_change_nothing_the_second_time() -> None:
    core = JobsCore()
    submit(core, CRON)
    core.suspend("tick", T0 + 1)
    core.suspend("tick", T0 + 2)
    assert core.jobs["tick"].suspended_at == T0 + 1
    core.resume("tick", T0 + 3)
    before = job_to_doc(core.jobs["tick"])
    core.resume("tick", T0 + 4)
    assert job_to_doc(core.jobs["tick"]) == before


def test_run_now_starts_a_run_outside_the_schedule_even_while_suspended() -> None:
    core = JobsCore()
    submit(core, CRON)
    core.suspend("tick", T0 + 1)
    job, kills = core.run_now("tick", T0 + 5)
    assert kills == [] and states(core) == [RunState.RUNNING]
    run = job.runs[-1]
    assert run.scheduled_at is None and not run.run_id.startswith("c")
    [t] = launch_all(core, [offer(1)], T0 + 6)
    assert t.task_id.startswith(f"tick.{run.run_id}.0.")
    assert job.state == JobState.SUSPENDED  # still: run-now does not resume it


def test_run_now_with_forbid_refuses_while_a_run_is_active_and_changes_nothing() -> None:
    core = JobsCore()
    submit(core, CRON + "concurrency: forbid\n")
    core.run_now("tick", T0 + 1)
    before = job_to_doc(core.jobs["tick"])
    with pytest.raises(ConflictError, match="forbid"):
        core.run_now("tick", T0 + 2)
    assert job_to_doc(core.jobs["tick"]) == before


def test_run_now_with_replace_kills_the_active_run() -> None:
    core = JobsCore()
    submit(core, CRON + "concurrency: replace\n")
    core.run_now("tick", T0 + 1)
    [t] = launch_all(core, [offer(1)], T0 + 1)
    core.on_update(status(t, TaskState.RUNNING), T0 + 2)
    _, kills = core.run_now("tick", T0 + 3)
    assert kills == [Kill(t.task_id, AgentId("a1"))]
    assert states(core) == [RunState.KILLED, RunState.RUNNING]


def test_run_now_with_allow_adds_a_run_beside_the_active_one() -> None:
    core = JobsCore()
    submit(core, CRON)  # allow is the default
    core.run_now("tick", T0 + 1)
    _, kills = core.run_now("tick", T0 + 2)
    assert kills == [] and states(core) == [RunState.RUNNING, RunState.RUNNING]


BATCH = """
name: once
type: batch
command: "true"
resources: {cpus: 0.1, mem: 16}
"""


@pytest.mark.parametrize("verb", ["suspend", "resume", "run_now"])
def test_steering_a_job_that_is_not_cron_is_refused_and_an_unknown_one_not_found(
    verb: str,
) -> None:
    core = JobsCore()
    submit(core, BATCH)
    before = job_to_doc(core.jobs["once"])
    with pytest.raises(ConflictError, match="only cron jobs"):
        getattr(core, verb)("once", T0 + 1)
    assert job_to_doc(core.jobs["once"]) == before
    with pytest.raises(NotFoundError):
        getattr(core, verb)("nope", T0 + 1)


def test_steering_an_ended_cron_job_is_refused() -> None:
    core = JobsCore()
    submit(core, CRON)
    core.kill("tick", T0 + 1)
    with pytest.raises(ConflictError, match="has ended"):
        core.run_now("tick", T0 + 2)
