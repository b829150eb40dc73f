"""The conformance invariants, over every registered allocator and random views (hypothesis)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mesoslite.allocator.base import (
    AgentView,
    AllocationRound,
    Allocator,
    ClusterView,
    Demand,
    FrameworkView,
    OfferGrant,
    Quota,
)
from mesoslite.allocator.conformance import (
    check_allocator,
    check_deterministic,
    check_round,
    check_work_conserving,
)
from mesoslite.allocator.drf import DRFPolicy
from mesoslite.allocator.hierarchical import HierarchicalAllocator
from mesoslite.allocator.loader import available_allocators, load_allocator
from mesoslite.ids import AgentId, FrameworkId
from mesoslite.resources import Resources, parse_resources

R = parse_resources
NOW = 100.0


class OrderOnlyDRF:
    """DRF through `order_*` alone, so `HierarchicalAllocator` takes its re-sorting path."""

    name = "drf-order-only"

    def __init__(self) -> None:
        self._drf = DRFPolicy()

    def order_roles(
        self, roles: Mapping[str, Resources], weights: Mapping[str, float], total: Resources
    ) -> list[str]:
        return self._drf.order_roles(roles, weights, total)

    def order_frameworks(
        self, frameworks: Mapping[FrameworkId, Resources], total: Resources
    ) -> list[FrameworkId]:
        return self._drf.order_frameworks(frameworks, total)


ALLOCATOR_NAMES = available_allocators()


@pytest.fixture(params=ALLOCATOR_NAMES)
def allocator(request: pytest.FixtureRequest) -> Allocator:
    return load_allocator(request.param)


def test_drf_is_registered() -> None:
    assert "drf" in ALLOCATOR_NAMES


# -- random views


def _resources(max_value: int) -> st.SearchStrategy[Resources]:
    scalars = st.dictionaries(
        st.sampled_from(["cpus", "mem", "disk"]),
        st.integers(0, max_value * 4).map(lambda q: q / 4),
    )
    ports = st.lists(st.integers(0, 20), max_size=4).map(lambda ps: [(p, p) for p in ps])
    return st.builds(lambda sc, pr: Resources.of(sc, {"ports": pr}), scalars, ports)


# Strategies are built once: building them inside `views` costs more than the tests.
_agent_resources = _resources(8)
_framework_resources = _resources(4)
_roles = st.sampled_from(["web", "batch", "eng/ml"])
_weights = st.dictionaries(_roles, st.sampled_from([0.5, 1.0, 3.0]))


@st.composite
def _agent(draw: st.DrawFn, index: int) -> AgentView:
    total = draw(_agent_resources)
    used = draw(_agent_resources)
    return AgentView(AgentId(f"a{index}"), f"h{index}", total, total.minus_clamped(used))


_agent_ids = st.sampled_from([AgentId(f"a{i}") for i in range(8)])
_filter_ends = st.sampled_from([NOW - 5, NOW - 0.001, NOW, NOW + 0.001, NOW + 30])


@st.composite
def views(draw: st.DrawFn) -> ClusterView:
    n_agents = draw(st.integers(0, 8))
    agents = tuple(draw(_agent(i)) for i in range(n_agents))
    frameworks = []
    for i in range(draw(st.integers(0, 6))):
        # Filters end around NOW; exactly at NOW and 0.001 either side often.
        filters = draw(st.dictionaries(_agent_ids, _filter_ends)) if agents else {}
        frameworks.append(
            FrameworkView(
                FrameworkId(f"f{i}"),
                draw(_roles),
                draw(_framework_resources),
                suppressed=draw(st.booleans()),
                filters=filters,
            )
        )
    weights = draw(_weights)
    return ClusterView(agents, tuple(frameworks), weights, seed=draw(st.integers(0, 2**32)))


_shapes = st.sampled_from([R("cpus:1;mem:1"), R("cpus:0.5"), R("mem:2;disk:1"), R("cpus:3")])
_quotas = st.dictionaries(
    st.sampled_from(["web", "batch", "eng", "eng/ml"]),
    st.builds(
        Quota,
        st.sampled_from([Resources.empty(), R("cpus:2"), R("cpus:1;mem:4")]),
        st.sampled_from([None, R("cpus:0"), R("cpus:1.5"), R("cpus:4;mem:6")]),
    ),
)


@st.composite
def rich_views(draw: st.DrawFn) -> ClusterView:
    """`views` plus reservations, demands, locality hints, racks and quotas."""
    base = draw(views())
    agents = []
    for agent in base.agents:
        reserved = draw(st.dictionaries(_roles | st.just("eng"), _framework_resources, max_size=2))
        rack = {"rack": draw(st.sampled_from(["r1", "r2"])), "zone": "z1"}
        agents.append(replace(agent, reserved=reserved, attributes=rack))
    frameworks = []
    for fw in base.frameworks:
        demands = draw(st.lists(st.builds(Demand, _shapes, st.integers(0, 4)), max_size=2))
        hints = draw(st.sampled_from([(), ("rack:r1",), ("zone:z1", "a1")]))
        frameworks.append(replace(fw, demands=tuple(demands), locality=hints))
    return replace(base, agents=tuple(agents), frameworks=tuple(frameworks), quotas=draw(_quotas))


@settings(max_examples=150, deadline=None)
@given(view=rich_views())
def test_every_allocator_keeps_the_invariants_with_quota_reservations_and_demands(
    view: ClusterView,
) -> None:
    for name in ALLOCATOR_NAMES:
        result = check_allocator(load_allocator(name), view, NOW)
        assert set(result.reasons) == {f.id for f in view.frameworks}
        demanded = {f.id: f.demands for f in view.frameworks}
        for grant in result.grants:
            if demanded[grant.framework_id]:
                assert grant.tasks > 0, f"{name}: {grant} is not sized to whole tasks"


@settings(max_examples=100, deadline=None)
@given(view=rich_views(), data=st.data())
def test_every_allocator_keeps_the_invariants_with_frameworks_in_several_roles(
    view: ClusterView, data: st.DataObject
) -> None:
    # Some frameworks hold a second role (another view with the same id, its own allocation,
    # suppression and filters), as the master builds them for `FrameworkInfo.roles`.
    extra = []
    for fw in view.frameworks:
        other = data.draw(st.sampled_from(["web", "batch", "eng/ml", "eng", None]))
        if other is not None and other != fw.role:
            extra.append(
                replace(
                    fw,
                    role=other,
                    allocated=data.draw(_framework_resources),
                    suppressed=data.draw(st.booleans()),
                )
            )
    view = replace(view, frameworks=view.frameworks + tuple(extra))
    for name in ALLOCATOR_NAMES:
        result = check_allocator(load_allocator(name), view, NOW)
        assert set(result.reasons) == {f.id for f in view.frameworks}
        several = {f.id for f in extra}
        for grant in result.grants:
            if grant.framework_id in several:
                assert grant.role, f"{name}: {grant} names no role"


def test_the_three_policies_are_registered() -> None:
    assert {"drf", "fair", "ssf"} <= set(ALLOCATOR_NAMES)


# -- every registered allocator keeps the invariants


@settings(max_examples=100, deadline=None)
@given(view=views())
def test_every_allocator_keeps_the_invariants_on_random_views(view: ClusterView) -> None:
    for name in ALLOCATOR_NAMES:
        check_allocator(load_allocator(name), view, NOW)


@settings(max_examples=100, deadline=None)
@given(view=views())
def test_hierarchical_drf_offers_every_free_agent_someone_can_take(view: ClusterView) -> None:
    result = check_allocator(HierarchicalAllocator(DRFPolicy()), view, NOW)
    check_work_conserving(view, result, NOW)
    # Whole-agent offers: each grant is exactly the agent's free resources, once per agent.
    free = {a.id: a.free for a in view.agents}
    assert [g.resources for g in result.grants] == [free[g.agent_id] for g in result.grants]
    assert len({g.agent_id for g in result.grants}) == len(result.grants)
    # Every framework is given a reason.
    assert set(result.reasons) == {f.id for f in view.frameworks}


@settings(max_examples=100, deadline=None)
@given(view=views())
def test_incremental_and_re_sorting_paths_give_the_same_round(view: ClusterView) -> None:
    keyed = HierarchicalAllocator(DRFPolicy()).allocate(view, NOW)
    ordered = HierarchicalAllocator(OrderOnlyDRF()).allocate(view, NOW)
    assert keyed.grants == ordered.grants


def test_allocator_is_deterministic_on_a_busy_view(allocator: Allocator) -> None:
    agents = tuple(
        AgentView(AgentId(f"a{i}"), f"h{i}", R("cpus:8;mem:32"), R(f"cpus:{i % 8};mem:{i}"))
        for i in range(40)
    )
    frameworks = tuple(
        FrameworkView(
            FrameworkId(f"f{i}"),
            f"role{i % 4}",
            R(f"cpus:{i};mem:{2 * i}"),
            suppressed=i % 7 == 0,
            filters={AgentId(f"a{j}"): NOW + j - 20 for j in range(i % 5)},
        )
        for i in range(15)
    )
    view = ClusterView(agents, frameworks, {"role1": 2.0}, seed=99)
    check_allocator(allocator, view, NOW)


# -- the checks catch what they should


def _view() -> ClusterView:
    return ClusterView(
        agents=(AgentView(AgentId("a1"), "h1", R("cpus:4;mem:8"), R("cpus:2;mem:8")),),
        frameworks=(
            FrameworkView(FrameworkId("f1"), "r", Resources.empty()),
            FrameworkView(FrameworkId("quiet"), "r", Resources.empty(), suppressed=True),
            FrameworkView(
                FrameworkId("picky"), "r", Resources.empty(), filters={AgentId("a1"): NOW}
            ),
            FrameworkView(
                FrameworkId("refused"), "r", Resources.empty(), filters={AgentId("a1"): NOW + 0.001}
            ),
        ),
    )


def _round(*grants: tuple[str, str, str]) -> AllocationRound:
    return AllocationRound(
        tuple(OfferGrant(FrameworkId(f), AgentId(a), R(res)) for f, a, res in grants)
    )


def test_check_round_accepts_a_valid_round() -> None:
    check_round(_view(), _round(("f1", "a1", "cpus:1"), ("picky", "a1", "cpus:1;mem:8")), NOW)


@pytest.mark.parametrize(
    ("grants", "message"),
    [
        ([("f1", "a1", "cpus:3")], "exceed its free resources (cpus: wants 3, has 2"),
        ([("f1", "a1", "cpus:1.5"), ("f1", "a1", "cpus:1")], "exceed its free resources"),
        ([("quiet", "a1", "cpus:1")], "framework is suppressed"),
        ([("refused", "a1", "cpus:1")], "filtered for this framework until 100.001"),
        ([("f1", "a1", "")], "grant is empty"),
        ([("ghost", "a1", "cpus:1")], "framework ghost is not in the view"),
        ([("f1", "a9", "cpus:1")], "agent a9 is not in the view"),
    ],
)
def test_check_round_names_the_broken_invariant(
    grants: list[tuple[str, str, str]], message: str
) -> None:
    with pytest.raises(AssertionError, match=None) as info:
        check_round(_view(), _round(*grants), NOW)
    assert message in str(info.value)


def test_check_round_rejects_reasons_for_unknown_frameworks() -> None:
    with pytest.raises(AssertionError, match="reasons: framework ghost"):
        check_round(_view(), AllocationRound((), {FrameworkId("ghost"): "offered"}), NOW)


class _Flaky:
    """Gives the agent to a different framework every time it is asked."""

    def __init__(self) -> None:
        self.calls = 0

    def allocate(self, view: ClusterView, now: float) -> AllocationRound:
        self.calls += 1
        fw = view.frameworks[self.calls % 2]
        agent = view.agents[0]
        return AllocationRound((OfferGrant(fw.id, agent.id, agent.free),))


class _Meddling:
    """Changes the view it is given (a filter dict) while allocating."""

    def allocate(self, view: ClusterView, now: float) -> AllocationRound:
        view.frameworks[0].filters["a1"] = 0.0  # type: ignore[index]
        return AllocationRound(())


def test_check_deterministic_catches_an_allocator_that_changes_its_mind() -> None:
    with pytest.raises(AssertionError, match="different grants"):
        check_deterministic(_Flaky(), _view(), NOW)


def test_check_deterministic_catches_an_allocator_that_changes_the_view() -> None:
    with pytest.raises(AssertionError, match="changed the view"):
        check_deterministic(_Meddling(), _view(), NOW)


def test_check_work_conserving_catches_an_idle_agent() -> None:
    with pytest.raises(AssertionError, match="agent a1 has free resources"):
        check_work_conserving(_view(), AllocationRound(()), NOW)
