"""Regressions for the allocator bugs of issue #16 (part 2), each on a compact scenario."""

from __future__ import annotations

import gc

from mesoslite.allocator.base import Quota
from mesoslite.allocator.hierarchical import HierarchicalAllocator
from mesoslite.allocator.loader import load_allocator
from mesoslite.resources import parse_resources

from tests.unit.allocator.harness import AllocatorHarness

R = parse_resources


def test_issue16_unallocated_reservation_counts_towards_its_roles_guarantee() -> None:
    # a1 is all reserved for q1, which is guaranteed less than that: its reservation covers
    # the guarantee, so nothing unreserved is held back for it and `other` gets a2 (Mesos).
    h = AllocatorHarness(
        agents="""
        a1  cpus:2;mem:2048  reserved.q1=cpus:2;mem:2048
        a2  cpus:1;mem:1024
        """,
        frameworks="f  other  -",
        quotas={"q1": Quota(guarantee=R("cpus:1;mem:1024"))},
    )
    assert h.offers(h.allocate()) == {"f": ["a2"]}


def test_issue16_a_reservation_below_the_guarantee_still_holds_back_the_rest() -> None:
    # q1's reservation covers half its guarantee: the other half of a2 is held back.
    h = AllocatorHarness(
        agents="""
        a1  cpus:1;mem:1024  reserved.q1=cpus:1;mem:1024
        a2  cpus:2;mem:2048
        """,
        frameworks="f  other  -",
        quotas={"q1": Quota(guarantee=R("cpus:2;mem:2048"))},
    )
    (grant,) = h.allocate().grants
    assert grant.agent_id == "a2"
    assert grant.resources == R("cpus:1;mem:1024")


def test_issue16_a_childs_reservation_counts_towards_its_parents_guarantee() -> None:
    h = AllocatorHarness(
        agents="""
        a1  cpus:2;mem:2048  reserved.eng/ml=cpus:2;mem:2048
        a2  cpus:1;mem:1024
        """,
        frameworks="f  other  -",
        quotas={"eng": Quota(guarantee=R("cpus:1;mem:1024"))},
    )
    assert h.offers(h.allocate()) == {"f": ["a2"]}


def test_issue16_min_allocatable_counts_a_roles_reservation_with_the_unreserved() -> None:
    # Neither 0.005 cpus nor 16 MB is worth an offer alone; together (0.01 cpus) they are,
    # for role1, which may use both. Another role may use only the unreserved half.
    h = AllocatorHarness(
        agents="a1  cpus:0.01;mem:32  reserved.role1=cpus:0.005;mem:16",
        frameworks="""
        f1  role1  -
        f2  role2  -
        """,
    )
    result = h.allocate()
    assert h.offers(result) == {"f1": ["a1"]}
    (grant,) = result.grants
    assert grant.resources == R("cpus:0.01;mem:32")
    assert grant.reserved == {"role1": R("cpus:0.005;mem:16")}


def test_issue16_min_allocatable_is_still_per_role_for_other_roles() -> None:
    h = AllocatorHarness(
        agents="a1  cpus:0.01;mem:32  reserved.role1=cpus:0.005;mem:16",
        frameworks="f2  role2  -",
    )
    result = h.allocate()
    assert result.grants == ()


def _garbage_after(run: object) -> list[object]:
    """What the cyclic GC finds unreachable after `run()` (run with the collector off)."""
    gc.collect()
    was = gc.isenabled()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        run()  # type: ignore[operator]
        gc.collect()
        found = list(gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        if was:
            gc.enable()
    return found


def test_issue15_an_allocation_pass_leaves_no_reference_cycle() -> None:
    # The pass's agent order held the pass's bound method: each pass was a cycle of the
    # pass, its view and every grant, freed only by the cyclic GC (off in the simulator).
    for name in ("drf", "fair", "ssf"):
        allocator = load_allocator(name)
        assert isinstance(allocator, HierarchicalAllocator)
        h = AllocatorHarness(
            agents="\n".join(
                f"a{i}  cpus:4;mem:4096  rack=r{i % 2}  reserved.r=cpus:1;mem:512"
                for i in range(20)
            ),
            frameworks="""
            f1  r  -
            f2  s  cpus:1
            f3  s  -   demand=cpus:1;mem:128*5
            """,
            allocator=allocator,
            quotas={"s": Quota(guarantee=R("cpus:2"), limit=R("cpus:30"))},
        )
        view = h.view()

        def passes(view: object = view, allocator: HierarchicalAllocator = allocator) -> None:
            for _ in range(5):
                assert allocator.allocate(view, 0.0).grants  # type: ignore[arg-type]

        garbage = _garbage_after(passes)
        assert garbage == [], f"{name}: {len(garbage)} objects in cycles"

