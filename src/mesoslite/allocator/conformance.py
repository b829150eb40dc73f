"""Invariants every allocator must keep; public, so that third-party allocators can run them.

Each check raises `AssertionError` with a message naming the grant, agent or framework at
fault. Use them from any test runner::

    from mesoslite.allocator.conformance import check_allocator
    check_allocator(MyAllocator(), view, now=100.0)

# after Mesos `CommonSorterTest`, dramatiq `check_*`
"""

from __future__ import annotations

import copy

from mesoslite.allocator.agents import allocatable
from mesoslite.allocator.base import (
    AgentView,
    AllocationRound,
    Allocator,
    ClusterView,
    FrameworkView,
    OfferGrant,
)
from mesoslite.allocator.filters import is_filtered
from mesoslite.allocator.roles import ancestors
from mesoslite.ids import AgentId, FrameworkId
from mesoslite.resources import Resources


def check_round(view: ClusterView, round: AllocationRound, now: float) -> None:
    """Assert that `round` is a valid answer to `view` at `now`.

    A grant must name a framework and an agent of the view, be non-empty, go to a framework
    that is neither suppressed nor filtered for that agent at `now`; the grants on one agent
    must together fit in its free resources plus, for the parts marked reserved, the agent's
    reservations, each only for a framework of that role or below it; no role may be granted
    past its quota limit. Reasons may only name frameworks of the view. A framework in several
    roles (several views with its id) is checked per role: a grant must name one of its roles
    (`OfferGrant.role`; empty only for a framework in one role), and is checked against that
    role's view (suppressed, filters, reservations, quota).

    Raises:
        AssertionError: naming the first broken invariant.
    """
    agents = {a.id: a for a in view.agents}
    frameworks: dict[tuple[FrameworkId, str], FrameworkView] = {}
    for f in view.frameworks:
        frameworks.setdefault((f.id, f.role), f)
    roles_of: dict[FrameworkId, list[str]] = {}
    for fid, role in frameworks:
        roles_of.setdefault(fid, []).append(role)
    on_agent: dict[AgentId, Resources] = {}
    on_reservation: dict[tuple[AgentId, str], Resources] = {}
    by_role: dict[str, Resources] = {}
    for i, grant in enumerate(round.grants):
        where = f"grants[{i}] (framework {grant.framework_id}, agent {grant.agent_id})"
        framework, agent = _grant_target(where, grant, frameworks, roles_of, agents, now)
        unreserved = _check_reserved(where, grant, framework, agent, on_reservation)
        for path in ancestors(framework.role):
            by_role[path] = by_role.get(path, Resources.empty()) + grant.resources
        granted = on_agent.get(agent.id, Resources.empty()) + unreserved
        if not agent.free.contains(granted):
            raise AssertionError(
                f"{where}: grants on the agent exceed its free resources"
                f" ({'; '.join(agent.free.shortfall(granted))}; free {agent.free},"
                f" granted {granted})"
            )
        on_agent[agent.id] = granted
    for framework_id in [*round.reasons, *round.role_reasons]:
        if framework_id not in roles_of:
            raise AssertionError(f"reasons: framework {framework_id} is not in the view")
    _check_quota_limits(view, by_role)


def _grant_target(
    where: str,
    grant: OfferGrant,
    frameworks: dict[tuple[FrameworkId, str], FrameworkView],
    roles_of: dict[FrameworkId, list[str]],
    agents: dict[AgentId, AgentView],
    now: float,
) -> tuple[FrameworkView, AgentView]:
    """The framework (in the grant's role) and the agent a grant names, both of the view; the
    grant is non-empty and goes to a framework neither suppressed nor filtered there."""
    roles = roles_of.get(grant.framework_id)
    if roles is None:
        raise AssertionError(f"{where}: framework {grant.framework_id} is not in the view")
    if not grant.role and len(roles) > 1:
        raise AssertionError(
            f"{where}: framework holds roles {sorted(roles)}, but the grant names none"
        )
    framework = frameworks.get((grant.framework_id, grant.role or roles[0]))
    if framework is None:
        raise AssertionError(
            f"{where}: role {grant.role!r} is not one of the framework's ({sorted(roles)})"
        )
    agent = agents.get(grant.agent_id)
    if agent is None:
        raise AssertionError(f"{where}: agent {grant.agent_id} is not in the view")
    if grant.resources.is_empty():
        raise AssertionError(f"{where}: grant is empty")
    if framework.suppressed:
        raise AssertionError(f"{where}: framework is suppressed")
    if is_filtered(framework, agent.id, now):
        until = framework.filters[agent.id]
        raise AssertionError(
            f"{where}: agent is filtered for this framework until {until}, now is {now}"
        )
    return framework, agent


