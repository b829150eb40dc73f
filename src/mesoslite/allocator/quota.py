"""Quota arithmetic: headroom under a limit, what is left of a guarantee, capping a grant.

Quota covers scalars (cpus, mem, disk, gpus); ranges and sets are not limited by it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from mesoslite.allocator.base import Quota
from mesoslite.allocator.roles import ancestors
from mesoslite.resources import Resources, parse_name_values, parse_resources


def headroom(
    role: str, quotas: Mapping[str, Quota], allocated: Mapping[str, Resources]
) -> dict[str, int] | None:
    """The scalars (in thousandths) `role` may still take under its limit and every limit
    above it (`eng/ml` is also held to `eng`'s); None when no limit applies.

    `allocated` maps each role (leaves and ancestors alike) to what its subtree holds.
    """
    room: dict[str, int] | None = None
    for path in ancestors(role):
        quota = quotas.get(path)
        if quota is None or quota.limit is None:
            continue
        held = allocated.get(path, Resources.empty())
        room = {} if room is None else room
        for name, milli in quota.limit.scalars.items():
            left = max(0, milli - held.scalars.get(name, 0))
            room[name] = min(left, room.get(name, left))
    return room


def unmet_guarantee(quota: Quota | None, allocated: Resources) -> dict[str, int]:
    """The scalars of `quota.guarantee` that `allocated` does not cover yet (thousandths)."""
    if quota is None:
        return {}
    out = {}
    for name, milli in quota.guarantee.scalars.items():
        left = milli - allocated.scalars.get(name, 0)
        if left > 0:
            out[name] = left
    return out


def fits(resources: Resources, room: Mapping[str, int] | None) -> bool:
    """True when the scalars of `resources` fit in `room` (None: unlimited)."""
    if room is None:
        return True
    return all(resources.scalars.get(name, 0) <= left for name, left in room.items())


def cap(resources: Resources, room: Mapping[str, int] | None) -> Resources:
    """`resources` with each scalar named in `room` cut down to it."""
    if room is None:
        return resources
    changed = False
    scalars = dict(resources.scalars)
    for name, left in room.items():
        have = scalars.get(name, 0)
        if have > left:
            changed = True
            if left > 0:
                scalars[name] = left
            else:
                del scalars[name]
    if not changed:
        return resources
    return Resources(scalars, resources.ranges, resources.sets)


def take(pool: Resources, wanted: Resources) -> Resources:
    """The part of `wanted` that `pool` can give: each scalar up to what `pool` has, and the
    ranges and set items that both hold."""
    scalars = {}
    for name, milli in wanted.scalars.items():
        got = min(milli, pool.scalars.get(name, 0))
        if got > 0:
            scalars[name] = got
    part = Resources(scalars, {}, {})
    for name, ranges in wanted.ranges.items():
        if name in pool.ranges:
            piece = Resources({}, {name: ranges}, {})
            part = part + (
                piece - piece.minus_clamped(Resources({}, {name: pool.ranges[name]}, {}))
            )
    for name, items in wanted.sets.items():
        both = items & pool.sets.get(name, frozenset())
        if both:
            part = part + Resources({}, {}, {name: both})
    return part


def limit_of(res: Resources, zeros: Iterable[str]) -> Resources:
    """A quota limit: `res` with each scalar named in `zeros` held at 0.

    `Resources` drops zero scalars (so that equal bundles compare equal), but in a limit a
    zero means "none of it", while a name left out means "no limit on it" (#16).
    """
    held = {name: 0 for name in zeros if name not in res.scalars}
    if not held:
        return res
    return Resources({**res.scalars, **held}, res.ranges, res.sets)


def parse_limit(text: str, field: str = "limit") -> Resources:
    """Parse a quota limit like `parse_resources`, keeping zeros: `cpus:0;mem:512` allows
    no cpus and 512 MB; `cpus:0` no cpus (other resources unlimited); `""` nothing at all.

    Raises:
        ValidationError: naming the part that is wrong.
    """
    res = parse_resources(text, field)
    scalar_names = [
        name for name, value in parse_name_values(text, field) if not value.startswith(("[", "{"))
    ]
    return limit_of(res, scalar_names)
