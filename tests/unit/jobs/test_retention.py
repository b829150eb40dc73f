"""What a job keeps of ended work (issue 11): bounded documents, the newest runs whole and
older ones summed up, removal of ended jobs (by the user and after the retention time, on
the virtual clock), and a stale attempt never counted as a second success."""

from __future__ import annotations

import json

import pytest

from mesoslite.clock import VirtualClock
from mesoslite.errors import ConflictError, NotFoundError
from mesoslite.ids import AgentId
from mesoslite.jobs.core import JobsCore, Kill
from mesoslite.jobs.documents import job_from_doc, job_to_doc
from mesoslite.jobs.model import InstanceState, JobState, RunState
from mesoslite.jobs.records import HISTORY_KEEP
from mesoslite.model import TaskState

from .test_core import BATCH_RETRIES, CRON, T0, launch_all, offer, reloaded, status, submit

BIG = 'name: grow-1\ntype: batch\ninstances: 300\ncommand: "true"\n'
# What a 300-instance ended batch job's document was before issue 11 (an attempt record
# per instance, twice): 127,371 bytes with these agent ids.
BIG_DOC_BEFORE = 127_371


def run_big(core: JobsCore) -> None:
    submit(core, BIG)
    tasks = []
    for n in range(1, 4):
        tasks += launch_all(core, [offer(n, "cpus:100;mem:100000", rack="r1")], T0)
    for t in tasks:
        core.on_update(status(t, TaskState.RUNNING, agent=str(t.agent_id)), T0 + 1)
        core.on_update(status(t, TaskState.FINISHED, exit_code=0, agent=str(t.agent_id)), T0 + 2)


def test_a_300_instance_batch_job_that_ended_is_a_small_document_that_reads_back_whole() -> None:
    core = JobsCore()
    run_big(core)
    job = core.jobs["grow-1"]
    assert job.state == JobState.SUCCEEDED
    doc = job_to_doc(job)
    assert len(doc) < BIG_DOC_BEFORE / 5, len(doc)
    back = job_from_doc(doc)
    assert back.view() == job.view()
    assert back.attempt_history() == job.attempt_history()
    assert len(job.attempt_history()) == 300 and job.history == []  # no failure to keep


def test_history_keeps_the_last_attempt_of_each_instance_and_a_bounded_number_of_failures() -> (
    None
):
    core = JobsCore()
    spec = BATCH_RETRIES.replace("limit: 2", "limit: 1000").replace("backoff_s: 5", "backoff_s: 0")
    submit(core, spec)
    now = T0
    for _ in range(HISTORY_KEEP + 30):
        [t] = launch_all(core, [offer(1)], now)
        core.on_update(status(t, TaskState.FAILED, exit_code=1), now + 1)
        now += 10
    [t] = launch_all(core, [offer(1)], now)
    core.on_update(status(t, TaskState.FINISHED, exit_code=0), now + 1)
    job = core.jobs["flaky"]
    history = job.attempt_history()
    assert len(job.history) == HISTORY_KEEP
    assert len(history) == HISTORY_KEEP + 1
    assert [h.exit_code for h in history[-2:]] == [1, 0]
    assert history[-1].attempt == HISTORY_KEEP + 31
    assert reloaded(core).jobs["flaky"].attempt_history() == history


def test_cron_keeps_keep_runs_runs_summing_up_older_ones_and_only_the_newest_whole() -> None:
    core = JobsCore()
    submit(core, CRON + "keep_runs: 3\ninstances: 2\n")
    now = T0
    for minute in range(6):
        now = T0 + 30 + 60 * minute  # on the minute
        core.tick(now)
        tasks = launch_all(core, [offer(1)], now)
        assert len(tasks) == 2
        code = 0 if minute % 2 == 0 else 3
        for t in tasks:
            core.on_update(status(t, TaskState.FINISHED if code == 0 else TaskState.FAILED,
                                  exit_code=code), now + 1)
    job = core.jobs[next(iter(core.jobs))]
    assert [r.state for r in job.runs] == [RunState.FAILED, RunState.SUCCEEDED, RunState.FAILED]
    assert [len(r.instances) for r in job.runs] == [0, 0, 2]  # older ones summed up
    assert [r.exit_codes for r in job.view().runs] == [(3, 3), (0, 0), (3, 3)]
    older = job.view().older_runs
    assert (older.runs, older.succeeded, older.failed) == (3, 2, 1)
    assert (older.instances_succeeded, older.instances_failed, older.attempts) == (4, 1, 6)
    assert reloaded(core).jobs[job.name].view() == job.view()


