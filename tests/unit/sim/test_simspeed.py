"""The simulator at scale (#15): tasks of one agent that end together end as one batch of
updates, preempted tasks leave their batch, and a run keeps no per-task record behind."""

from __future__ import annotations

import gc

import pytest

from mesoslite.sim.engine import Simulation
from mesoslite.sim.trace import parse_cluster, parse_workload


def _run(max_events: int) -> Simulation:
    cluster = parse_cluster({"agents": [{"resources": "cpus:64;mem:65536"}]})
    workload = parse_workload(
        {
            "frameworks": [
                {
                    "name": "a",
                    "demands": True,
                    "tasks": [{"count": 64, "resources": "cpus:1;mem:64", "duration_s": 10}],
                }
            ]
        }
    )
    sim = Simulation(cluster, workload, "drf")
    sim.run(max_events=max_events)
    return sim


def test_tasks_of_one_agent_that_end_together_end_in_one_event() -> None:
    # 64 tasks launched in one pass on one agent, all 10 s long: one timer ends them (an
    # arrival, a submit, a pass, the end: not 64 ends).
    sim = _run(max_events=8)
    (fw,) = sim.frameworks
    assert fw.finished == 64 and fw.running == 0
    assert not sim.state.framework(fw.id).tasks
    assert all(a.used.is_empty() for a in sim.state.agents.values())


def test_a_run_leaves_no_running_task_nor_pending_end_behind() -> None:
    sim = _run(max_events=100)
    assert not sim._running and not sim._endings
    assert sim.clock.next_timer_at() is None


@pytest.mark.parametrize("allocator", ["drf", "fair"])
def test_preempted_tasks_leave_their_batch_and_the_rest_still_end(allocator: str) -> None:
    # A low tier fills the agent with tasks that end together; a high tier arrives and
    # preempts some of them. The batch's other tasks end on time, the preempted ones
    # run again, and every task of both tiers finishes.
    cluster = parse_cluster(
        {
            "agents": [{"resources": "cpus:8;mem:8192"}],
            "roles": {"hi": {"priority": 10}, "lo": {"preemptible": True}},
            "preemption_grace_s": 1,
        }
    )
    workload = parse_workload(
        {
            "frameworks": [
                {
                    "name": "lo",
                    "role": "lo",
                    "demands": True,
                    "tasks": [{"count": 8, "resources": "cpus:1;mem:64", "duration_s": 100}],
                },
                {
                    "name": "hi",
                    "role": "hi",
                    "demands": True,
                    "arrive_s": 5,
                    "tasks": [{"count": 2, "resources": "cpus:1;mem:64", "duration_s": 10}],
                },
            ]
        }
    )
    sim = Simulation(cluster, workload, allocator)
    was_enabled = gc.isenabled()
    result = sim.run()
    assert gc.isenabled() == was_enabled
    lo, hi = sim.frameworks
    assert hi.finished == 2
    assert lo.preempted >= 1
    assert lo.finished == 8
    assert result.finished == 10
    assert not sim._running and not sim._endings
