"""`ShareSorter` (#15): float keys updated by the quantities a grant raises give exactly the
order, shares and rounds of the policy's own keys (`KeyedSorter`, `ShareOrdering`)."""

from __future__ import annotations

import math
import random

import pytest

from mesoslite.allocator.base import ClusterView
from mesoslite.allocator.drf import DEFAULT_WEIGHT, DRFPolicy, ShareOrdering
from mesoslite.allocator.fair import FairPolicy
from mesoslite.allocator.hierarchical import HierarchicalAllocator
from mesoslite.allocator.share_sorter import ShareSorter
from mesoslite.allocator.sorter import KeyedSorter
from mesoslite.allocator.ssf import SSFPolicy
from mesoslite.resources import Resources
from tests.unit.allocator.test_incremental import NOW, random_view

TOTAL = Resources.of(
    {"cpus": 64, "mem": 262144, "disk": 100}, {"ports": [(31000, 31999)]}, {"gpus": ["a", "b"]}
)


def _bundle(rng: random.Random) -> Resources:
    """A grant: scalars (sometimes one the cluster lacks), sometimes ports or gpus."""
    scalars = {
        name: rng.choice([0.5, 1, 4, 1024])
        for name in ("cpus", "mem", "disk", "x")
        if rng.random() < 0.6
    }
    ranges = {"ports": [rng.choice([(31000, 31009), (31500, 31999)])]} if rng.random() < 0.3 else {}
    sets = {"gpus": [rng.choice("ab")]} if rng.random() < 0.2 else {}
    return Resources.of(scalars, ranges, sets)


@pytest.mark.parametrize("policy", [DRFPolicy(), FairPolicy(), FairPolicy("ports")])
@pytest.mark.parametrize("seed", range(20))
def test_share_sorter_keeps_the_policys_order_and_allocations(
    policy: ShareOrdering, seed: int
) -> None:
    rng = random.Random(seed)
    weights = {f"r{i}": rng.choice([1.0, 2.0, 0.5, 0.0, math.inf, math.nan]) for i in range(8)}
    meter = policy.share_meter(TOTAL)  # type: ignore[attr-defined]
    assert meter is not None
    fast = ShareSorter(meter, lambda c: weights.get(c, DEFAULT_WEIGHT))
    slow = KeyedSorter(
        lambda c, held: policy.role_key(c, held, weights.get(c, DEFAULT_WEIGHT), TOTAL)
    )
    given: dict[str, tuple[Resources, Resources]] = {}
    for client in weights:
        start = Resources.empty() if rng.random() < 0.3 else _bundle(rng)
        given[client] = (start, Resources(dict(start.scalars), start.ranges, start.sets))
        fast.add(client, start)
        slow.add(client, start)
    for _ in range(200):
        first = fast.first()
        assert first == slow.first()
        assert first is not None
        client = first if rng.random() < 0.7 else rng.choice(list(weights))
        grant = _bundle(rng)
        held = fast.grow(client, grant)
        slow.allocate(client, grant)
        assert held == slow.allocation(client) == fast.allocation(client)
        assert list(fast) == list(slow)
    # The bundles the sorter was given are not changed by its grants.
    for start, copy in given.values():
        assert start == copy


class _KeyedDRF(DRFPolicy):
    """DRF through `KeyedSorter` (a subclass's `share`: no `ShareMeter`), the same shares."""

    def share(self, allocated: Resources, total: Resources) -> float:
        return super().share(allocated, total)


class _KeyedFair(FairPolicy):
    def share(self, allocated: Resources, total: Resources) -> float:
        return super().share(allocated, total)


class _KeyedSSF(SSFPolicy):
    def share(self, allocated: Resources, total: Resources) -> float:
        return super().share(allocated, total)


@pytest.mark.parametrize(
    ("fast", "slow"),
    [(DRFPolicy, _KeyedDRF), (FairPolicy, _KeyedFair), (SSFPolicy, _KeyedSSF)],
)
@pytest.mark.parametrize("seed", range(15))
def test_rounds_with_float_keyed_sorters_equal_those_with_the_policys_keys(
    fast: type[ShareOrdering], slow: type[ShareOrdering], seed: int
) -> None:
    assert slow().share_meter(TOTAL) is None  # type: ignore[attr-defined]
    view = random_view(seed)
    a, b = HierarchicalAllocator(fast()), HierarchicalAllocator(slow())
    assert a.allocate(view, NOW) == b.allocate(view, NOW)
    half = [agent.id for agent in view.agents[::2]]
    assert a.allocate_agents(view, NOW, half) == b.allocate_agents(view, NOW, half)


@pytest.mark.parametrize("policy", [DRFPolicy, FairPolicy, SSFPolicy])
def test_a_pass_over_the_same_view_again_starts_from_the_views_free_resources(
    policy: type[ShareOrdering],
) -> None:
    """The kept agent set-up (index, free resources, offering agents, ssf's ranking) is
    copied per pass: a second pass over the same view grants what the first did."""
    view = random_view(3)
    allocator = HierarchicalAllocator(policy())
    first = allocator.allocate(view, NOW)
    assert first.grants
    assert allocator.allocate(view, NOW) == first
    other = ClusterView(view.agents[1:], view.frameworks, view.role_weights, view.seed)
    fresh = HierarchicalAllocator(policy()).allocate(other, NOW)
    assert allocator.allocate(other, NOW) == fresh
    assert allocator.allocate(view, NOW) == first
