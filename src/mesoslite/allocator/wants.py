"""What a framework still wants in an allocation pass: tasks of its demands' shapes, or a
whole agent's free resources."""

from __future__ import annotations

from mesoslite.resources import Resources


def shape_key(shape: Resources) -> tuple[tuple[str, int], ...]:
    """A shape's cursor key: its scalars, sorted."""
    return tuple(sorted(shape.scalars.items()))


class Want:
    """What a framework still wants this pass: `count` tasks of `shape` (None: a whole
    agent's free resources), and the shape's cursor key (`shape_key`), computed once."""

    __slots__ = ("shape", "count", "key")

    def __init__(
        self, shape: Resources | None, count: int, key: tuple[tuple[str, int], ...] | None
    ) -> None:
        self.shape = shape
        self.count = count
        self.key = key


# What a framework without demands is placed for: a whole agent's free resources, once.
WHOLE_AGENT = (Want(None, 1, None),)
