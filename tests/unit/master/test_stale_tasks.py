"""Issue 11 item 3 on a virtual clock: a task its framework was told is lost is killed when
its agent comes back, unless the framework is partition-aware; on a new leader too."""

from __future__ import annotations

import pytest

from mesoslite.ids import AgentId, FrameworkId, TaskId
from mesoslite.master import records as rec
from mesoslite.master.events import AckOnAgent, KillOnAgent, SendToFramework, UpdateEvent
from mesoslite.master.registry.base import RegistrySnapshot
from mesoslite.model import (
    REASON_UNREACHABLE_AGENT_REREGISTERED,
    AgentInfo,
    FrameworkInfo,
    StatusSource,
    TaskSpec,
    TaskState,
    TaskStatus,
)
from mesoslite.resources import Resources, parse_resources

from .conftest import Harness, task

T1 = TaskId("t1")


@pytest.fixture
def h() -> Harness:
    harness = Harness()
    harness.state.books.agents.silence_limit_s = 3.0  # agent_ping_timeout_s x max timeouts
    return harness


def updates(effects: list[object]) -> list[tuple[str, TaskState, str]]:
    return [
        (st.task_id, st.state, st.reason)
        for e in effects
        if isinstance(e, SendToFramework) and isinstance(e.event, UpdateEvent)
        for st in e.event.statuses
    ]


def running_then_silent(
    h: Harness, *, partition_aware: bool
) -> tuple[AgentId, FrameworkId, TaskSpec]:
    """An agent runs t1, then goes silent past its ping timeouts: t1 is reported unreachable."""
    agent = h.agent()
    fid = h.framework(failover_timeout_s=600, partition_aware=partition_aware)
    h.launch(fid, h.offer_for(fid), "t1")
    spec = h.state.frameworks[fid].tasks[T1].spec
    h.state.status_updates(agent, [TaskStatus(T1, fid, agent, TaskState.RUNNING)], h.now)
    h.clock.advance(3.5)
    assert updates(h.state.tick(h.now)) == [("t1", TaskState.UNREACHABLE, "AGENT_UNREACHABLE")]
    return agent, fid, spec


def test_a_task_declared_unreachable_is_killed_when_its_agent_returns(h: Harness) -> None:
    agent, fid, spec = running_then_silent(h, partition_aware=False)
    info = h.state.agents[agent].info
    _, effects = h.state.register_agent(info, [(fid, spec, TaskState.RUNNING)], h.now)
    assert KillOnAgent(agent, fid, T1, 0.0) in effects
    # The framework hears the task's end, never that it runs again.
    assert updates(effects) == [("t1", TaskState.KILLED, REASON_UNREACHABLE_AGENT_REREGISTERED)]
    assert T1 not in h.state.frameworks[fid].tasks
    assert h.state.agents[agent].used == Resources.empty()
    assert h.state.frameworks[fid].used == Resources.empty()
    assert h.state.locate_task(T1, fid).state == TaskState.KILLED
    assert h.state.agents[agent].status == rec.AGENT_ACTIVE


def test_updates_the_agent_still_holds_for_a_killed_stale_task_are_not_forwarded(
    h: Harness,
) -> None:
    agent, fid, spec = running_then_silent(h, partition_aware=False)
    info = h.state.agents[agent].info
    h.state.register_agent(info, [(fid, spec, TaskState.RUNNING)], h.now)
    # A RUNNING it had not delivered: acknowledged by the master, not sent on.
    late = TaskStatus(T1, fid, agent, TaskState.RUNNING, uuid=b"u1", source=StatusSource.AGENT)
    effects = h.state.status_updates(agent, [late], h.now)
    assert updates(effects) == []
    assert AckOnAgent(agent, ((fid, T1, b"u1"),)) in effects
    # Its real end (from the kill) goes to the framework, which acknowledges it.
    end = TaskStatus(T1, fid, agent, TaskState.KILLED, uuid=b"u2", source=StatusSource.AGENT)
    effects = h.state.status_updates(agent, [end], h.now)
    assert updates(effects) == [("t1", TaskState.KILLED, "")]
    assert h.state.locate_task(T1, fid).state == TaskState.KILLED


def test_a_partition_aware_framework_keeps_its_task_when_the_agent_returns(h: Harness) -> None:
    agent, fid, spec = running_then_silent(h, partition_aware=True)
    info = h.state.agents[agent].info
    _, effects = h.state.register_agent(info, [(fid, spec, TaskState.RUNNING)], h.now)
    assert not [e for e in effects if isinstance(e, KillOnAgent)]
    assert updates(effects) == [("t1", TaskState.RUNNING, "RECONCILIATION")]
    assert h.state.frameworks[fid].tasks[T1].state == TaskState.RUNNING


