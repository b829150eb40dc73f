"""DRF policy and the hierarchical allocator's rules, as scenarios on `AllocatorHarness`."""

from __future__ import annotations

import math

import pytest

from mesoslite.allocator.base import AgentView, ClusterView, FrameworkView
from mesoslite.allocator.drf import DRFPolicy, dominant_share, weighted_share
from mesoslite.allocator.hierarchical import HierarchicalAllocator, agent_order
from mesoslite.ids import AgentId, FrameworkId
from mesoslite.resources import Resources, parse_resources

from .harness import AllocatorHarness

R = parse_resources

# -- dominant share arithmetic


def test_dominant_share_is_the_largest_share_of_any_resource() -> None:
    # DRF paper, section 4: 9 cpus and 18 GB; user A holds <3 cpus, 12 GB>, B <6 cpus, 2 GB>.
    total = R("cpus:9;mem:18")
    assert dominant_share(R("cpus:3;mem:12"), total) == pytest.approx(2 / 3)  # mem
    assert dominant_share(R("cpus:6;mem:2"), total) == pytest.approx(2 / 3)  # cpus
    assert dominant_share(R("cpus:1;mem:4"), total) == pytest.approx(2 / 9)  # mem


def test_dominant_share_of_nothing_is_zero() -> None:
    assert dominant_share(Resources.empty(), R("cpus:9;mem:18")) == 0.0
    assert dominant_share(R("cpus:1"), Resources.empty()) == 0.0


def test_dominant_share_skips_resources_the_cluster_has_none_of() -> None:
    # gpus are allocated but not in the total: they cannot be shared, so they do not count.
    assert dominant_share(R("cpus:1;gpus:4"), R("cpus:4;mem:8")) == pytest.approx(0.25)


def test_dominant_share_counts_ranges_and_sets_by_their_size() -> None:
    total = R("cpus:10;ports:[1000-1099];disks:{a,b,c,d}")
    assert dominant_share(R("ports:[1000-1049]"), total) == pytest.approx(0.5)
    assert dominant_share(R("disks:{a,b,c}"), total) == pytest.approx(0.75)


def test_weighted_share_divides_by_the_weight_and_puts_bad_weights_last() -> None:
    assert weighted_share(0.5, 2.0) == 0.25
    assert weighted_share(0.5, 1.0) == 0.5
    assert weighted_share(0.0, 0.0) == math.inf
    assert weighted_share(0.1, -1.0) == math.inf
    assert weighted_share(0.1, math.nan) == math.inf


# -- the policy's orders


def test_frameworks_are_ordered_by_dominant_share_then_id() -> None:
    policy = DRFPolicy()
    total = R("cpus:10;mem:100")
    frameworks = {
        FrameworkId("c"): R("cpus:5"),  # 0.5
        FrameworkId("b"): R("mem:10"),  # 0.1
        FrameworkId("a"): R("cpus:1"),  # 0.1, ties with b: by id
        FrameworkId("d"): Resources.empty(),  # 0.0
    }
    assert policy.order_frameworks(frameworks, total) == ["d", "a", "b", "c"]


def test_roles_are_ordered_by_weighted_dominant_share_then_name() -> None:
    policy = DRFPolicy()
    total = R("cpus:10")
    roles = {"web": R("cpus:4"), "batch": R("cpus:3"), "adhoc": R("cpus:3")}
    # Unweighted: adhoc 0.3 = batch 0.3 (by name) < web 0.4.
    assert policy.order_roles(roles, {}, total) == ["adhoc", "batch", "web"]
    # web weight 2: web 0.4/2 = 0.2 comes first.
    assert policy.order_roles(roles, {"web": 2.0}, total) == ["web", "adhoc", "batch"]


def test_sort_keys_agree_with_the_orders() -> None:
    policy = DRFPolicy()
    total = R("cpus:8;mem:64")
    allocs = {FrameworkId(f"f{i}"): R(f"cpus:{i % 3};mem:{(7 * i) % 20}") for i in range(12)}
    by_key = sorted(allocs, key=lambda f: policy.framework_key(f, allocs[f], total))
    assert policy.order_frameworks(allocs, total) == by_key


# -- scenarios


