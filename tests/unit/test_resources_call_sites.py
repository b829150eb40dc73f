"""The master's bookkeeping where a subtraction may legitimately go below zero, now that
`Resources.__sub__` refuses to (#17): these call sites use `minus_clamped`."""

from __future__ import annotations

from dataclasses import replace

from mesoslite.model import AgentInfo, FrameworkInfo, TaskState
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
