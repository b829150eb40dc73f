"""MasterState transitions on a virtual clock: offers, accepts, timeouts, failover, updates."""

from __future__ import annotations

import os

from mesoslite.ids import AgentId, FrameworkId, TaskId
from mesoslite.master.events import (
    AckOnAgent,
    CloseFramework,
    LaunchOnAgent,
    PersistRegistry,
    RescindEvent,
    SendToFramework,
    ShutdownFrameworkOnAgent,
    UpdateEvent,
)
from mesoslite.master.registry.base import RegistrySnapshot
from mesoslite.model import StatusSource, TaskState, TaskStatus
from mesoslite.resources import parse_resources

from .conftest import Harness, task


def agent_update(fid: FrameworkId, agent_id: AgentId, task_id: str, state: TaskState) -> TaskStatus:
    return TaskStatus(
        TaskId(task_id), fid, agent_id, state, source=StatusSource.AGENT, uuid=os.urandom(16)
    )


def test_a_subscribed_framework_is_offered_the_whole_free_agent(h: Harness) -> None:
    agent = h.agent("cpus:4;mem:1024")
    fid = h.framework()
    offer = h.offer_for(fid)
    assert offer.agent_id == agent
    assert offer.resources == parse_resources("cpus:4;mem:1024")
    assert h.allocate() == {}, "offered resources must not be offered twice"


def test_accept_launches_tasks_and_returns_the_rest_to_the_pool(h: Harness) -> None:
    agent = h.agent("cpus:4;mem:1024")
    fid = h.framework()
    offer = h.offer_for(fid)
    effects = h.launch(fid, offer, "t1", "t2")
    launches = [e for e in effects if isinstance(e, LaunchOnAgent)]
    assert [t.task_id for t in launches[0].tasks] == ["t1", "t2"]
    assert all(t.agent_id == agent for t in launches[0].tasks)
    assert h.state.agents[agent].used == parse_resources("cpus:2;mem:256")
    assert h.state.frameworks[fid].tasks[TaskId("t1")].state is TaskState.STAGING
    again = h.offer_for(fid)
    assert again.resources == parse_resources("cpus:2;mem:768")


def test_terminal_update_frees_resources_and_is_forwarded(h: Harness) -> None:
    agent = h.agent()
    fid = h.framework()
    h.launch(fid, h.offer_for(fid), "t1")
    effects = h.state.status_updates(
        agent, [agent_update(fid, agent, "t1", TaskState.RUNNING),
                agent_update(fid, agent, "t1", TaskState.FINISHED)], h.now
    )
    updates = [e.event for e in effects if isinstance(e, SendToFramework)]
    assert len(updates) == 1 and isinstance(updates[0], UpdateEvent), "one batched event"
    assert [s.state for s in updates[0].statuses] == [TaskState.RUNNING, TaskState.FINISHED]
    assert h.state.agents[agent].used.is_empty()
    assert TaskId("t1") not in h.state.frameworks[fid].tasks
    assert (fid, TaskId("t1")) in h.state.completed_tasks


def test_offer_timeout_rescinds_idle_offers_exactly_on_time(h: Harness) -> None:
    h.agent()
    fid = h.framework()
    offer = h.offer_for(fid)
    h.clock.advance(29.999)
    assert h.state.tick(h.now) == []
    h.clock.advance(0.001)
    effects = h.state.tick(h.now)
    assert SendToFramework(fid, RescindEvent(offer.id)) in effects
    assert len(h.state.offers) == 0
    assert h.offer_for(fid).resources == offer.resources


def test_declined_offer_is_not_reoffered_within_refuse_seconds(h: Harness) -> None:
    h.agent()
    fid = h.framework()
    offer = h.offer_for(fid)
    h.state.decline(fid, [offer.id], 10.0, h.now)
    h.clock.advance(9.999)
    assert h.allocate() == {}
    assert "filter" in h.state.last_reasons.get(fid, "")
    h.clock.advance(0.001)
    assert h.offer_for(fid).agent_id == offer.agent_id


