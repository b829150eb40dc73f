"""`ShareSorter`: a sorter for share policies (drf, fair) keyed on plain floats (#15).

`KeyedSorter` asks the policy for a key after each grant: a `Resources` sum, then a share
worked out over every resource of the bundle, per grant and level. For a policy whose share
is "the largest `quantity / whole` over some resources" (`ShareMeter`: DRF over every
resource of the cluster, fair over one), a grant only raises the quantities it brings, so
the new share is the larger of the old one and the shares of the quantities it raised:
the sorter adds a grant's scalars into its own copy of the client's bundle and compares
those few numbers. A grant that brings a range or set the client lacks (its count changes),
or a scalar the client did not hold (it may hide a range or set count of that name), or a
negative amount, has its share worked out whole, as before. Keys and order are exactly
`KeyedSorter`'s with the policy's keys (`(share / weight, client)`; the same floats).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from mesoslite.allocator.arith import plus, same_ranges_and_sets
from mesoslite.resources import SCALE, Resources

SortKey = tuple[float, str]
_MAX_COUNTS = 4096  # range lists a `ShareMeter` keeps counted


class ShareMeter:
    """The share `max(0, quantity(name) / whole for name, whole in wholes)`, where a
    quantity is the scalar, else the range count, else the set size (`Resources.quantity`)."""

    __slots__ = ("wholes", "by_name", "_counts")

    def __init__(self, wholes: tuple[tuple[str, float], ...]) -> None:
        # Only positive wholes: a resource the cluster does not have is not shared out.
        self.wholes = tuple((name, whole) for name, whole in wholes if whole > 0)
        self.by_name = dict(self.wholes)
        # Range lists counted, by identity (kept with their count, so an id is not reused):
        # grants of one agent's ports share one tuple (#15).
        self._counts: dict[int, tuple[tuple[tuple[int, int], ...], int]] = {}

    def _count(self, ranges: tuple[tuple[int, int], ...]) -> int:
        hit = self._counts.get(id(ranges))
        if hit is not None and hit[0] is ranges:
            return hit[1]
        if len(self._counts) >= _MAX_COUNTS:
            self._counts.clear()
        count = sum(end - begin + 1 for begin, end in ranges)
        self._counts[id(ranges)] = (ranges, count)
        return count

    def share(self, allocated: Resources) -> float:
        best = 0.0
        scalars, ranges, sets = allocated.scalars, allocated.ranges, allocated.sets
        for name, whole in self.wholes:
            milli = scalars.get(name)
            if milli is not None:
                share = milli / SCALE / whole
            elif name in ranges:
                share = self._count(ranges[name]) / whole
            elif name in sets:
                share = len(sets[name]) / whole
            else:
                continue
            if share > best:
                best = share
        return best


def weighted(share: float, weight: float) -> float:
    """`drf.weighted_share`: a weight that is not a positive finite number sorts last."""
    if not (weight > 0 and math.isfinite(weight)):
        return math.inf
    return share / weight


class ShareSorter:
    """Clients sorted by `(share / weight, client)` (`weight` None: the share alone).

    `grow` adds a grant into a copy of the client's bundle that the sorter owns (made at
    its first grant, never the caller's) and returns that bundle: the caller may keep it
    as the client's allocation, but must not change it, and sees it grow with later grants.
    """

    __slots__ = ("_meter", "_weight", "_clients", "_order")

    def __init__(self, meter: ShareMeter, weight: Callable[[str], float] | None = None) -> None:
        self._meter = meter
        self._weight = weight
        # client -> [held, owned, share, key, weight]: one record, one lookup per grant.
        self._clients: dict[str, list[Any]] = {}
        self._order: list[SortKey] = []

    def _key(self, client: str, share: float, weight: float | None) -> SortKey:
        if weight is None:
            return (share, client)
        return (weighted(share, weight), client)

    def add(self, client: str, allocated: Resources) -> None:
        if client in self._clients:
            raise ValueError(f"client {client!r} is already in the sorter")
        weight = None if self._weight is None else self._weight(client)
        share = self._meter.share(allocated)
        key = self._key(client, share, weight)
        self._clients[client] = [allocated, False, share, key, weight]
        bisect.insort(self._order, key)

    def grow(self, client: str, added: Resources) -> Resources:
        """Add `added` to `client`'s allocation, move it to its new place, and return what
        it holds now (the sorter's bundle). Long because it runs twice per grant: the
        share's update and the common move are inlined (#15)."""
        record = self._clients[client]
        held: Resources = record[0]
        if not record[1]:
            held = Resources(dict(held.scalars), held.ranges, held.sets)
            record[1] = True
        ranges, sets = added.ranges, added.sets
        if (
            (ranges or sets)
            and (ranges is not held.ranges or sets is not held.sets)
            and not same_ranges_and_sets(held, added)
        ):
            held = _with_maps(held, added)
            share = self._meter.share(held)
        else:
            share = record[2]
            scalars: dict[str, int] = held.scalars  # type: ignore[assignment]  # ours
            have_of, whole_of = scalars.get, self._meter.by_name.get
            whole_again = False
            for name, v in added.scalars.items():
                have = have_of(name)
                if have is None or v < 0:
                    # A name it did not hold (it may hide a range or set count of that
                    # name), or an amount `Resources`' arithmetic does not make: the share
                    # is worked out whole below.
                    whole_again = True
                    have = have or 0
                now = scalars[name] = have + v
                whole = whole_of(name)
                if whole is not None:
                    raised = now / SCALE / whole
                    if raised > share:
                        share = raised
            if whole_again:
                share = self._meter.share(held)
        record[0] = held
        record[2] = share
        weight = record[4]
        if weight is None:
            key = (share, client)
        elif weight > 0 and weight != math.inf:  # `weighted`, inlined (a NaN fails `>`)
            key = (share / weight, client)
        else:
            key = (math.inf, client)
        old = record[3]
        if key != old:
            record[3] = key
            order = self._order
            # `_move`, inlined for the common case: the client just served is first and
            # its key rose (#15).
            if key > old and order[0] == old:
                new = bisect.bisect_left(order, key, 1) - 1
                if new == 0:
                    order[0] = key
                else:
                    del order[0]
                    order.insert(new, key)
            else:
                self._move(old, key)
        return held

    def allocate(self, client: str, resources: Resources) -> None:
        self.grow(client, resources)

    def update(self, client: str, allocated: Resources) -> None:
        """`client` now holds `allocated` (the caller's bundle, not changed here)."""
        record = self._clients[client]
        record[0] = allocated
        record[1] = False
        share = record[2] = self._meter.share(allocated)
        key = self._key(client, share, record[4])
        old = record[3]
        if key != old:
            record[3] = key
            self._move(old, key)

    def _index(self, key: SortKey) -> int:
        order = self._order
        if order[0] == key:  # the client just served is usually first
            return 0
        index = bisect.bisect_left(order, key)
        if index >= len(order) or order[index][1] != key[1]:
            # A key that does not compare consistently (NaN): find the client the slow way.
            index = next(i for i, (_, c) in enumerate(order) if c == key[1])
        return index

    def _move(self, old: SortKey, key: SortKey) -> None:
        order = self._order
        index = self._index(old)
        if key > old:
            # A grant raises a key: the new place is at or after the old one.
            new = bisect.bisect_left(order, key, index + 1) - 1
            if new == index:
                order[index] = key
                return
            del order[index]
            order.insert(new, key)
            return
        del order[index]
        bisect.insort(order, key)

    def allocation(self, client: str) -> Resources:
        held, owned = self._clients[client][:2]
        if owned:  # later grants change it in place: give a snapshot
            return Resources(dict(held.scalars), held.ranges, held.sets)
        return held  # type: ignore[no-any-return]

    def remove(self, client: str) -> None:
        record = self._clients.pop(client)
        del self._order[self._index(record[3])]

    def first(self) -> str | None:
        return self._order[0][1] if self._order else None

    def __iter__(self) -> Iterator[str]:
        for _, client in self._order:
            yield client

    def __len__(self) -> int:
        return len(self._order)


def _with_maps(held: Resources, added: Resources) -> Resources:
    """`held + added` as a new bundle of the sorter's, for an `added` that brings ranges or
    sets `held` lacks."""
    if held.ranges or held.sets:
        total = plus(held, added)
        return Resources(dict(total.scalars), total.ranges, total.sets)
    # Nothing to merge with: `added`'s own (immutable, merged) maps are the union, and
    # later grants that share them are recognised by identity.
    summed = dict(held.scalars)
    for name, v in added.scalars.items():
        summed[name] = summed.get(name, 0) + v
    return Resources(summed, added.ranges, added.sets)


def role_weights(weights: Mapping[str, float], default: float) -> Callable[[str], float]:
    """A role's weight (`default` when unset), for `ShareSorter`."""
    get = weights.get
    return lambda role: get(role, default)