def test_remove_refuses_a_running_job_and_an_unknown_name_and_forgets_an_ended_one() -> None:
    core = JobsCore()
    submit(core, BATCH_RETRIES)
    [t] = launch_all(core, [offer(1)], T0)
    with pytest.raises(ConflictError, match="is RUNNING: kill it first"):
        core.remove("flaky")
    with pytest.raises(NotFoundError, match="no job named 'nope'"):
        core.remove("nope")
    assert "flaky" in core.jobs and not core.removed
    _, kills = core.kill("flaky", T0 + 1)
    with pytest.raises(ConflictError, match="still being killed"):
        core.remove("flaky")
    core.on_update(status(t, TaskState.KILLED), T0 + 2)
    job = core.remove("flaky")
    assert "flaky" not in core.jobs and core.take_removed() == ["flaky"]
    core.restore(job)  # the registry write failed
    assert core.jobs["flaky"] is job and not core.removed


def test_ended_jobs_expire_after_the_retention_time_on_the_virtual_clock() -> None:
    clock = VirtualClock(T0)
    core = JobsCore()
    submit(core, BATCH_RETRIES, now=clock.now())
    submit(core, BATCH_RETRIES.replace("flaky", "other"), now=clock.now())
    t1, t2 = launch_all(core, [offer(1)], clock.now())
    clock.advance(10)
    core.on_update(status(t1, TaskState.FINISHED, exit_code=0), clock.now())
    assert core.expired(clock.now(), 3600) == []
    clock.advance(3599)
    assert core.expired(clock.now(), 3600) == []
    clock.advance(1)
    assert core.expired(clock.now(), 3600) == ["flaky"]  # "other" is still running
    assert core.expired(clock.now(), 0) == []  # 0 keeps ended jobs
    clock.advance(100 * 24 * 3600)
    assert core.expired(clock.now(), 0) == []
    # Read back from the registry, the end time is kept.
    assert reloaded(core).expired(clock.now(), 3600) == ["flaky"]


def test_a_stale_attempt_of_a_replaced_instance_is_not_counted_and_is_killed_if_running() -> None:
    """An agent back from a partition (or a ZooKeeper outage) reports the attempt that was
    replaced while it was unreachable."""
    core = JobsCore()
    submit(core, BATCH_RETRIES)
    [old] = launch_all(core, [offer(1)], T0)
    core.on_update(status(old, TaskState.RUNNING), T0 + 1)
    core.on_update(status(old, TaskState.UNREACHABLE), T0 + 5)
    [new] = launch_all(core, [offer(2)], T0 + 5)
    core.on_update(status(new, TaskState.RUNNING, agent="a2"), T0 + 6)
    assert core.on_update(status(old, TaskState.RUNNING), T0 + 7) == [Kill(old.task_id,
                                                                           AgentId("a1"))]
    core.on_update(status(old, TaskState.FINISHED, exit_code=0), T0 + 8)
    inst = core.jobs["flaky"].runs[0].instances[0]
    assert inst.state == InstanceState.RUNNING and core.jobs["flaky"].state == JobState.RUNNING
    core.on_update(status(new, TaskState.FINISHED, exit_code=0, agent="a2"), T0 + 9)
    assert core.jobs["flaky"].state == JobState.SUCCEEDED
    # After a failover, too: neither comes back as a second success.
    fresh = reloaded(core)
    assert fresh.on_update(status(old, TaskState.RUNNING), T0 + 10) == [
        Kill(old.task_id, AgentId("a1"))]
    fresh.on_update(status(old, TaskState.FINISHED, exit_code=0), T0 + 11)
    fresh.on_update(status(new, TaskState.FINISHED, exit_code=0, agent="a2"), T0 + 11)
    job = fresh.jobs["flaky"]
    assert job.state == JobState.SUCCEEDED and job.updated_at == T0 + 9
    assert [h.task_id for h in job.attempt_history()] == [old.task_id, new.task_id]


