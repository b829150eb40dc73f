"""Frameworks in several roles (Mesos's MULTI_ROLE) in the allocator: one view per role, a
client in each role's sorter, every grant tagged with its role."""

from __future__ import annotations

import pytest

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
from mesoslite.allocator.conformance import check_allocator, check_round
from mesoslite.allocator.loader import available_allocators, load_allocator
from mesoslite.ids import AgentId, FrameworkId
from mesoslite.resources import Resources, parse_resources

R = parse_resources
E = Resources.empty()
NOW = 100.0
MULTI = FrameworkId("multi")


def agents(n: int, res: str = "cpus:4;mem:4096") -> tuple[AgentView, ...]:
    return tuple(AgentView(AgentId(f"a{i}"), f"h{i}", R(res), R(res)) for i in range(n))


def roles_of(result: AllocationRound, fid: FrameworkId) -> list[str]:
    return sorted(g.role for g in result.grants if g.framework_id == fid)


@pytest.fixture(params=available_allocators())
def allocator(request: pytest.FixtureRequest) -> Allocator:
    return load_allocator(request.param)


def test_every_allocator_offers_a_two_role_framework_in_both_roles_tagged_with_each(
    allocator: Allocator,
) -> None:
    view = ClusterView(
        agents(4),
        (FrameworkView(MULTI, "a", E), FrameworkView(MULTI, "b", E)),
    )
    result = check_allocator(allocator, view, NOW)
    assert set(roles_of(result, MULTI)) == {"a", "b"}
    assert all(g.role in ("a", "b") for g in result.grants)
    # Two reasons, one per role, and one joined for the framework.
    assert set(result.role_reasons[MULTI]) == {"a", "b"}
    assert result.reasons[MULTI].startswith("a: ")


def test_every_allocator_offers_a_reservation_only_with_its_role_as_allocation_role(
    allocator: Allocator,
) -> None:
    agent = AgentView(
        AgentId("a0"),
        "h0",
        R("cpus:4;mem:4096"),
        R("cpus:1;mem:1024"),
        reserved={"a": R("cpus:3;mem:3072")},
    )
    view = ClusterView(
        (agent,),
        (FrameworkView(MULTI, "b", E), FrameworkView(MULTI, "a", E)),
    )
    result = check_allocator(allocator, view, NOW)
    for grant in result.grants:
        if grant.reserved:
            assert grant.role == "a", grant
    assert any(g.reserved == {"a": R("cpus:3;mem:3072")} for g in result.grants)


def test_the_share_in_a_role_is_only_what_the_framework_holds_in_that_role() -> None:
    # Role a: `multi` holds 1 cpu there (and 6 in b), `other` holds 2: in a's sorter `multi`
    # is the poorer, so the one free agent goes to `multi` in role a, not to `other`.
    view = ClusterView(
        (
            AgentView(AgentId("busy"), "h", R("cpus:9;mem:9216"), E),
            AgentView(AgentId("free"), "h2", R("cpus:1;mem:1024"), R("cpus:1;mem:1024")),
        ),
        (
            FrameworkView(MULTI, "a", R("cpus:1;mem:1024")),
            FrameworkView(MULTI, "b", R("cpus:6;mem:6144"), suppressed=True),
            FrameworkView(FrameworkId("other"), "a", R("cpus:2;mem:2048")),
        ),
    )
    result = check_allocator(load_allocator("drf"), view, NOW)
    assert [(g.framework_id, g.role) for g in result.grants] == [(MULTI, "a")]


def test_a_quota_limit_of_one_role_is_not_used_up_by_the_frameworks_other_role() -> None:
    # Role a is limited to 2 cpus; `multi` holds 6 cpus in b. In a it may still get 2 cpus,
    # and never more; the b allocation does not count against a's limit.
    view = ClusterView(
        agents(2, "cpus:4;mem:4096"),
        (
            FrameworkView(MULTI, "a", E, demands=(Demand(R("cpus:1;mem:128"), 10),)),
            FrameworkView(MULTI, "b", R("cpus:6;mem:6144")),
        ),
        quotas={"a": Quota(limit=R("cpus:2"))},
    )
    result = check_allocator(load_allocator("drf"), view, NOW)
    in_a = sum((g.resources.scalar("cpus") for g in result.grants if g.role == "a"), 0.0)
    assert in_a == 2
    # Role b has no limit: the rest goes there.
    assert "b" in roles_of(result, MULTI)


def test_a_framework_suppressed_in_one_role_is_offered_in_the_other(
    allocator: Allocator,
) -> None:
    view = ClusterView(
        agents(2),
        (FrameworkView(MULTI, "a", E, suppressed=True), FrameworkView(MULTI, "b", E)),
    )
    result = check_allocator(allocator, view, NOW)
    assert set(roles_of(result, MULTI)) == {"b"}
    assert result.role_reasons[MULTI]["a"] == "suppressed"


def test_demands_are_shared_by_the_frameworks_roles() -> None:
    # Three tasks wanted in all: granted three tasks' worth over both roles, not three each.
    demand = (Demand(R("cpus:1;mem:128"), 3),)
    view = ClusterView(
        agents(4),
        (
            FrameworkView(MULTI, "a", E, demands=demand),
            FrameworkView(MULTI, "b", E, demands=demand),
        ),
    )
    result = check_allocator(load_allocator("drf"), view, NOW)
    assert sum(g.tasks for g in result.grants) == 3


def test_check_round_rejects_a_grant_without_a_role_to_a_framework_in_several() -> None:
    view = ClusterView(agents(1), (FrameworkView(MULTI, "a", E), FrameworkView(MULTI, "b", E)))
    bad = AllocationRound((OfferGrant(MULTI, AgentId("a0"), R("cpus:1")),))
    with pytest.raises(AssertionError, match="names none"):
        check_round(view, bad, NOW)
    wrong = AllocationRound((OfferGrant(MULTI, AgentId("a0"), R("cpus:1"), role="c"),))
    with pytest.raises(AssertionError, match="not one of the framework's"):
        check_round(view, wrong, NOW)


def test_check_round_checks_reservations_against_the_grants_role() -> None:
    agent = AgentView(AgentId("a0"), "h0", R("cpus:4"), E, reserved={"a": R("cpus:4")})
    view = ClusterView((agent,), (FrameworkView(MULTI, "a", E), FrameworkView(MULTI, "b", E)))
    bad = AllocationRound(
        (OfferGrant(MULTI, AgentId("a0"), R("cpus:4"), {"a": R("cpus:4")}, role="b"),)
    )
    with pytest.raises(AssertionError, match="reserved for role 'a'"):
        check_round(view, bad, NOW)