def _check_reserved(
    where: str,
    grant: OfferGrant,
    framework: FrameworkView,
    agent: AgentView,
    on_reservation: dict[tuple[AgentId, str], Resources],
) -> Resources:
    """Check the grant's reserved parts (each for the framework's role or one above it,
    within the agent's reservation with earlier grants' parts) and count them in
    `on_reservation`; returns the grant's unreserved part."""
    unreserved = grant.resources
    for role, part in grant.reserved.items():
        if role not in ancestors(framework.role):
            raise AssertionError(
                f"{where}: offers resources reserved for role {role!r} to a framework of"
                f" role {framework.role!r}"
            )
        if not grant.resources.contains(part):
            raise AssertionError(f"{where}: reserved part {part} is not in the grant")
        key = (agent.id, role)
        took = on_reservation.get(key, Resources.empty()) + part
        pool = agent.reserved.get(role, Resources.empty())
        if not pool.contains(took):
            raise AssertionError(
                f"{where}: grants exceed the agent's free reservation for {role!r}"
                f" ({'; '.join(pool.shortfall(took))})"
            )
        on_reservation[key] = took
        # Two pools may name the same port (generated views do): each part is checked above.
        unreserved = unreserved.minus_clamped(part)
    return unreserved


def _check_quota_limits(view: ClusterView, granted: dict[str, Resources]) -> None:
    """A role granted anything of a limited scalar must stay within its limit (a role already
    above it, after the limit was lowered, may only be granted none of that scalar)."""
    held: dict[str, Resources] = {}
    for fw in view.frameworks:
        for path in ancestors(fw.role):
            held[path] = held.get(path, Resources.empty()) + fw.allocated
    for role, quota in view.quotas.items():
        if quota.limit is None or role not in granted:
            continue
        for name, limit in quota.limit.scalars.items():
            got = granted[role].scalars.get(name, 0)
            if got and held.get(role, Resources.empty()).scalars.get(name, 0) + got > limit:
                raise AssertionError(
                    f"role {role!r}: grants lift {name} above its quota limit"
                    f" ({limit / 1000:g}): held {held.get(role, Resources.empty())},"
                    f" granted {granted[role]}"
                )


def check_deterministic(allocator: Allocator, view: ClusterView, now: float) -> AllocationRound:
    """Assert that `allocator` gives the same round twice for the same view and time, and does
    not change the view it is given. Returns the round.

    Raises:
        AssertionError: if the two rounds differ, or the view was changed.
    """
    before = copy.deepcopy(view)
    first = allocator.allocate(view, now)
    if view != before:
        raise AssertionError("allocate() changed the view it was given")
    second = allocator.allocate(copy.deepcopy(view), now)
    if first.grants != second.grants:
        raise AssertionError(
            "two passes over the same view gave different grants:"
            f" {_describe(first)} then {_describe(second)}"
        )
    if dict(first.reasons) != dict(second.reasons) or first.role_reasons != second.role_reasons:
        raise AssertionError(
            f"two passes over the same view gave different reasons: {dict(first.reasons)}"
            f" then {dict(second.reasons)}"
        )
    return first


def check_work_conserving(view: ClusterView, round: AllocationRound, now: float) -> None:
    """Assert that no agent with allocatable free resources (see `allocatable`) is left
    unoffered while some framework could take it (not suppressed, not filtered for it).

    This holds for whole-agent allocators without quota limits; an allocator may legitimately
    hold resources back (a quota limit, a reservation), so this check is not part of
    `check_allocator`.

    Raises:
        AssertionError: naming the idle agent and a framework that could have had it.
    """
    offered = {g.agent_id for g in round.grants}
    for agent in view.agents:
        if not allocatable(agent.free) or agent.id in offered:
            continue
        for framework in view.frameworks:
            if not framework.suppressed and not is_filtered(framework, agent.id, now):
                raise AssertionError(
                    f"agent {agent.id} has free resources ({agent.free}) but was not offered,"
                    f" although framework {framework.id} could take it"
                )


def check_allocator(allocator: Allocator, view: ClusterView, now: float) -> AllocationRound:
    """Run `allocator` on `view` and apply `check_deterministic` and `check_round`.

    Returns:
        The round, for further assertions.
    """
    round = check_deterministic(allocator, view, now)
    check_round(view, round, now)
    return round


def _describe(round: AllocationRound) -> str:
    return (
        "["
        + ", ".join(
            f"{g.framework_id}{'(' + g.role + ')' if g.role else ''}<-{g.agent_id}"
            for g in round.grants
        )
        + "]"
    )


__all__ = [
    "check_allocator",
    "check_deterministic",
    "check_round",
    "check_work_conserving",
]
