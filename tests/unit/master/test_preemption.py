"""Preemption through `MasterState` on a virtual clock (#16): after the grace period a
higher tier's waiting work gets lower preemptible tiers' tasks killed, their frameworks told
first; TASK_KILLED says PREEMPTED; the emptied agent goes to the waiting tier."""

from __future__ import annotations

from dataclasses import replace

import pytest

from mesoslite.allocator.base import Demand
from mesoslite.errors import ValidationError
from mesoslite.ids import AgentId, FrameworkId, TaskId
from mesoslite.master.events import (
    Effect,
    KillOnAgent,
    PreemptionEvent,
    SendToFramework,
    UpdateEvent,
)
from mesoslite.model import (
    MAX_RUNTIME_LABEL,
    REASON_PREEMPTED,
    FrameworkInfo,
    StatusSource,
    TaskState,
    TaskStatus,
)
from mesoslite.resources import parse_resources

from .conftest import Harness, task

R = parse_resources
GRACE = 5.0


def _setup(
    h: Harness, *, preemptible: bool = True, tasks: int = 2
) -> tuple[AgentId, FrameworkId, FrameworkId]:
    """A full agent: `batch` (tier 0) runs `tasks` 1-cpu tasks; `urgent` (tier 10) wants 2."""
    h.state.books.preemption.grace_s = GRACE
    agent = h.agent("cpus:2;mem:1024")
    h.state.set_role_tier("batch", 0, preemptible)
    h.state.set_role_tier("urgent", 10, None)
    low, _ = h.state.subscribe_framework(FrameworkInfo(name="low", role="batch"), h.now)
    offer = h.offer_for(low)
    for i in range(tasks):
        h.clock.advance(1.0)  # t0 is the oldest
        specs = [task(f"t{i}", "cpus:1;mem:256")]
        if i == 0:
            specs = [replace(specs[0], labels={MAX_RUNTIME_LABEL: "100"})]
        h.state.accept(low, [offer.id], specs, 0.0, h.now)
        if i + 1 < tasks:
            offer = h.offer_for(low)
    high, _ = h.state.subscribe_framework(FrameworkInfo(name="high", role="urgent"), h.now)
    h.state.request(high, [Demand(R("cpus:2;mem:512"), 1)])
    return agent, low, high


def _preemption_effects(effects: list[Effect]) -> list[Effect]:
    return [
        e
        for e in effects
        if isinstance(e, KillOnAgent)
        or (isinstance(e, SendToFramework) and isinstance(e.event, PreemptionEvent))
    ]


def test_after_the_grace_the_framework_is_told_then_its_tasks_are_killed(h: Harness) -> None:
    agent, low, high = _setup(h)
    assert _preemption_effects(h.state.tick(h.now)) == []  # the wait starts now
    h.clock.advance(GRACE - 0.01)
    assert _preemption_effects(h.state.tick(h.now)) == []
    h.clock.advance(0.01)
    effects = _preemption_effects(h.state.tick(h.now))
    assert effects[0] == SendToFramework(
        low,
        PreemptionEvent(
            (TaskId("t1"), TaskId("t0")), h.now, "preempted for role urgent (priority 10)"
        ),
    )
    assert effects[1:] == [
        KillOnAgent(agent, low, TaskId("t1"), 0.0),
        KillOnAgent(agent, low, TaskId("t0"), 0.0),
    ]
    # While the victims run, nobody else is chosen.
    h.clock.advance(GRACE * 2)
    assert _preemption_effects(h.state.tick(h.now)) == []


def _killed(h: Harness, agent: AgentId, low: FrameworkId, task_id: str) -> list[Effect]:
    status = TaskStatus(
        TaskId(task_id),
        low,
        agent,
        TaskState.KILLED,
        reason="TASK_KILLED",
        source=StatusSource.AGENT,
        uuid=b"u" + task_id.encode(),
        timestamp=h.now,
    )
    return h.state.status_updates(agent, [status], h.now)


def test_a_preempted_tasks_end_says_preempted_and_the_agent_goes_to_the_waiting_tier(
    h: Harness,
) -> None:
    agent, low, high = _setup(h)
    h.state.tick(h.now)
    h.clock.advance(GRACE)
    h.state.tick(h.now)
    forwarded = [
        s
        for t in ("t0", "t1")
        for e in _killed(h, agent, low, t)
        if isinstance(e, SendToFramework) and isinstance(e.event, UpdateEvent)
        for s in e.event.statuses
    ]
    assert [s.reason for s in forwarded] == [REASON_PREEMPTED, REASON_PREEMPTED]
    offers = h.allocate()
    assert list(offers) == [high]
    assert offers[high][0].resources == R("cpus:2;mem:512")


