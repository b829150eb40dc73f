"""Victim selection for preemption (#16): `allocator.preemption.choose_victims`."""

from __future__ import annotations

from mesoslite.allocator.preemption import Candidate, choose_victims
from mesoslite.ids import AgentId
from mesoslite.resources import Resources, parse_resources

R = parse_resources
A1, A2 = AgentId("a1"), AgentId("a2")


def _task(
    name: str,
    agent: AgentId,
    res: str = "cpus:1;mem:100",
    *,
    started: float = 0.0,
    role: str = "batch",
    priority: int = 0,
    unhealthy: bool = False,
    overrun: bool = False,
) -> Candidate:
    return Candidate(("f1", name), agent, role, priority, R(res), started, unhealthy, overrun)


def _names(victims: list[Candidate]) -> list[str]:
    return [v.key[1] for v in victims]


def _choose(
    candidates: list[Candidate],
    shape: str = "cpus:2;mem:200",
    *,
    count: int = 1,
    priority: int = 10,
    free: dict[AgentId, Resources] | None = None,
    guarantees: dict[str, Resources] | None = None,
) -> list[Candidate]:
    held: dict[str, Resources] = {}
    for c in candidates:
        held[c.role] = held.get(c.role, Resources.empty()) + c.resources
    return choose_victims(
        priority=priority,
        shape=R(shape),
        count=count,
        candidates=candidates,
        free=free if free is not None else {A1: Resources.empty(), A2: Resources.empty()},
        role_held=held,
        guarantees=guarantees or {},
    )


def test_the_agent_needing_the_fewest_victims_is_chosen() -> None:
    tasks = [
        _task("small1", A1, "cpus:1;mem:100"),
        _task("small2", A1, "cpus:1;mem:100"),
        _task("big", A2, "cpus:2;mem:200"),
    ]
    assert _names(_choose(tasks)) == ["big"]


def test_the_youngest_tasks_go_first() -> None:
    tasks = [_task(f"t{i}", A1, started=float(i)) for i in range(4)]
    assert _names(_choose(tasks)) == ["t3", "t2"]


def test_unhealthy_and_overrun_tasks_go_before_younger_healthy_ones() -> None:
    tasks = [
        _task("old-unhealthy", A1, started=1.0, unhealthy=True),
        _task("young", A1, started=9.0),
        _task("old-overrun", A1, started=2.0, overrun=True),
        _task("mid", A1, started=5.0),
    ]
    assert sorted(_names(_choose(tasks))) == ["old-overrun", "old-unhealthy"]


def test_lower_tiers_go_before_higher_ones() -> None:
    tasks = [
        _task("mid-tier", A1, started=9.0, role="mid", priority=5),
        _task("low-tier", A1, started=1.0, role="low", priority=0),
        _task("low-tier2", A1, started=0.5, role="low", priority=0),
    ]
    assert sorted(_names(_choose(tasks))) == ["low-tier", "low-tier2"]


def test_tasks_of_the_same_or_a_higher_tier_are_never_taken() -> None:
    tasks = [_task("peer", A1, "cpus:2;mem:200", priority=10), _task("up", A2, priority=20)]
    assert _choose(tasks) == []


def test_a_role_is_never_taken_below_its_quota_guarantee() -> None:
    tasks = [_task(f"t{i}", A1, started=float(i)) for i in range(3)]
    # batch holds 3 cpus and is guaranteed 2: only one task may go, not enough for 2 cpus.
    assert _choose(tasks, guarantees={"batch": R("cpus:2")}) == []
    assert _names(_choose(tasks, guarantees={"batch": R("cpus:1")})) == ["t2", "t1"]


def test_free_resources_count_so_fewer_victims_are_needed() -> None:
    tasks = [_task("a", A1, started=1.0), _task("b", A1, started=2.0)]
    assert _names(_choose(tasks, free={A1: R("cpus:1;mem:100")})) == ["b"]


def test_a_victim_not_needed_after_all_is_given_back() -> None:
    # Order takes the young small task first, then the big one that alone would do.
    tasks = [
        _task("young-small", A1, "cpus:1;mem:100", started=9.0),
        _task("old-big", A1, "cpus:2;mem:200", started=1.0),
    ]
    assert _names(_choose(tasks)) == ["old-big"]


def test_room_for_several_waiting_tasks_spreads_over_agents() -> None:
    tasks = [_task("x", A1, "cpus:2;mem:200"), _task("y", A2, "cpus:2;mem:200")]
    assert sorted(_names(_choose(tasks, count=2))) == ["x", "y"]
    assert len(_choose(tasks, count=5)) == 2


def test_nothing_is_taken_when_the_shape_fits_already() -> None:
    tasks = [_task("x", A1, "cpus:2;mem:200")]
    assert _choose(tasks, free={A1: Resources.empty(), A2: R("cpus:4;mem:400")}) == []