def test_an_ended_attempt_reported_again_after_a_failover_is_not_counted_twice() -> None:
    """The update was recorded but its acknowledgement lost: the agent sends it again to
    the new leader."""
    core = JobsCore()
    submit(core, BATCH_RETRIES)
    [t1] = launch_all(core, [offer(1)], T0)
    core.on_update(status(t1, TaskState.FAILED, exit_code=1), T0 + 1)
    fresh = reloaded(core)
    fresh.on_update(status(t1, TaskState.FAILED, exit_code=1), T0 + 2)
    inst = fresh.jobs["flaky"].runs[0].instances[0]
    assert inst.failures == 1 and inst.next_attempt_at == T0 + 1 + 5


def test_a_document_of_the_previous_version_is_read() -> None:
    core = JobsCore()
    submit(core, BATCH_RETRIES)
    [t1] = launch_all(core, [offer(1)], T0)
    core.on_update(status(t1, TaskState.FINISHED, exit_code=0), T0 + 1)
    job = core.jobs["flaky"]
    doc = json.loads(job_to_doc(job))
    old_run = {k: v for k, v in doc["runs"][0].items() if k != "ended"}
    a = job.runs[0].instances[0].current
    assert a is not None
    old_run["instances"] = [{
        "index": 0, "state": "SUCCEEDED", "version": 1, "attempts": 1, "failures": 0,
        "current": {"task_id": a.task_id, "number": 1, "agent_id": "a1", "hostname": "host-1",
                    "attributes": {}, "state": "TASK_FINISHED", "launched_at": T0,
                    "finished_at": T0 + 1, "exit_code": 0, "healthy": None, "message": ""},
        "next_attempt_at": None, "message": "", "killing_for": "",
    }]
    old = {k: v for k, v in doc.items() if k not in ("ended_at", "older_runs")}
    old["runs"] = [old_run]
    old["history"] = [{"run_id": "r1", "instance": 0, "attempt": 1, "task_id": a.task_id,
                       "state": "TASK_FINISHED", "hostname": "host-1", "started_at": T0,
                       "finished_at": T0 + 1, "exit_code": 0, "message": ""}]
    back = job_from_doc(json.dumps(old))
    assert back.view() == job.view() and back.ended_at == job.updated_at
    assert back.history == [] and len(back.attempt_history()) == 1


def test_a_replaced_attempt_that_reports_its_real_end_later_is_recorded_and_not_counted() -> None:
    """Its agent was cut off while it ran to the end: `job history` must say how it really
    ended (the chaos suite's "no update lost"), and the instance is still counted once."""
    core = JobsCore()
    submit(core, BATCH_RETRIES)
    [old] = launch_all(core, [offer(1)], T0)
    core.on_update(status(old, TaskState.RUNNING), T0 + 1)
    core.on_update(status(old, TaskState.UNREACHABLE), T0 + 5)
    [new] = launch_all(core, [offer(2)], T0 + 5)
    core.on_update(status(new, TaskState.FINISHED, exit_code=0, agent="a2"), T0 + 6)
    assert core.on_update(status(old, TaskState.FINISHED, exit_code=0), T0 + 9) == []
    job = core.jobs["flaky"]
    assert job.state == JobState.SUCCEEDED
    assert job.runs[0].instances[0].failures == 0
    first = next(h for h in job.attempt_history() if h.task_id == old.task_id)
    assert (first.state, first.exit_code) == ("TASK_FINISHED", 0)
    assert first.message.startswith("ended after it was replaced (TASK_UNREACHABLE)")
    # Kept across a failover, and a repeat of the update changes nothing more.
    fresh = reloaded(core)
    assert fresh.on_update(status(old, TaskState.FINISHED, exit_code=0), T0 + 10) == []
    again = next(h for h in fresh.jobs["flaky"].attempt_history() if h.task_id == old.task_id)
    assert again == first