def test_the_freed_agent_is_held_from_lower_tiers_until_the_waiting_work_is_placed(
    h: Harness,
) -> None:
    agent, low, high = _setup(h)
    h.state.tick(h.now)
    h.clock.advance(GRACE)
    h.state.tick(h.now)
    _killed(h, agent, low, "t1")  # half the room: not enough for urgent's task yet
    offers = h.allocate()
    assert low not in offers  # the freed cpu is not offered back to the low tier
    assert "filtered" in h.state.last_reasons[low]


def test_a_role_that_is_not_preemptible_is_never_preempted(h: Harness) -> None:
    _setup(h, preemptible=False)
    h.state.tick(h.now)
    for _ in range(5):
        h.clock.advance(GRACE)
        assert _preemption_effects(h.state.tick(h.now)) == []


def test_grace_zero_turns_preemption_off(h: Harness) -> None:
    _setup(h)
    h.state.books.preemption.grace_s = 0.0
    h.state.tick(h.now)
    h.clock.advance(GRACE * 10)
    assert _preemption_effects(h.state.tick(h.now)) == []


def test_a_role_is_not_taken_below_its_quota_guarantee(h: Harness) -> None:
    _setup(h)
    h.state.set_quota("batch", R("cpus:1"), None)  # only one task may go: not enough room
    h.state.tick(h.now)
    h.clock.advance(GRACE)
    assert _preemption_effects(h.state.tick(h.now)) == []


def test_an_overrun_task_goes_before_a_younger_healthy_one(h: Harness) -> None:
    agent, low, high = _setup(h)
    h.state.request(high, [Demand(R("cpus:1;mem:256"), 1)])  # room for one task is enough
    h.state.tick(h.now)
    h.clock.advance(GRACE)
    kills = [e for e in h.state.tick(h.now) if isinstance(e, KillOnAgent)]
    assert [k.task_id for k in kills] == ["t1"]  # the youngest: t0 has not overrun yet
    _killed(h, agent, low, "t1")
    h.state.request(high, [Demand(R("cpus:2;mem:512"), 1)])
    # t0 declared 100 s; past it, it is the first victim for the next waiting task.
    h2 = Harness()
    agent2, low2, high2 = _setup(h2)
    h2.state.request(high2, [Demand(R("cpus:1;mem:256"), 1)])
    h2.clock.advance(200.0)
    h2.state.tick(h2.now)
    h2.clock.advance(GRACE)
    kills = [e for e in h2.state.tick(h2.now) if isinstance(e, KillOnAgent)]
    assert [k.task_id for k in kills] == ["t0"]


def test_the_jobs_frameworks_declared_waiting_work_preempts_per_role(h: Harness) -> None:
    h.state.books.preemption.grace_s = GRACE
    agent = h.agent("cpus:2;mem:1024")
    h.state.set_role_tier("batch", 0, True)
    info = FrameworkInfo(name="jobs", role="", roles=("batch", "urgent"))
    jobs, _ = h.state.subscribe_framework(info, h.now)
    offer = h.offer_for(jobs)
    assert offer.allocation_role == "batch"
    h.state.accept(jobs, [offer.id], [task("low", "cpus:2;mem:256")], 0.0, h.now)
    h.state.set_role_tier("urgent", 10, None)
    with pytest.raises(ValidationError, match="role"):
        h.state.declare_waiting(jobs, {"ops": (Demand(R("cpus:1"), 1),)}, h.now)
    h.state.declare_waiting(jobs, {"urgent": (Demand(R("cpus:1;mem:64"), 1),)}, h.now)
    h.state.tick(h.now)
    h.clock.advance(GRACE)
    effects = _preemption_effects(h.state.tick(h.now))
    assert [type(e) for e in effects] == [SendToFramework, KillOnAgent]
    assert effects[1] == KillOnAgent(agent, jobs, TaskId("low"), 0.0)
    # Nothing waits any more: no preemption.
    h.state.declare_waiting(jobs, {}, h.now)
    assert h.state.books.preemption.declared[jobs] == {}
