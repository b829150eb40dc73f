"""A new leader after a master failover: reconciliation must not declare live tasks gone (#5)."""

from __future__ import annotations

from mesoslite.ids import TaskId
from mesoslite.master.events import SendToFramework, UpdateEvent
from mesoslite.master.registry.base import RegistrySnapshot
from mesoslite.model import TaskState

from .conftest import Harness


def _new_leader(h: Harness) -> tuple[Harness, RegistrySnapshot]:
    snap = RegistrySnapshot(
        agents={a: r.info for a, r in h.state.agents.items()},
        frameworks={f: r.info for f, r in h.state.frameworks.items()},
    )
    fresh = Harness()
    fresh.state.recover(snap, fresh.now)
    return fresh, snap


def _answers(effects: list[object]) -> list[tuple[str, TaskState]]:
    return [
        (s.task_id, s.state) for e in effects
        if isinstance(e, SendToFramework) and isinstance(e.event, UpdateEvent)
        for s in e.event.statuses
    ]


def test_reconcile_of_a_task_on_an_agent_not_yet_reregistered_gets_no_answer() -> None:
    h = Harness()
    agent = h.agent()
    fid = h.framework(failover_timeout_s=60)
    h.launch(fid, h.offer_for(fid), "t1")
    fresh, snap = _new_leader(h)
    fresh.state.subscribe_framework(snap.frameworks[fid], fresh.now)
    # The agent may still come back with the task: saying TASK_GONE now would make the
    # framework launch it a second time.
    assert _answers(fresh.state.reconcile(fid, [(TaskId("t1"), agent)], fresh.now)) == []


def test_a_finished_task_reported_by_a_reregistering_agent_reconciles_as_finished() -> None:
    h = Harness()
    agent = h.agent()
    fid = h.framework(failover_timeout_s=60)
    h.launch(fid, h.offer_for(fid), "t1")
    spec = h.state.frameworks[fid].tasks[TaskId("t1")].spec
    fresh, snap = _new_leader(h)
    # The agent still holds the unacknowledged TASK_FINISHED update of t1.
    fresh.state.register_agent(snap.agents[agent], [(fid, spec, TaskState.FINISHED)], fresh.now)
    fresh.state.subscribe_framework(snap.frameworks[fid], fresh.now)
    answers = _answers(fresh.state.reconcile(fid, [(TaskId("t1"), agent)], fresh.now))
    assert answers == [("t1", TaskState.FINISHED)]
    assert fresh.state.agents[agent].used.is_empty()
