"""The quota steps of an allocation pass: which roles are owed their guarantee (served
first), what is held back for guarantees nobody claimed yet, and the room each grant gets.

Quota covers scalars only (`quota.py`); rooms are scalars in thousandths.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from mesoslite.allocator.base import Quota
from mesoslite.allocator.quota import unmet_guarantee
from mesoslite.allocator.roles import ancestors
from mesoslite.ids import AgentId, FrameworkId
from mesoslite.resources import Resources

EMPTY = Resources.empty()


def guaranteed_roles(
    candidates: Mapping[str, list[FrameworkId]],
    quotas: Mapping[str, Quota],
    role_alloc: Mapping[str, Resources],
) -> dict[str, list[FrameworkId]]:
    """The candidate roles below (or at) a role whose guarantee is not met yet."""
    return {
        role: members
        for role, members in candidates.items()
        if any(unmet_guarantee(quotas.get(p), role_alloc[p]) for p in ancestors(role))
    }


def guarantee_need(
    role: str, quotas: Mapping[str, Quota], role_alloc: Mapping[str, Resources]
) -> dict[str, int]:
    """What the guarantees of `role` and the roles above it still lack."""
    need: dict[str, int] = {}
    for path in ancestors(role):
        need.update(unmet_guarantee(quotas.get(path), role_alloc[path]))
    return need


def held_back(
    quotas: Mapping[str, Quota],
    role_alloc: Mapping[str, Resources],
    free: Iterable[Resources],
    pools: Mapping[AgentId, Mapping[str, Resources]] | None = None,
) -> tuple[dict[str, int] | None, set[str]]:
    """(the unallocated scalars beyond what unmet guarantees need, or None if no guarantee
    is owed; the roles owed one). What guarantees still lack (roles that asked for nothing
    this pass, or that the guarantee stage could not serve) is kept unallocated in the
    fair-share stage, so a role's guarantee is there when its frameworks come (Mesos's
    quota headroom).

    A role's unallocated reservations (`pools`: agent -> role -> reserved free resources)
    count towards its guarantee, as in Mesos: nobody else can take them, so holding
    unreserved resources back for the same need would idle them (#16)."""
    reserved = reserved_by_role(pools) if pools else {}
    owed: dict[str, int] = {}
    owed_roles: set[str] = set()
    for role, quota in quotas.items():
        held = role_alloc.get(role, EMPTY) + reserved.get(role, EMPTY)
        lacking = unmet_guarantee(quota, held)
        if lacking:
            owed_roles.add(role)
        for name, milli in lacking.items():
            owed[name] = owed.get(name, 0) + milli
    if not owed:
        return None, owed_roles
    unallocated: dict[str, int] = {}
    for res in free:
        for name in owed:
            unallocated[name] = unallocated.get(name, 0) + res.scalars.get(name, 0)
    return {name: max(0, unallocated[name] - owed[name]) for name in owed}, owed_roles


def reserved_by_role(pools: Mapping[AgentId, Mapping[str, Resources]]) -> dict[str, Resources]:
    """Role -> the unallocated reservations of its subtree (`eng` counts `eng/ml`'s)."""
    out: dict[str, Resources] = {}
    for by_role in pools.values():
        for role, pool in by_role.items():
            for path in ancestors(role):
                out[path] = out.get(path, EMPTY) + pool
    return out


def spend_spare(spare: dict[str, int], taken: Resources, owed_roles: set[str], role: str) -> None:
    """Count unreserved resources granted to a role owed nothing against the spare."""
    if owed_roles.intersection(ancestors(role)):
        return
    for name in spare:
        milli = taken.scalars.get(name, 0)
        if milli:
            spare[name] = max(0, spare[name] - milli)


def tighter(a: Mapping[str, int], b: Mapping[str, int] | None) -> dict[str, int]:
    """The scalar room allowed by both `a` and `b` (a name missing from one is not capped
    by it)."""
    out = dict(a)
    for name, left in (b or {}).items():
        out[name] = min(left, out.get(name, left))
    return out
