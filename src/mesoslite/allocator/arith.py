"""`Resources` sums and differences on an allocation pass's hot path, equal to `+` and `-`.

A pass adds each grant to its framework's and roles' allocations and takes it from its
agent's free resources. With whole-agent offers a grant carries the agent's port ranges,
and `Resources.__add__` re-merges range lists every time although, in a cluster whose
agents share one port range, the ranges added are the ones already held. These helpers
recognise that case (and an agent given all it has) and skip the merge; the result is the
same `Resources` value (#15).
"""

from __future__ import annotations

from mesoslite.resources import Resources

EMPTY = Resources.empty()


def same_ranges_and_sets(held: Resources, added: Resources) -> bool:
    """True when every range list and set of `added` is already in `held` unchanged,
    so their union is `held`'s."""
    ranges = held.ranges
    for name, r in added.ranges.items():
        have = ranges.get(name)
        if have is not r and have != r:
            return False
    sets = held.sets
    for name, s in added.sets.items():
        have_s = sets.get(name)
        if have_s is None or not s <= have_s:
            return False
    return True


def plus(held: Resources, added: Resources) -> Resources:
    """`held + added`, without re-merging ranges `held` already has exactly."""
    if (added.ranges or added.sets) and held.scalars and same_ranges_and_sets(held, added):
        sc = dict(held.scalars)
        for name, v in added.scalars.items():
            sc[name] = sc.get(name, 0) + v
        return Resources(sc, held.ranges, held.sets)
    return held + added


def minus(have: Resources, taken: Resources) -> Resources:
    """`have - taken` (raises as `-` does); all of it taken is the empty bundle at once."""
    if taken is have:
        return EMPTY
    return have - taken


def add_into(held: Resources, added: Resources, owned: bool) -> Resources:
    """`held + added`, summing the scalars into `held` itself when the caller `owned` it
    (a bundle only this pass sees, made here) and `added` brings no range or set it lacks;
    otherwise a new bundle the caller then owns. Saves a bundle per grant and level (#15).

    An owned bundle's scalars change in place: it must not leave the pass (equal values,
    but a reader keeping it would see it grow).
    """
    if owned and (not (added.ranges or added.sets) or same_ranges_and_sets(held, added)):
        scalars = held.scalars
        for name, v in added.scalars.items():
            scalars[name] = scalars.get(name, 0) + v  # type: ignore[index]
        return held
    total = plus(held, added)
    return Resources(dict(total.scalars), total.ranges, total.sets)
