"""Priority tiers in the allocator (#16): strict order between tiers, policy inside a tier."""

from __future__ import annotations

from dataclasses import replace

import pytest

from mesoslite.allocator.base import AllocationRound, Quota
from mesoslite.allocator.conformance import check_round
from mesoslite.allocator.loader import load_allocator
from mesoslite.allocator.tiers import RoleTier, priority_of, split_by_tier, tier_of
from mesoslite.resources import parse_resources
from tests.unit.allocator.harness import AllocatorHarness

AGENTS = """
a1  cpus:2;mem:1024
a2  cpus:2;mem:1024
"""


def _allocate(
    h: AllocatorHarness, priorities: dict[str, int], policy: str = "drf"
) -> AllocationRound:
    view = replace(h.view(), role_priorities=priorities)
    result = load_allocator(policy).allocate(view, 0.0)
    check_round(view, result, 0.0)
    return result


def _cpus_by_role(result: AllocationRound) -> dict[str, float]:
    out: dict[str, float] = {}
    for g in result.grants:
        cpus = g.resources.scalars.get("cpus", 0) / 1000
        if cpus:  # leftovers of memory alone are offered too; only cpus matter here
            out[g.role] = out.get(g.role, 0.0) + cpus
    return out


def test_a_role_without_its_own_priority_inherits_its_nearest_ancestors() -> None:
    priorities = {"eng": 5, "eng/ml/deep": -1}
    assert priority_of("eng/ml", priorities) == 5
    assert priority_of("eng/ml/deep/x", priorities) == -1
    assert priority_of("ops", priorities) == 0
    assert tier_of("eng/ml", {"eng": RoleTier(5, True)}) == RoleTier(5, True)


def test_tiers_are_listed_highest_priority_first() -> None:
    tiers = split_by_tier({"low": 1, "high": 2, "mid": 3}, {"high": 10, "low": -2})
    assert [p for p, _ in tiers] == [10, 0, -2]
    assert tiers[0][1] == {"high": 2}


@pytest.mark.parametrize("policy", ["drf", "fair", "ssf"])
def test_a_higher_tier_takes_everything_before_a_lower_tier_with_a_smaller_share(
    policy: str,
) -> None:
    # `batch` holds nothing and `urgent` already holds 1 cpu elsewhere: by share alone
    # `batch` would go first; its tier is lower, so `urgent` is served first.
    h = AllocatorHarness(
        AGENTS,
        """
        f1  batch   -
        f2  urgent  cpus:1;mem:1  demand=cpus:1;mem:512*4
        """,
    )
    result = _allocate(h, {"urgent": 10}, policy)
    assert _cpus_by_role(result) == {"urgent": 4.0}
    assert "higher priority tiers" in result.reasons["f1"]


def test_a_lower_tier_gets_what_the_higher_tier_cannot_use() -> None:
    h = AllocatorHarness(
        AGENTS,
        """
        f1  batch   -
        f2  urgent  -  demand=cpus:1;mem:512*1
        """,
    )
    result = _allocate(h, {"urgent": 10})
    assert _cpus_by_role(result) == {"urgent": 1.0, "batch": 3.0}


def test_without_priorities_the_policy_alone_decides() -> None:
    h = AllocatorHarness(
        AGENTS,
        """
        f1  batch   -
        f2  urgent  cpus:1;mem:1  demand=cpus:1;mem:512*4
        """,
    )
    result = _allocate(h, {})
    # DRF: batch (share 0) is served first and takes a whole agent.
    assert _cpus_by_role(result)["batch"] >= 2.0


def test_drf_orders_roles_inside_a_tier() -> None:
    # Two roles in tier 5 with demands: DRF alternates them (equal shares), tier 0 waits.
    h = AllocatorHarness(
        AGENTS,
        """
        f1  a  -  demand=cpus:1;mem:1*10
        f2  b  -  demand=cpus:1;mem:1*10
        f3  c  -
        """,
    )
    result = _allocate(h, {"a": 5, "b": 5})
    assert _cpus_by_role(result) == {"a": 2.0, "b": 2.0}


def test_quota_guarantees_are_met_before_any_tier() -> None:
    h = AllocatorHarness(
        AGENTS,
        """
        f1  batch   -
        f2  urgent  -  demand=cpus:1;mem:1*10
        """,
        quotas={"batch": Quota(parse_resources("cpus:1;mem:512"))},
    )
    result = _allocate(h, {"urgent": 10})
    assert _cpus_by_role(result) == {"batch": 1.0, "urgent": 3.0}
