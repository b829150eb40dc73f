"""JobsCore on a virtual clock: retries and backoff, placement with constraints, services
kept at their count, cron times run once each, concurrency policies, missed runs, and a
restart from the registry documents in the middle of it all."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pytest

from mesoslite.errors import AlreadyExistsError, ConflictError, NotFoundError
from mesoslite.ids import AgentId, FrameworkId, OfferId, TaskId
from mesoslite.jobs.core import JobsCore, Kill
from mesoslite.jobs.documents import job_to_doc
from mesoslite.jobs.model import InstanceState, JobState, RunState
from mesoslite.jobs.spec import parse_job_spec
from mesoslite.model import Offer, StatusSource, TaskSpec, TaskState, TaskStatus
from mesoslite.resources import parse_resources

FW = FrameworkId("fw-jobs")
T0 = dt.datetime(2026, 11, 25, 12, 0, 30, tzinfo=dt.UTC).timestamp()  # 30 s past a minute


def offer(n: int, res: str = "cpus:4;mem:4096", **attrs: str) -> Offer:
    return Offer(
        id=OfferId(f"o-{n}-{id(attrs)}"),
        framework_id=FW,
        agent_id=AgentId(f"a{n}"),
        hostname=f"host-{n}",
        resources=parse_resources(res),
        attributes=attrs,
    )


def status(
    task: TaskSpec | str,
    state: TaskState,
    exit_code: int | None = None,
    agent: str = "a1",
    healthy: bool | None = None,
) -> TaskStatus:
    tid = task.task_id if isinstance(task, TaskSpec) else TaskId(task)
    return TaskStatus(
        tid,
        FW,
        AgentId(agent),
        state,
        source=StatusSource.AGENT,
        exit_code=exit_code,
        healthy=healthy,
    )


def submit(core: JobsCore, text: str, now: float = T0) -> str:
    spec = parse_job_spec(text)
    core.submit(spec, text, now)
    return spec.name


def launch_all(core: JobsCore, offers: Sequence[Offer], now: float) -> list[TaskSpec]:
    placement = core.place(offers, now)
    return [t for _, tasks in placement.launches for t in tasks]


def reloaded(core: JobsCore) -> JobsCore:
    """What a new leading master makes of the registry documents."""
    fresh = JobsCore()
    assert fresh.load({n: job_to_doc(j) for n, j in core.jobs.items()}) == []
    return fresh


BATCH_RETRIES = """
name: flaky
type: batch
command: ./flaky.sh
resources: {cpus: 1, mem: 64}
retries: {limit: 2, backoff_s: 5, factor: 2}
"""


def test_a_batch_job_that_fails_twice_then_succeeds_ends_succeeded_after_3_attempts() -> None:
    core = JobsCore()
    submit(core, BATCH_RETRIES)
    [t1] = launch_all(core, [offer(1)], T0)
    core.on_update(status(t1, TaskState.RUNNING), T0 + 1)
    core.on_update(status(t1, TaskState.FAILED, exit_code=1), T0 + 2)
    inst = core.jobs["flaky"].runs[0].instances[0]
    assert inst.state == InstanceState.BACKOFF and inst.next_attempt_at == T0 + 2 + 5
    assert launch_all(core, [offer(1)], T0 + 6.9) == []  # still backing off
    [t2] = launch_all(core, [offer(1)], T0 + 7)
    core.on_update(status(t2, TaskState.FAILED, exit_code=1), T0 + 8)
    assert inst.next_attempt_at == T0 + 8 + 10  # exponential: 5, then 10
    assert launch_all(core, [offer(1)], T0 + 17.9) == []
    [t3] = launch_all(core, [offer(1)], T0 + 18)
    core.on_update(status(t3, TaskState.FINISHED, exit_code=0), T0 + 19)
    job = core.jobs["flaky"]
    assert job.state == JobState.SUCCEEDED
    assert inst.attempts == 3 and [h.exit_code for h in job.attempt_history()] == [1, 1, 0]
    assert len({t1.task_id, t2.task_id, t3.task_id}) == 3


def test_a_batch_job_out_of_retries_fails_and_kills_its_other_instances() -> None:
    core = JobsCore()
    submit(core, BATCH_RETRIES.replace("limit: 2", "limit: 0") + "instances: 2\n")
    t1, t2 = launch_all(core, [offer(1)], T0)
    kills = core.on_update(status(t1, TaskState.FAILED, exit_code=3), T0 + 1)
    job = core.jobs["flaky"]
    assert job.state == JobState.FAILED and "exit code 3" in job.message
    assert kills == [Kill(t2.task_id, AgentId("a1"))]
    core.on_update(status(t2, TaskState.KILLED), T0 + 2)
    assert job.runs[0].instances[1].state == InstanceState.KILLED


def test_lost_tasks_are_replaced_without_using_up_retries() -> None:
    core = JobsCore()
    submit(core, BATCH_RETRIES.replace("limit: 2", "limit: 0"))
    [t1] = launch_all(core, [offer(1)], T0)
    core.on_update(status(t1, TaskState.GONE), T0 + 1)
    [t2] = launch_all(core, [offer(2)], T0 + 1)
    core.on_update(status(t2, TaskState.FINISHED, exit_code=0), T0 + 2)
    assert core.get("flaky").state == JobState.SUCCEEDED


UNIQUE = """
name: spread
type: batch
command: sleep 100
resources: {cpus: 0.5, mem: 32}
instances: {n}
constraints: [[hostname, UNIQUE]]
"""


def test_hostname_unique_places_one_instance_per_agent_and_says_why_the_fourth_waits() -> None:
    core = JobsCore()
    submit(core, UNIQUE.replace("{n}", "4"))
    tasks = launch_all(core, [offer(1), offer(2), offer(3)], T0)
    assert sorted(t.agent_id for t in tasks) == ["a1", "a2", "a3"]
    job = core.jobs["spread"]
    waiting = job.runs[0].instances[3]
    assert waiting.state == InstanceState.WAITING
    assert "cannot be placed" in waiting.message and "UNIQUE" in waiting.message
    assert "cannot be placed" in job.view().message
    assert core.wants_offers(T0)


def test_resources_no_offer_has_are_explained() -> None:
    core = JobsCore()
    submit(core, UNIQUE.replace("{n}", "1").replace("cpus: 0.5", "cpus: 8"))
    assert launch_all(core, [offer(1)], T0) == []
    msg = core.jobs["spread"].runs[0].instances[0].message
    assert "no offer has cpus:8" in msg


SERVICE = """
name: web
type: service
command: python3 -m http.server
resources: {cpus: 0.5, mem: 64}
instances: 3
retries: {backoff_s: 1}
"""


def test_a_service_replaces_an_instance_that_ended_and_keeps_its_count() -> None:
    core = JobsCore()
    submit(core, SERVICE)
    tasks = launch_all(core, [offer(1)], T0)
    for t in tasks:
        core.on_update(status(t, TaskState.RUNNING), T0 + 1)
    assert core.get("web").state == JobState.HEALTHY
    core.on_update(status(tasks[1], TaskState.KILLED), T0 + 30)
    assert core.get("web").state == JobState.DEPLOYING
    [again] = launch_all(core, [offer(2)], T0 + 30)  # ran 29 s: no backoff
    assert again.task_id.startswith("web.r1.1.")
    core.on_update(status(again, TaskState.RUNNING, agent="a2"), T0 + 31)
    assert core.get("web").state == JobState.HEALTHY


def test_an_unreachable_service_instance_is_replaced_and_killed_if_it_comes_back() -> None:
    core = JobsCore()
    submit(core, SERVICE.replace("instances: 3", "instances: 1"))
    [t1] = launch_all(core, [offer(1)], T0)
    core.on_update(status(t1, TaskState.RUNNING), T0 + 1)
    core.on_update(status(t1, TaskState.UNREACHABLE), T0 + 5)
    [t2] = launch_all(core, [offer(2)], T0 + 5)
    assert t2.agent_id == "a2"
    back = core.on_update(status(t1, TaskState.RUNNING), T0 + 9)
    assert back == [Kill(t1.task_id, AgentId("a1"))]


def test_a_rolling_update_replaces_instances_one_at_a_time() -> None:
    core = JobsCore()
    submit(core, SERVICE)
    tasks = launch_all(core, [offer(1)], T0)
    for t in tasks:
        core.on_update(status(t, TaskState.RUNNING), T0 + 1)
    new = SERVICE.replace("http.server", "http.server 9000")
    _, kills = core.update(parse_job_spec(new), new, T0 + 2)
    assert len(kills) == 1
    assert core.tick(T0 + 3) == []  # one is down: wait for it
    core.on_update(status(kills[0].task_id, TaskState.KILLED), T0 + 4)
    [t] = launch_all(core, [offer(1)], T0 + 4)
    assert "9000" in t.command.display()
    assert core.tick(T0 + 5) == []  # the replacement is not running yet
    core.on_update(status(t, TaskState.RUNNING), T0 + 6)
    assert len(core.tick(T0 + 7)) == 1


CRON = """
name: tick
type: cron
command: date
resources: {cpus: 0.1, mem: 16}
schedule: "* * * * *"
"""


def run_ids(core: JobsCore, name: str) -> list[str]:
    return [r.run_id for r in core.jobs[name].runs]


def test_a_cron_job_runs_once_per_scheduled_time() -> None:
    core = JobsCore()
    submit(core, CRON)
    assert core.jobs["tick"].next_run_at == T0 + 30
    core.tick(T0 + 29)
    assert run_ids(core, "tick") == []
    for dt_s in (30, 30.2, 31, 45, 89):
        core.tick(T0 + dt_s)
    assert run_ids(core, "tick") == [f"c{int(T0 + 30)}"]
    core.tick(T0 + 90)
    assert run_ids(core, "tick") == [f"c{int(T0 + 30)}", f"c{int(T0 + 90)}"]


def test_cron_forbid_skips_a_run_while_the_previous_one_runs() -> None:
    core = JobsCore()
    submit(core, CRON + "concurrency: forbid\n")
    core.tick(T0 + 30)
    [t] = launch_all(core, [offer(1)], T0 + 30)
    core.on_update(status(t, TaskState.RUNNING), T0 + 31)
    core.tick(T0 + 90)
    runs = core.jobs["tick"].runs
    assert [r.state for r in runs] == [RunState.RUNNING, RunState.SKIPPED]
    assert "forbid" in runs[1].message
    assert launch_all(core, [offer(1)], T0 + 91) == []


def test_cron_replace_kills_the_running_one() -> None:
    core = JobsCore()
    submit(core, CRON + "concurrency: replace\n")
    core.tick(T0 + 30)
    [t] = launch_all(core, [offer(1)], T0 + 30)
    kills = core.tick(T0 + 90)
    assert kills == [Kill(t.task_id, AgentId("a1"))]
    assert [r.state for r in core.jobs["tick"].runs] == [RunState.KILLED, RunState.RUNNING]


def test_runs_missed_by_more_than_the_starting_deadline_are_recorded_skipped() -> None:
    core = JobsCore()
    submit(core, CRON + "starting_deadline_s: 20\n")
    core.tick(T0 + 30 + 60 * 3 + 25)  # four times missed, the latest by 25 s
    runs = core.jobs["tick"].runs
    assert [r.state for r in runs] == [RunState.SKIPPED] * 4
    assert all("starting_deadline_s" in r.message for r in runs)
    core.tick(T0 + 30 + 60 * 4 + 5)  # on time again
    assert core.jobs["tick"].runs[-1].state == RunState.RUNNING


def test_after_a_restart_no_scheduled_time_runs_twice_and_none_is_lost() -> None:
    core = JobsCore()
    submit(core, CRON)
    core.tick(T0 + 30)
    [t] = launch_all(core, [offer(1)], T0 + 30)
    # The master restarts: a new core from the registry documents, at a time between two.
    core = reloaded(core)
    core.tick(T0 + 50)
    assert run_ids(core, "tick") == [f"c{int(T0 + 30)}"]
    assert core.active_attempts() == [(t.task_id, AgentId("a1"))]
    # Down across the next time, back 10 s later: the missed time runs (no deadline).
    core = reloaded(core)
    core.tick(T0 + 100)
    assert run_ids(core, "tick") == [f"c{int(T0 + 30)}", f"c{int(T0 + 90)}"]


def test_an_attempt_recorded_but_never_launched_is_started_again_after_a_restart() -> None:
    core = JobsCore()
    submit(core, BATCH_RETRIES.replace("limit: 2", "limit: 0"))
    [t1] = launch_all(core, [offer(1)], T0)  # recorded; the master died before the ACCEPT
    core = reloaded(core)
    core.on_update(status(t1, TaskState.GONE), T0 + 5)  # reconciliation's answer
    [t2] = launch_all(core, [offer(1)], T0 + 5)
    assert t2.task_id != t1.task_id


def test_user_errors_change_nothing() -> None:
    core = JobsCore()
    submit(core, CRON)
    with pytest.raises(AlreadyExistsError):
        submit(core, CRON)
    other = BATCH_RETRIES.replace("flaky", "tick")
    with pytest.raises(ConflictError, match="cannot change"):
        core.update(parse_job_spec(other), other, T0)
    with pytest.raises(NotFoundError):
        core.kill("nope", T0)
    assert core.jobs["tick"].version == 1


def test_kill_ends_the_job_and_its_tasks() -> None:
    core = JobsCore()
    submit(core, SERVICE)
    tasks = launch_all(core, [offer(1)], T0)
    _, kills = core.kill("web", T0 + 1)
    assert sorted(k.task_id for k in kills) == sorted(t.task_id for t in tasks)
    assert core.get("web").state == JobState.KILLED
    assert core.kill("web", T0 + 2)[1] == []  # again: a no-op
    assert not core.wants_offers(T0 + 2)


def test_a_submit_whose_write_failed_is_withdrawn() -> None:
    core = JobsCore()
    submit(core, BATCH_RETRIES)
    core.take_dirty()
    core.jobs["flaky"].state = JobState.SUCCEEDED  # ended: a new submit replaces it
    old = core.jobs["flaky"]
    submit(core, BATCH_RETRIES, now=T0 + 100)
    core.withdraw("flaky", old)
    assert core.jobs["flaky"] is old and not core.dirty
    submit(core, CRON)
    core.withdraw("tick", None)
    assert "tick" not in core.jobs and not core.wants_offers(T0)
