"""`allocator.arith`: the pass's shortcuts give exactly what `+` and `-` give (#15)."""

from __future__ import annotations

import random

import pytest

from mesoslite.allocator.agents import sum_resources
from mesoslite.allocator.arith import minus, plus
from mesoslite.resources import Resources


def _bundle(rng: random.Random) -> Resources:
    ranges = {}
    if rng.random() < 0.7:
        ranges["ports"] = rng.choice([[(31000, 32000)], [(31000, 31500)], [(100, 200), (300, 400)]])
    sets = {"gpus": rng.sample(["g0", "g1", "g2"], rng.randint(1, 2))} if rng.random() < 0.3 else {}
    scalars = {"cpus": rng.randint(0, 8), "mem": rng.randint(0, 4) * 512}
    return Resources.of(scalars, ranges, sets)


@pytest.mark.parametrize("seed", range(5))
def test_plus_minus_and_sum_equal_the_resources_operators(seed: int) -> None:
    rng = random.Random(seed)
    bundles = [_bundle(rng) for _ in range(200)]
    for a, b in zip(bundles, bundles[1:], strict=False):
        assert plus(a, b) == a + b
        assert plus(a + b, b) == a + b + b
    for a in bundles:
        assert minus(a, a) == a - a == Resources.empty()
        part = Resources.of({"cpus": a.scalar("cpus")})
        assert minus(a, part) == a - part
    # Agents sharing one totals object, and distinct ones: summed as a fold of `+`.
    shared = bundles[0]
    many = [shared] * 50 + bundles[1:20]
    folded = Resources.empty()
    for res in many:
        folded = folded + res
    assert sum_resources(many) == folded


def test_minus_still_refuses_to_take_more_than_there_is() -> None:
    have = Resources.of({"cpus": 1})
    with pytest.raises(ValueError, match="would go negative"):
        minus(have, Resources.of({"cpus": 2}))