def test_one_decline_may_name_offers_of_several_agents(h: Harness) -> None:
    h.agent(hostname="h1")
    h.agent(hostname="h2")
    fid = h.framework()
    offers = h.allocate()[fid]
    assert len({o.agent_id for o in offers}) == 2
    h.state.decline(fid, [o.id for o in offers], 10.0, h.now)
    assert h.state.offers.get(offers[0].id) is None and h.state.offers.get(offers[1].id) is None
    assert h.allocate() == {}


def test_revive_clears_filters_and_suppress_stops_offers(h: Harness) -> None:
    h.agent()
    fid = h.framework()
    h.state.decline(fid, [h.offer_for(fid).id], 100.0, h.now)
    h.state.suppress(fid)
    assert h.allocate() == {}
    h.state.revive(fid)
    assert h.offer_for(fid)


def test_disconnected_framework_keeps_tasks_until_failover_timeout(h: Harness) -> None:
    agent = h.agent()
    fid = h.framework(failover_timeout_s=60.0)
    h.launch(fid, h.offer_for(fid), "t1")
    h.state.framework_disconnected(fid, h.now)
    h.clock.advance(59.9)
    assert h.state.tick(h.now) == []
    assert TaskId("t1") in h.state.frameworks[fid].tasks
    h.clock.advance(0.1)
    effects = h.state.tick(h.now)
    assert ShutdownFrameworkOnAgent(agent, fid) in effects
    assert fid not in h.state.frameworks
    assert h.state.agents[agent].used.is_empty()
    assert any(isinstance(e, PersistRegistry) for e in effects)


def test_framework_resubscribing_within_failover_timeout_keeps_its_tasks(h: Harness) -> None:
    h.agent()
    fid = h.framework(failover_timeout_s=60.0)
    h.launch(fid, h.offer_for(fid), "t1")
    info = h.state.frameworks[fid].info
    h.state.framework_disconnected(fid, h.now)
    h.clock.advance(30)
    same, _ = h.state.subscribe_framework(info, h.now)
    assert same == fid
    h.clock.advance(60)
    h.state.tick(h.now)
    assert TaskId("t1") in h.state.frameworks[fid].tasks


def test_framework_with_zero_failover_timeout_is_removed_when_it_disconnects(h: Harness) -> None:
    agent = h.agent()
    fid = h.framework(failover_timeout_s=0.0)
    h.launch(fid, h.offer_for(fid), "t1")
    effects = h.state.framework_disconnected(fid, h.now)
    assert ShutdownFrameworkOnAgent(agent, fid) in effects
    assert fid in h.state.completed_frameworks


def test_teardown_kills_tasks_and_closes_the_stream(h: Harness) -> None:
    agent = h.agent()
    fid = h.framework(failover_timeout_s=600)
    h.launch(fid, h.offer_for(fid), "t1")
    effects = h.state.teardown(fid, h.now)
    assert ShutdownFrameworkOnAgent(agent, fid) in effects
    assert CloseFramework(fid) in effects
    late = h.state.status_updates(agent, [agent_update(fid, agent, "t1", TaskState.KILLED)], h.now)
    acks = [e for e in late if isinstance(e, AckOnAgent)]
    assert acks, "updates of a removed framework are acknowledged by the master"


def test_disconnected_agent_becomes_unreachable_after_reregister_timeout(h: Harness) -> None:
    agent = h.agent()
    fid = h.framework()
    h.launch(fid, h.offer_for(fid), "t1")
    h.state.agent_disconnected(agent, h.now)
    h.clock.advance(10)
    effects = h.state.tick(h.now)
    states = [s.state for e in effects if isinstance(e, SendToFramework)
              and isinstance(e.event, UpdateEvent) for s in e.event.statuses]
    assert states == [TaskState.UNREACHABLE]


def test_master_restart_recovers_agents_and_tasks_from_reregistration(h: Harness) -> None:
    agent = h.agent("cpus:4;mem:1024")
    fid = h.framework(failover_timeout_s=60)
    h.launch(fid, h.offer_for(fid), "t1")
    snap = RegistrySnapshot(
        agents={agent: h.state.agents[agent].info},
        frameworks={fid: h.state.frameworks[fid].info},
    )
    spec = h.state.frameworks[fid].tasks[TaskId("t1")].spec
    fresh = Harness()
    fresh.state.recover(snap, fresh.now)
    assert fresh.state.agents[agent].status == "disconnected"
    fresh.state.register_agent(snap.agents[agent], [(fid, spec, TaskState.RUNNING)], fresh.now)
    assert fresh.state.agents[agent].used == parse_resources("cpus:1;mem:128")
    fresh.state.subscribe_framework(snap.frameworks[fid], fresh.now)
    assert fresh.state.frameworks[fid].tasks[TaskId("t1")].state is TaskState.RUNNING


