"""Issue 6 on a virtual clock: a silent agent is unreachable and reconciled when it returns;
drained and gone agents."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from mesoslite.errors import ConflictError, UnknownAgentError
from mesoslite.ids import TaskId
from mesoslite.master import records as rec
from mesoslite.master.events import (
    DisconnectAgent,
    KillOnAgent,
    PersistRegistry,
    SendToFramework,
    ShutdownFrameworkOnAgent,
    UpdateEvent,
)
from mesoslite.master.registry.base import AdmitAgent, MarkAgentGone, RegistrySnapshot
from mesoslite.master.registry.sqlite import SqliteRegistryStore
from mesoslite.model import TaskState

from .conftest import Harness


@pytest.fixture
def h() -> Harness:
    harness = Harness()
    harness.state.books.agents.silence_limit_s = 1.0 * 3  # agent_ping_timeout_s x max timeouts
    return harness


def updates(effects: list[object]) -> list[tuple[str, TaskState, str]]:
    return [
        (st.task_id, st.state, st.reason)
        for e in effects
        if isinstance(e, SendToFramework) and isinstance(e.event, UpdateEvent)
        for st in e.event.statuses
    ]


def test_an_agent_silent_past_its_ping_timeouts_is_unreachable_and_reconciled_on_return(
    h: Harness,
) -> None:
    agent = h.agent()
    # Partition-aware: its task goes on (see test_stale_tasks.py for the others).
    fid = h.framework(failover_timeout_s=60, partition_aware=True)
    h.launch(fid, h.offer_for(fid), "t1")
    spec = h.state.frameworks[fid].tasks[TaskId("t1")].spec
    h.clock.advance(2.0)
    h.state.agent_seen(agent, h.now)  # a pong
    h.clock.advance(2.9)
    assert h.state.tick(h.now) == []  # silent 2.9 s < 3 s
    h.clock.advance(0.2)
    effects = h.state.tick(h.now)
    assert DisconnectAgent(agent) in effects
    assert updates(effects) == [("t1", TaskState.UNREACHABLE, "AGENT_UNREACHABLE")]
    assert h.state.agents[agent].status == rec.AGENT_UNREACHABLE
    assert h.allocate() == {}  # nothing of it is offered
    # It comes back with its task still running: the framework learns RUNNING again.
    info = h.state.agents[agent].info
    _, effects = h.state.register_agent(info, [(fid, spec, TaskState.RUNNING)], h.now)
    assert updates(effects) == [("t1", TaskState.RUNNING, "RECONCILIATION")]
    assert h.state.agents[agent].status == rec.AGENT_ACTIVE


def test_a_drained_agent_has_its_tasks_killed_and_is_offered_no_more(h: Harness) -> None:
    agent = h.agent()
    fid = h.framework()
    h.launch(fid, h.offer_for(fid), "t1")
    effects = h.state.drain_agent(agent, h.now)
    assert KillOnAgent(agent, fid, TaskId("t1"), 0.0) in effects
    assert h.allocate() == {}
    with pytest.raises(UnknownAgentError):
        h.state.drain_agent(agent + "-nope", h.now)  # type: ignore[arg-type]


def test_an_agent_marked_gone_has_its_tasks_gone_and_may_not_register_again(h: Harness) -> None:
    agent = h.agent()
    fid = h.framework()
    h.launch(fid, h.offer_for(fid), "t1")
    info = h.state.agents[agent].info
    effects = h.state.mark_agent_gone(agent, h.now)
    assert updates(effects) == [("t1", TaskState.GONE, "AGENT_REMOVED")]
    assert ShutdownFrameworkOnAgent(agent, fid) in effects
    assert DisconnectAgent(agent) in effects
    assert PersistRegistry((MarkAgentGone(agent),)) in effects
    assert agent not in h.state.agents
    assert not h.state.frameworks[fid].tasks
    with pytest.raises(ConflictError, match="was marked gone"):
        h.state.register_agent(info, [], h.now)


def test_a_gone_agent_stays_gone_after_a_master_restart(h: Harness, tmp_path: Path) -> None:
    # The refusal lives in the registry: a new master (restart or failover) keeps it.
    agent = h.agent()
    info = h.state.agents[agent].info
    effects = h.state.mark_agent_gone(agent, h.now)
    (persist,) = [e for e in effects if isinstance(e, PersistRegistry)]
    store = SqliteRegistryStore(tmp_path / "registry.sqlite")

    async def round_trip() -> RegistrySnapshot:
        await store.apply([AdmitAgent(info)])
        await store.apply(list(persist.ops))
        snap = await store.load()
        await store.close()
        return snap

    snap = asyncio.run(round_trip())
    assert agent in snap.gone_agents and agent not in snap.agents
    fresh = Harness()
    fresh.state.recover(snap, fresh.now)
    with pytest.raises(ConflictError, match="was marked gone"):
        fresh.state.register_agent(info, [], fresh.now)
