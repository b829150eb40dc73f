"""Regressions for the allocator bugs of issue #16 (part 2), each on a compact scenario."""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path

import pytest

from mesoslite.allocator.base import Quota
from mesoslite.allocator.hierarchical import HierarchicalAllocator
from mesoslite.allocator.loader import load_allocator
from mesoslite.allocator.quota import parse_limit
from mesoslite.convert import limit_from_pb, resources_to_pb
from mesoslite.errors import ValidationError
from mesoslite.master.constants import ALLOCATION_BATCH_S
from mesoslite.master.registry.base import RegistrySnapshot, SetQuota
from mesoslite.master.registry.codec import role_op_from_doc, role_op_to_doc
from mesoslite.master.registry.sqlite import SqliteRegistryStore
from mesoslite.master.state import MasterState
from mesoslite.resources import Resources, parse_resources
from mesoslite.sim.trace import parse_cluster
from tests.unit.allocator.harness import AllocatorHarness
from tests.unit.master.conftest import Harness as MasterHarness
from tests.unit.master.conftest import task

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


# -- a zero in a quota limit means none (#16)


def test_issue16_a_zero_in_a_limit_is_kept_when_parsed() -> None:
    assert parse_limit("cpus:0;mem:512").scalars == {"cpus": 0, "mem": 512_000}
    bare = parse_limit("cpus:0")
    assert bare.scalars == {"cpus": 0} and not bare.is_empty()
    assert parse_limit("").is_empty()  # a limit of nothing at all, as before
    assert str(parse_limit("mem:512;cpus:0")) == "cpus:0;mem:512"
    with pytest.raises(ValidationError, match=r"--limit\.cpus: must be >= 0"):
        parse_limit("cpus:-1", "--limit")


def test_issue16_a_zero_limit_survives_the_wire_and_the_registry(tmp_path: Path) -> None:
    limit = parse_limit("cpus:0;mem:512")
    assert limit_from_pb(resources_to_pb(limit)) == limit
    assert limit_from_pb(resources_to_pb(parse_limit("cpus:0"))).scalars == {"cpus": 0}
    op = SetQuota("r", Quota(Resources.empty(), limit))
    kind, doc = role_op_to_doc(op)
    assert doc["limit"] == "cpus:0;mem:512"
    assert role_op_from_doc(kind, "r", doc) == op

    async def round_trip() -> RegistrySnapshot:
        store = SqliteRegistryStore(tmp_path / "r.sqlite")
        await store.apply([op])
        await store.close()
        return await SqliteRegistryStore(tmp_path / "r.sqlite").load()

    assert asyncio.run(round_trip()).quotas == {"r": Quota(Resources.empty(), limit)}


def test_issue16_the_master_keeps_a_zero_limit_and_holds_a_guarantee_within_it() -> None:
    state = MasterState(
        allocator=load_allocator("drf"), offer_timeout_s=30, agent_reregister_timeout_s=10
    )
    state.set_quota("r", Resources.empty(), parse_limit("cpus:0;mem:512"))
    assert state.roles.quotas["r"].limit == parse_limit("cpus:0;mem:512")
    with pytest.raises(ValidationError, match="guarantee: must be within the limit: cpus"):
        state.set_quota("r", R("cpus:1"), parse_limit("cpus:0;mem:512"))
    assert state.roles.quotas["r"].limit == parse_limit("cpus:0;mem:512")  # unchanged


def test_issue16_the_allocator_gives_no_cpus_to_a_role_limited_to_cpus_0() -> None:
    agents = "a1  cpus:4;mem:4096"
    # A whole-agent offer is cut to the limit: memory only, no cpus.
    limited = {"r": Quota(limit=parse_limit("cpus:0;mem:512"))}
    h = AllocatorHarness(agents, "f  r  -", quotas=limited)
    (grant,) = h.allocate().grants
    assert grant.resources == R("mem:512")
    # Sized to demands: no task that needs a cpu fits.
    h = AllocatorHarness(agents, "f  r  -  demand=cpus:1;mem:64*3", quotas=limited)
    assert h.allocate().grants == ()
    # A bare cpus:0: the role holds its whole limit already, as a used-up `cpus:2` would.
    h = AllocatorHarness(agents, "f  r  -", quotas={"r": Quota(limit=parse_limit("cpus:0"))})
    assert h.allocate().grants == ()
    assert h.reason("f") == "role r is at its quota limit"


def test_issue16_a_simulated_cluster_keeps_a_zero_limit() -> None:
    cluster = parse_cluster(
        {"agents": [{"resources": "cpus:1"}], "roles": {"r": {"quota": {"limit": "cpus:0"}}}}
    )
    assert cluster.roles[0].limit is not None and cluster.roles[0].limit.scalars == {"cpus": 0}


# -- a filter shorter than the allocation batch (#16)


def test_issue16_a_decline_shorter_than_the_batch_holds_through_the_pass_it_sets_off() -> None:
    h = MasterHarness()
    h.agent("cpus:4;mem:4096")
    fid = h.framework()
    offer = h.offer_for(fid)
    h.state.decline(fid, [offer.id], 0.001, h.now)
    # The decline asks for a pass one batch later (as `MasterActor` paces them): the agent
    # is still filtered for it, though 0.001 s have passed.
    h.clock.advance(ALLOCATION_BATCH_S)
    assert h.allocate() == {}
    assert "filtered" in h.state.last_reasons[fid]
    # Not for longer than it must: the pass after that (one more batch) offers it again.
    h.clock.advance(ALLOCATION_BATCH_S)
    assert fid in h.allocate()


def test_issue16_a_partly_used_offers_short_filter_holds_through_the_next_pass() -> None:
    h = MasterHarness()
    h.agent("cpus:4;mem:4096")
    fid = h.framework()
    offer = h.offer_for(fid)
    h.state.accept(fid, [offer.id], [task("t1", "cpus:1;mem:128")], 0.001, h.now)
    h.clock.advance(ALLOCATION_BATCH_S)
    assert h.allocate() == {}
    h.clock.advance(ALLOCATION_BATCH_S)
    assert fid in h.allocate()


def test_issue16_explain_does_not_call_the_higher_share_the_lower_one() -> None:
    # One agent: `low` (share 0) is offered it; `high` (share 0.5) is passed over. It was
    # told "lower share than others: dominant share 0.50", the reverse of the truth.
    h = AllocatorHarness(
        agents="""
        a1  cpus:4;mem:8
        a2  cpus:4;mem:8  -
        """,
        frameworks="""
        low   r  -
        high  r  cpus:4
        """,
    )
    assert h.offers(h.allocate()) == {"low": ["a1"]}
    reason = h.reason("high")
    assert "lower share than others" not in reason
    assert reason.startswith("passed over: others came first in drf order (a lower share")
    assert reason.endswith("its dominant share 0.50")
    fair = AllocatorHarness(
        "a1  cpus:4", "low  r  -\nhigh  r  cpus:1", allocator=load_allocator("fair")
    )
    fair.allocate()
    assert "lower share than others" not in fair.reason("high")
    assert fair.reason("high").startswith("passed over: others came first in fair order")