def test_reregistering_agent_that_lost_a_task_reports_it_lost(h: Harness) -> None:
    agent = h.agent()
    fid = h.framework()
    h.launch(fid, h.offer_for(fid), "t1")
    h.state.agent_disconnected(agent, h.now)
    _, effects = h.state.register_agent(h.state.agents[agent].info, [], h.now)
    states = [s.state for e in effects if isinstance(e, SendToFramework)
              and isinstance(e.event, UpdateEvent) for s in e.event.statuses]
    assert states == [TaskState.LOST]
    assert h.state.agents[agent].used.is_empty()


def test_reconcile_answers_known_and_unknown_tasks(h: Harness) -> None:
    agent = h.agent()
    fid = h.framework()
    h.launch(fid, h.offer_for(fid), "t1")
    effects = h.state.reconcile(fid, [(TaskId("t1"), agent), (TaskId("nope"), AgentId(""))], h.now)
    (event,) = [e.event for e in effects if isinstance(e, SendToFramework)]
    assert isinstance(event, UpdateEvent)
    assert [(s.task_id, s.state) for s in event.statuses] == [
        ("t1", TaskState.STAGING), ("nope", TaskState.UNKNOWN)
    ]
    implicit = h.state.reconcile(fid, [], h.now)
    assert [s.task_id for e in implicit for s in e.event.statuses] == ["t1"]  # type: ignore[union-attr]


def test_tasks_keep_their_agent_when_accepted_on_two_agents_in_turn(h: Harness) -> None:
    a1 = h.agent(hostname="h1")
    a2 = h.agent(hostname="h2")
    fid = h.framework()
    offers = h.allocate()[fid]
    assert {o.agent_id for o in offers} == {a1, a2}
    for i, offer in enumerate(offers):
        h.launch(fid, offer, f"t{i}")
    used = {a: str(h.state.agents[a].used) for a in (a1, a2)}
    assert used == {a1: "cpus:1;mem:128", a2: "cpus:1;mem:128"}
    assert h.state.frameworks[fid].used == parse_resources("cpus:2;mem:256")


def test_two_frameworks_share_agents_by_drf(h: Harness) -> None:
    for i in range(4):
        h.agent(hostname=f"h{i}")
    f1, f2 = h.framework("a"), h.framework("b")
    offers = h.allocate()
    assert len(offers[f1]) == 2 and len(offers[f2]) == 2


def test_task_spec_helper_is_valid() -> None:
    assert task("x").resources == parse_resources("cpus:1;mem:128")


def test_a_declined_leftover_does_not_hold_the_agent_back_once_more_is_free(h: Harness) -> None:
    # As Mesos's refused-offer filter: the filter covers what was refused, not the agent.
    agent = h.agent("cpus:2;mem:1024")
    fid = h.framework()
    offer = h.offer_for(fid)
    h.launch(fid, offer, "a", "b", resources="cpus:1;mem:128")
    leftover = h.offer_for(fid)
    assert str(leftover.resources) == "mem:768"
    h.state.decline(fid, [leftover.id], 60.0, h.now)
    assert h.allocate() == {}, "the same leftover must not come back within refuse_seconds"
    h.state.status_updates(
        agent, [TaskStatus(TaskId("a"), fid, agent, TaskState.FINISHED)], h.now
    )
    again = h.offer_for(fid)
    assert str(again.resources) == "cpus:1;mem:896"


def test_free_resources_below_the_minimum_are_not_offered(h: Harness) -> None:
    h.agent("cpus:1;mem:64;disk:1000")
    fid = h.framework()
    offer = h.offer_for(fid)
    h.launch(fid, offer, "all", resources="cpus:0.995;mem:40")
    # cpus:0.005 and mem:24 are left with the disk: below Mesos's MIN_CPUS and MIN_MEM.
    assert h.allocate() == {}
