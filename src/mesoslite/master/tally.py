"""`Tally`: a running sum of resource bundles, changed in place and read as a `Resources`.

The master's records sum what their tasks use and their offers hold. Each launch, offer,
rescind and task end changed those sums by building a new immutable bundle (a dict copy
and an object each, eight per task, #15); a `Tally` adds and subtracts scalars in its own
dict, and builds the bundle only when someone reads it (once per allocation pass, not once
per task). Ranges and sets (ports) go through `Resources` arithmetic, as before, so every
answer is the one the immutable sums gave.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TypeVar, overload

from mesoslite.frozen import maker
from mesoslite.resources import Range, Resources

_EMPTY = Resources.empty()
_resources = maker(Resources)
_D = TypeVar("_D")
_MISSING = object()


class Tally:
    """A mutable sum of `Resources`; `value` is the sum as an immutable bundle.

    `value` returns the same object until the sum changes, so callers that cache by
    identity (`AgentRecord.free`) keep working.
    """

    # `scalars`: the scalars as they are now (live: never keep it). `version` counts the
    # changes: a cache of something drawn from the sum checks it. The master's records
    # change `scalars` in place on their hottest paths, as `add` does, with `version += 1`.
    __slots__ = ("scalars", "_ranges", "_sets", "_value", "_value_version", "version")

    def __init__(self, start: Resources = _EMPTY) -> None:
        self.scalars: dict[str, int] = {}
        self._ranges: Mapping[str, tuple[Range, ...]] = {}
        self._sets: Mapping[str, frozenset[str]] = {}
        self._value: Resources = start
        self._value_version = self.version = 0
        self.set(start)

    def set(self, value: Resources) -> None:
        self.scalars = dict(value.scalars)
        self._ranges, self._sets = value.ranges, value.sets
        self._value = value
        self.version += 1
        self._value_version = self.version

    @property
    def value(self) -> Resources:
        if self._value_version != self.version:
            # A copy: the tally goes on changing its own dict.
            self._value = _resources(dict(self.scalars), self._ranges, self._sets)
            self._value_version = self.version
        return self._value

    def has_items(self) -> bool:
        """Whether it holds ranges or sets (ports), not only scalars."""
        return bool(self._ranges or self._sets)

    def is_empty(self) -> bool:
        return not (self.scalars or self._ranges or self._sets)

    def add(self, res: Resources) -> None:
        """The sum plus `res` (`value + res`)."""
        if res.ranges or res.sets:
            self.set(self.value + res)
            return
        sc = self.scalars
        get = sc.get
        for name, v in res.scalars.items():
            sc[name] = get(name, 0) + v
        self.version += 1

    def subtract(self, res: Resources, *, clamp: bool) -> None:
        """The sum less `res`: `value.minus_clamped(res)` if `clamp`, else `value - res`,
        which raises `ValueError` (changing nothing) if the sum does not hold `res`."""
        if res.ranges or res.sets:
            self.set(self.value.minus_clamped(res) if clamp else self.value - res)
            return
        sc = self.scalars
        get = sc.get
        items = res.scalars.items()
        if not clamp:
            for name, v in items:
                if get(name, 0) < v:
                    self.set(self.value - res)  # raises, naming what is short
                    return
        for name, v in items:
            left = get(name, 0) - v
            if left > 0:
                sc[name] = left
            else:
                sc.pop(name, None)
        self.version += 1

    def copy(self) -> Tally:
        return Tally(self.value)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Tally):
            return self.value == other.value
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Tally({self.value})"


class RoleSums(Mapping[str, Resources]):
    """A record's sums by role, read as bundles (`used_by_role`); its `Tally`s are the
    record's to change. `pop` drops a role's sum (a role the framework left)."""

    __slots__ = ("_tallies",)

    def __init__(self, tallies: dict[str, Tally]) -> None:
        self._tallies = tallies

    def __getitem__(self, role: str) -> Resources:
        return self._tallies[role].value

    @overload
    def get(self, role: str) -> Resources | None: ...
    @overload
    def get(self, role: str, default: Resources | _D) -> Resources | _D: ...

    def get(self, role: str, default: object = None) -> object:
        tally = self._tallies.get(role)
        return default if tally is None else tally.value

    def __contains__(self, role: object) -> bool:
        return role in self._tallies

    def __iter__(self) -> Iterator[str]:
        return iter(self._tallies)

    def __len__(self) -> int:
        return len(self._tallies)

    @overload
    def pop(self, role: str) -> Resources: ...
    @overload
    def pop(self, role: str, default: Resources | _D) -> Resources | _D: ...

    def pop(self, role: str, default: object = _MISSING) -> object:
        tally = self._tallies.pop(role, None)
        if tally is not None:
            return tally.value
        if default is _MISSING:
            raise KeyError(role)
        return default

    def __repr__(self) -> str:
        return repr(dict(self.items()))
