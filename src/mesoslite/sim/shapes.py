"""How many tasks of a shape an offer holds, and what taking them leaves (`SimFramework.fill`)."""

from __future__ import annotations

from mesoslite.frozen import maker
from mesoslite.resources import Resources

_UNBOUNDED = 2**62
_resources = maker(Resources)  # a bundle per offer taken (#15)


def copies(have: Resources, shape: Resources) -> int:
    """How many `shape`s `have` holds at once (as many `contains` and `-` would find):
    integer division per scalar; shapes with ranges or sets are counted one by one."""
    if shape.ranges or shape.sets:
        n = 0
        while have.contains(shape):
            have, n = have - shape, n + 1
        return n
    scalars = have.scalars
    fit: int | None = None
    for name, milli in shape.scalars.items():
        k = scalars.get(name, 0) // milli
        if fit is None or k < fit:
            fit = k
    return _UNBOUNDED if fit is None else fit  # an empty shape fits any number of times


def less(have: Resources, shape: Resources, n: int) -> Resources:
    """`have` less `n` times `shape` (which it holds), equal to subtracting it `n` times."""
    if shape.ranges or shape.sets:
        for _ in range(n):
            have = have - shape
        return have
    scalars = dict(have.scalars)
    for name, milli in shape.scalars.items():
        left = scalars[name] - n * milli
        if left:
            scalars[name] = left
        else:
            del scalars[name]
    return _resources(scalars, have.ranges, have.sets)