def test_framework_with_the_lowest_dominant_share_is_offered_first() -> None:
    # DRF paper example in spirit: 9 cpus, 18 GB in all. A runs <1 cpu, 4 GB> tasks and
    # holds one (share 4/18 = 0.22); B runs <3 cpus, 1 GB> tasks and holds one (3/9 = 0.33).
    h = AllocatorHarness(
        agents="""
        a1  cpus:5;mem:10  cpus:1;mem:5
        a2  cpus:4;mem:8
        """,
        frameworks="""
        A  users  cpus:1;mem:4
        B  users  cpus:3;mem:1
        """,
    )
    assert h.share("A") < h.share("B")
    first, second = agent_order(list(h.view().agents), h.seed)
    result = h.allocate()
    # The first agent visited goes to A. Either agent lifts A above B (A: 0.5 or 0.67 >
    # B: 0.33), so progressive filling gives the second agent to B.
    assert h.offers() == {"A": [first.id], "B": [second.id]}
    assert result.grants[0].framework_id == "A"
    assert h.reason("A") == "offered 1 agent"
    assert h.reason("B") == "offered 1 agent"


def test_offers_are_recomputed_after_each_agent_not_once_per_round() -> None:
    # Four small agents, two empty frameworks: progressive filling alternates between them.
    h = AllocatorHarness(
        agents="""
        a1  cpus:1;mem:1
        a2  cpus:1;mem:1
        a3  cpus:1;mem:1
        a4  cpus:1;mem:1
        """,
        frameworks="""
        f1  r  -
        f2  r  -
        """,
    )
    h.allocate()
    # Each ends with 2 of 4 agents: dominant share 0.5 each.
    assert [len(a) for a in h.offers().values()] == [2, 2]
    assert h.reason("f1") == h.reason("f2") == "offered 2 agents"


def test_framework_offered_the_whole_free_resources_of_an_agent() -> None:
    h = AllocatorHarness(
        agents="a1  cpus:8;mem:64;ports:[31000-31999]  cpus:2;mem:4;ports:[31500-31999]",
        frameworks="f1  r  cpus:6;mem:60",
    )
    (grant,) = h.allocate().grants
    assert grant.resources == R("cpus:2;mem:4;ports:[31500-31999]")


PASSED_OVER = (
    "passed over: others came first in drf order (a lower share, or a tie won by id or name)"
    " and took what was free; its dominant share "
)


def test_role_weights_two_to_one_change_who_is_offered() -> None:
    # web holds 0.4 of the cluster, batch 0.3.
    agents = "a1  cpus:10  cpus:3"
    frameworks = """
        w  web    cpus:4
        b  batch  cpus:3
    """
    # Equal weights: batch (0.3) < web (0.4).
    assert AllocatorHarness(agents, frameworks).allocate().grants[0].framework_id == "b"
    # web weight 2: web 0.4 / 2 = 0.2 < batch 0.3 / 1.
    h = AllocatorHarness(agents, frameworks, weights={"web": 2.0, "batch": 1.0})
    assert h.allocate().grants[0].framework_id == "w"
    assert h.reason("b") == PASSED_OVER + "0.30"


def test_roles_are_compared_before_frameworks() -> None:
    # Role big holds 0.6 in all, though each of its frameworks holds less than small's one.
    h = AllocatorHarness(
        agents="a1  cpus:10  cpus:1",
        frameworks="""
        big1   big    cpus:2
        big2   big    cpus:2
        big3   big    cpus:2
        small  small  cpus:3
        """,
    )
    assert h.allocate().grants[0].framework_id == "small"


def test_ties_are_broken_by_framework_id() -> None:
    h = AllocatorHarness(
        agents="a1  cpus:4",
        frameworks="""
        fb  r  -
        fa  r  -
        fc  r  -
        """,
    )
    assert h.offers(h.allocate()) == {"fa": ["a1"]}
    assert h.reason("fb") == PASSED_OVER + "0.00"


def test_ties_between_roles_are_broken_by_name() -> None:
    h = AllocatorHarness(
        agents="a1  cpus:4",
        frameworks="""
        f1  zeta   -
        f2  alpha  -
        """,
    )
    assert h.offers(h.allocate()) == {"f2": ["a1"]}


@pytest.mark.parametrize(
    ("now", "offered_to"),
    [
        (9.999, "f2"),  # one millisecond before the filter ends: still filtered
        (10.0, "f1"),  # exactly at the expiry time: offered again
        (10.5, "f1"),
    ],
)
def test_filters_are_honoured_to_the_millisecond(now: float, offered_to: str) -> None:
    h = AllocatorHarness(
        agents="a1  cpus:4",
        frameworks="""
        f1  r  -        filter=a1@10
        f2  r  cpus:1
        """,
    )
    assert h.offers(h.allocate(now=now)) == {offered_to: ["a1"]}


def test_framework_filtered_on_every_free_agent_gets_nothing_and_is_told_until_when() -> None:
    h = AllocatorHarness(
        agents="""
        a1  cpus:4
        a2  cpus:4
        a3  cpus:4  -
        """,
        frameworks="""
        f1  r  -  filter=a1@15 filter=a2@12.5
        """,
    )
    assert h.allocate(now=10.0).grants == ()
    # a3 has nothing free, so its (absent) filter does not matter; a2 frees first.
    assert h.reason("f1") == (
        "filtered on all agents with free resources until 12.500 (2.500s from now)"
    )
    assert h.offers(h.allocate(now=12.5)) == {"f1": ["a2"]}


