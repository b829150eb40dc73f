"""The simulator paces allocation as the master does: on the `VirtualClock`, a pass the
master's `ALLOCATION_BATCH_S` after a change wants one, the change a pass sets off included;
and its role rule is the master's."""

from __future__ import annotations

import pytest

from mesoslite.clock import VirtualClock
from mesoslite.errors import ValidationError
from mesoslite.master.constants import ALLOCATION_BATCH_S
from mesoslite.sim.engine import Simulation
from mesoslite.sim.trace import parse_cluster, parse_workload


def one_task(name: str, *, demands: bool, submit_s: float = 0.0) -> dict[str, object]:
    return {"name": name, "demands": demands,
            "tasks": [{"resources": "cpus:1;mem:64", "duration_s": 10, "submit_s": submit_s}]}


def test_a_task_is_launched_the_masters_batching_time_after_it_is_submitted() -> None:
    cluster = parse_cluster({"agents": [{"resources": "cpus:4;mem:1024"}]})
    workload = parse_workload({"frameworks": [one_task("a", demands=True, submit_s=3.5)]})
    sim = Simulation(cluster, workload, "drf")
    result = sim.run()
    assert sim.frameworks[0].waits == [pytest.approx(ALLOCATION_BATCH_S)]
    assert result.makespan_s == pytest.approx(3.5 + ALLOCATION_BATCH_S + 10)


def test_what_an_accept_leaves_is_offered_again_one_batch_later_not_at_the_next_interval() -> (
    None
):
    # Whole-agent offers: the first framework takes 1 cpu of 4 and filters the rest for
    # itself; the accept wants a pass, as in the master, so the second is offered the rest
    # one batch later (not `allocation_interval_s` later).
    cluster = parse_cluster({"agents": [{"resources": "cpus:4;mem:1024"}],
                             "allocation_interval_s": 5})
    workload = parse_workload(
        {"frameworks": [one_task("a", demands=False), one_task("b", demands=False)]})
    sim = Simulation(cluster, workload, "drf")
    result = sim.run()
    waits = sorted(w for fw in sim.frameworks for w in fw.waits)
    assert waits == [pytest.approx(ALLOCATION_BATCH_S), pytest.approx(2 * ALLOCATION_BATCH_S)]
    assert result.passes == 2


def test_the_simulation_runs_on_a_virtual_clock_that_jumps_from_timer_to_timer() -> None:
    clock = VirtualClock(start=0.0)
    fired: list[float] = []
    clock.call_later(2.0, lambda: fired.append(clock.now()))
    cancel = clock.call_later(1.0, lambda: fired.append(-1.0))
    cancel()
    # A timer set by a timer for the same instant fires in the same jump.
    clock.call_later(3.0, lambda: clock.call_later(0.0, lambda: fired.append(clock.now())))
    assert clock.next_timer_at() == 2.0  # the cancelled one is skipped
    assert clock.advance_to(2.0) == 1 and fired == [2.0]
    assert clock.advance_to(3.0) == 2 and fired == [2.0, 3.0]
    assert clock.next_timer_at() is None
    clock.advance_to(1.0)  # never back
    assert clock.now() == 3.0


def test_a_role_the_master_refuses_is_refused_with_the_masters_words() -> None:
    with pytest.raises(ValidationError, match="must be at most 255 characters, got 256") as err:
        parse_workload({"frameworks": [{**one_task("a", demands=True), "role": "x" * 256}]})
    assert err.value.field == "workload.yaml: frameworks[0].role"
