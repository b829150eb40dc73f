"""The master's bookkeeping where a subtraction may legitimately go below zero, now that
`Resources.__sub__` refuses to (#17): these call sites use `minus_clamped`."""

from __future__ import annotations

from dataclasses import replace

from mesoslite.ids import TaskId
from mesoslite.model import AgentInfo, FrameworkInfo, TaskState, TaskStatus
from mesoslite.resources import parse_resources as R
from tests.unit.master.conftest import Harness, task


def test_an_agent_re_registering_smaller_than_its_running_tasks_is_offered_what_is_left() -> None:
    h = Harness()
    agent_id = h.agent("cpus:4;mem:1024")
    fid = h.framework()
    h.launch(fid, h.offer_for(fid), "t1", resources="cpus:3;mem:128")
    running = replace(task("t1", "cpus:3;mem:128"), agent_id=agent_id)
    smaller = AgentInfo(id=agent_id, hostname="h1", resources=R("cpus:2;mem:1024"))
    h.state.register_agent(smaller, [(fid, running, TaskState.RUNNING)], h.now)
    # cpus: 2 - 3 stops at 0; the memory the task leaves is still offered.
    assert h.offer_for(fid).resources == R("mem:896")


def test_reserving_a_whole_offer_while_launching_from_it_does_not_break_allocation() -> None:
    h = Harness()
    h.agent("cpus:4;mem:4096")
    ml, _ = h.state.subscribe_framework(FrameworkInfo(name="ml", role="ml"), h.now)
    offer = h.offer_for(ml)
    h.state.accept(
        ml, [offer.id], [task("t1", "cpus:2;mem:128")], 0.0, h.now, reserve=R("cpus:4;mem:4096")
    )
    h.allocate()  # raised "resources subtraction would go negative" before the clamp


def test_offers_of_two_agents_with_the_same_ports_can_each_be_used() -> None:
    # A framework's totals merge the ports of all its agents' offers, so [31000-31010] of
    # two agents is held once there: taking one offer back cannot subtract it twice.
    h = Harness()
    for host in ("h1", "h2"):
        h.agent("cpus:4;mem:1024;ports:[31000-31010]", hostname=host)
    fid = h.framework()
    offers = h.allocate()[fid]
    assert len(offers) == 2
    for i, offer in enumerate(offers):
        h.state.accept(
            fid, [offer.id], [task(f"t{i}", "cpus:1;mem:64;ports:[31000-31000]")], 0.0, h.now
        )
    assert not h.state.frameworks[fid].offered
    # ... and the same for what its tasks use, as they end.
    for i, offer in enumerate(offers):
        done = TaskStatus(TaskId(f"t{i}"), fid, offer.agent_id, TaskState.FINISHED, uuid=b"u%d" % i)
        h.state.status_updates(offer.agent_id, [done], h.now)
    assert not h.state.frameworks[fid].used