def test_an_agent_back_within_its_reregistration_window_keeps_its_tasks(h: Harness) -> None:
    agent = h.agent()
    fid = h.framework(failover_timeout_s=600)
    h.launch(fid, h.offer_for(fid), "t1")
    spec = h.state.frameworks[fid].tasks[T1].spec
    h.state.agent_disconnected(agent, h.now)
    h.clock.advance(5.0)  # < agent_reregister_timeout_s (10)
    info = h.state.agents[agent].info
    _, effects = h.state.register_agent(info, [(fid, spec, TaskState.RUNNING)], h.now)
    assert not [e for e in effects if isinstance(e, KillOnAgent)]
    assert h.state.frameworks[fid].tasks[T1].state == TaskState.RUNNING


def test_a_task_that_ended_while_its_agent_was_unreachable_is_not_killed(h: Harness) -> None:
    agent, fid, spec = running_then_silent(h, partition_aware=False)
    info = h.state.agents[agent].info
    _, effects = h.state.register_agent(info, [(fid, spec, TaskState.FINISHED)], h.now)
    # Its real end comes as the agent's own update; nothing to kill.
    assert not [e for e in effects if isinstance(e, KillOnAgent)]


def new_leader_with_unreachable_agent(h: Harness) -> tuple[AgentInfo, FrameworkId]:
    """A new leader recovers an agent and a framework from the registry (not their tasks:
    agents are their source of truth); the agent misses its re-registration window."""
    info = AgentInfo(
        hostname="h1", resources=parse_resources("cpus:4;mem:1024"), id=AgentId("ag-1")
    )
    fw_info = FrameworkInfo(name="jobs", failover_timeout_s=600, id=FrameworkId("fw-1"))
    snap = RegistrySnapshot(agents={info.id: info}, frameworks={fw_info.id: fw_info})
    h.state.recover(snap, h.now)
    h.state.subscribe_framework(fw_info, h.now)
    h.clock.advance(10.0)  # agent_reregister_timeout_s
    h.state.tick(h.now)
    assert h.state.agents[info.id].status == rec.AGENT_UNREACHABLE
    return info, fw_info.id


def test_a_new_leader_kills_the_tasks_of_an_agent_that_returns_after_its_window(
    h: Harness,
) -> None:
    info, fid = new_leader_with_unreachable_agent(h)
    agent = info.id
    # The framework reconciles: it is told the task is unreachable (and replaces it).
    effects = h.state.reconcile(fid, [(T1, agent)], h.now)
    assert updates(effects) == [("t1", TaskState.UNREACHABLE, "RECONCILIATION")]
    # The agent comes back with the task still running: it is killed.
    _, effects = h.state.register_agent(info, [(fid, task("t1"), TaskState.RUNNING)], h.now)
    assert KillOnAgent(agent, fid, T1, 0.0) in effects
    assert updates(effects) == [("t1", TaskState.KILLED, REASON_UNREACHABLE_AGENT_REREGISTERED)]
    assert T1 not in h.state.frameworks[fid].tasks
    assert h.state.agents[agent].used == Resources.empty()
    effects = h.state.reconcile(fid, [(T1, agent)], h.now)
    assert [st for _, st, _ in updates(effects)] == [TaskState.KILLED]


def test_a_stale_copy_of_a_task_id_reused_elsewhere_is_killed_and_the_live_one_kept(
    h: Harness,
) -> None:
    info, fid = new_leader_with_unreachable_agent(h)
    other = h.agent(hostname="h2")
    # The new leader never knew t1: the framework starts its replacement with the same id.
    h.launch(fid, h.offer_for(fid), "t1")
    fw = h.state.frameworks[fid]
    assert fw.tasks[T1].agent_id == other
    _, effects = h.state.register_agent(info, [(fid, task("t1"), TaskState.RUNNING)], h.now)
    assert KillOnAgent(info.id, fid, T1, 0.0) in effects
    assert updates(effects) == []  # nothing said that the live t1 would take for its own
    for st in (TaskState.RUNNING, TaskState.KILLED):
        old = TaskStatus(T1, fid, info.id, st, uuid=b"u" + bytes([st]), source=StatusSource.AGENT)
        effects = h.state.status_updates(info.id, [old], h.now)
        assert updates(effects) == []
        assert AckOnAgent(info.id, ((fid, T1, old.uuid),)) in effects
    assert fw.tasks[T1].agent_id == other and fw.tasks[T1].state == TaskState.STAGING
