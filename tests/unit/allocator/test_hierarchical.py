"""The hierarchical allocator's parts: sorters and resource sums."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from mesoslite.allocator.hierarchical import sum_resources
from mesoslite.allocator.sorter import KeyedSorter, OrderedSorter
from mesoslite.resources import Resources, parse_resources

R = parse_resources

_bundles = st.lists(
    st.builds(
        lambda c, lo, n, s: Resources.of({"cpus": c / 1000}, {"ports": [(lo, lo + n)]}, {"d": s}),
        st.integers(0, 10**6),
        st.integers(0, 100),
        st.integers(0, 10),
        st.lists(st.sampled_from("abc"), max_size=2),
    ),
    max_size=12,
)


@given(_bundles)
def test_sum_resources_equals_adding_one_by_one(bundles: list[Resources]) -> None:
    folded = Resources.empty()
    for b in bundles:
        folded = folded + b
    assert sum_resources(bundles) == folded


def _cpu_key(client: str, allocated: Resources) -> tuple[float, str]:
    return (allocated.scalar("cpus"), client)


def test_keyed_sorter_moves_a_client_after_it_is_allocated() -> None:
    sorter = KeyedSorter(_cpu_key)
    for client, cpus in [("a", 1), ("b", 2), ("c", 3)]:
        sorter.add(client, R(f"cpus:{cpus}"))
    assert list(sorter) == ["a", "b", "c"]
    sorter.allocate("a", R("cpus:1.5"))
    assert list(sorter) == ["b", "a", "c"]
    sorter.allocate("b", R("cpus:5"))
    assert list(sorter) == ["a", "c", "b"]
    assert sorter.allocation("b") == R("cpus:7")
    assert len(sorter) == 3


def test_keyed_sorter_survives_keys_that_do_not_compare() -> None:
    def nan_key(client: str, allocated: Resources) -> tuple[float, str]:
        return (math.nan if client == "b" else allocated.scalar("cpus"), client)

    sorter = KeyedSorter(nan_key)
    for client in "abc":
        sorter.add(client, Resources.empty())
    sorter.allocate("b", R("cpus:1"))
    sorter.allocate("a", R("cpus:1"))
    assert sorted(sorter) == ["a", "b", "c"]
    assert sorter.allocation("b") == R("cpus:1")


def test_ordered_sorter_drops_invented_clients_and_keeps_forgotten_ones() -> None:
    calls = []

    def order(allocations: object) -> list[str]:
        calls.append(1)
        return ["ghost", "c", "a", "c"]  # invents ghost, repeats c, forgets b

    sorter = OrderedSorter(order)
    for client in "abc":
        sorter.add(client, Resources.empty())
    assert list(sorter) == ["c", "a", "b"]
    assert list(sorter) == ["c", "a", "b"]
    assert len(calls) == 1  # cached until something changes
    sorter.allocate("a", R("cpus:1"))
    list(sorter)
    assert len(calls) == 2