def test_filter_on_one_agent_leaves_the_others_offered() -> None:
    h = AllocatorHarness(
        agents="""
        a1  cpus:4
        a2  cpus:4
        """,
        frameworks="f1  r  -  filter=a1@100",
    )
    assert h.offers(h.allocate(now=0.0)) == {"f1": ["a2"]}


def test_suppressed_framework_gets_nothing_even_with_the_lowest_share() -> None:
    h = AllocatorHarness(
        agents="a1  cpus:4",
        frameworks="""
        quiet  r  -       suppressed
        busy   r  cpus:3
        """,
    )
    assert h.offers(h.allocate()) == {"busy": ["a1"]}
    assert h.reason("quiet") == "suppressed"


def test_suppressed_frameworks_allocation_still_counts_for_its_role() -> None:
    # Role a holds 0.5 through a suppressed framework; role b's framework holds 0.25.
    h = AllocatorHarness(
        agents="a1  cpus:8  cpus:2",
        frameworks="""
        a-quiet  a  cpus:4  suppressed
        a-live   a  -
        b-live   b  cpus:2
        """,
    )
    assert h.offers(h.allocate()) == {"b-live": ["a1"]}


def test_every_framework_gets_a_reason() -> None:
    h = AllocatorHarness(
        agents="""
        a1  cpus:4;mem:8
        a2  cpus:4;mem:8  -
        """,
        frameworks="""
        winner    r  -
        loser     r  cpus:4
        quiet     r  -       suppressed
        filtered  r  -       filter=a1@5
        """,
    )
    h.allocate(now=1.0)
    assert dict(h.rounds[-1].reasons) == {
        "winner": "offered 1 agent",
        "loser": PASSED_OVER + "0.50",
        "quiet": "suppressed",
        "filtered": "filtered on all agents with free resources until 5.000 (4.000s from now)",
    }


def test_no_free_resources_is_a_reason_and_no_grants_are_empty() -> None:
    h = AllocatorHarness(
        agents="a1  cpus:4  -",
        frameworks="f1  r  -",
    )
    assert h.allocate().grants == ()
    assert h.reason("f1") == "no free resources"


def test_empty_view_gives_an_empty_round() -> None:
    result = HierarchicalAllocator(DRFPolicy()).allocate(ClusterView((), (), seed=7), 0.0)
    assert result.grants == ()
    assert result.reasons == {}
    assert result.seed == 7


def test_accepted_offers_shift_the_next_round_to_the_others() -> None:
    h = AllocatorHarness(
        agents="""
        a1  cpus:4;mem:16
        a2  cpus:4;mem:16
        """,
        frameworks="""
        f1  r  -
        f2  r  -
        f3  r  -
        """,
    )
    h.allocate()
    # All at 0.0: f1 wins the first agent by id, then f2 (still 0.0) beats f1 (0.5).
    assert sorted(h.offers()) == ["f1", "f2"]
    h.accept()
    # Everything is used now; f3 is still at 0.0 but nothing is free.
    h.allocate()
    assert h.rounds[-1].grants == ()
    assert h.reason("f3") == "no free resources"


# -- agent order


def _agents(n: int) -> list[AgentView]:
    return [AgentView(AgentId(f"a{i:03}"), "h", R("cpus:1"), R("cpus:1")) for i in range(n)]


def test_agent_order_is_a_seeded_permutation_independent_of_input_order() -> None:
    agents = _agents(50)
    order = agent_order(agents, 42)
    assert sorted(a.id for a in order) == [a.id for a in agents]
    assert agent_order(list(reversed(agents)), 42) == order
    assert agent_order(agents, 43) != order


def test_no_agent_is_always_first() -> None:
    agents = _agents(10)
    firsts = {agent_order(agents, seed)[0].id for seed in range(100)}
    assert len(firsts) >= 8


def test_the_round_carries_the_seed_and_is_reproducible() -> None:
    view = ClusterView(
        agents=tuple(_agents(20)),
        frameworks=tuple(
            FrameworkView(FrameworkId(f"f{i}"), f"r{i % 3}", R(f"cpus:{i % 4}")) for i in range(7)
        ),
        seed=1234,
    )
    allocator = HierarchicalAllocator(DRFPolicy())
    first = allocator.allocate(view, 0.0)
    assert first.seed == 1234
    assert allocator.allocate(view, 0.0) == first
    assert len(first.grants) == 20
