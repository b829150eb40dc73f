"""Sorters: the clients (roles or frameworks) of one level, kept in policy order as they grow.

As in Mesos's `Sorter`, the hierarchical allocator asks a sorter "who is next?" and tells it
"this client was given that". Two kinds:

- `KeyedSorter`, for policies that give a sort key per client (`KeyedPolicy`): a grant changes
  one key, so the client is moved with two binary searches; no full re-sort per agent.
- `OrderedSorter`, for any `Policy`: calls the policy's `order_*` again after a change, lazily.

Policies whose share is a `ShareMeter` (drf, fair, ssf) get `share_sorter.ShareSorter`
instead: the same keys, kept as floats that a grant raises in place (#15).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator, Mapping
from typing import Protocol, runtime_checkable

from mesoslite.allocator.arith import add_into, plus
from mesoslite.ids import FrameworkId
from mesoslite.resources import Resources

# A sort key must order clients totally, so it ends with the client's name or id.
SortKey = tuple[float, str]


@runtime_checkable
class KeyedPolicy(Protocol):
    """A `Policy` whose order is "sorted by a key of each client alone".

    Optional: a policy that has these methods is applied incrementally (fast); one that has
    only `order_roles`/`order_frameworks` still works. The keys must sort clients exactly as
    `order_roles`/`order_frameworks` do.
    """

    def role_key(
        self, role: str, allocated: Resources, weight: float, total: Resources
    ) -> SortKey: ...

    def framework_key(
        self, framework_id: FrameworkId, allocated: Resources, total: Resources
    ) -> SortKey: ...


class Sorter(Protocol):
    """The clients of one level, in order, with what each is allocated."""

    def add(self, client: str, allocated: Resources) -> None: ...

    def allocate(self, client: str, resources: Resources) -> None:
        """Add `resources` to `client`'s allocation and move it to its new place."""
        ...

    def update(self, client: str, allocated: Resources) -> None:
        """`client` now holds `allocated` (its allocation plus a grant, summed once by the
        caller, #15): move it to its new place."""
        ...

    def grow(self, client: str, resources: Resources) -> Resources:
        """`allocate`, returning what `client` holds now: the sorter's own bundle, which
        the caller may keep (one sum per grant, #15) but not change; later grants may
        change it in place."""
        ...

    def allocation(self, client: str) -> Resources: ...

    def remove(self, client: str) -> None:
        """Take `client` out (it can receive nothing more this pass)."""
        ...

    def first(self) -> str | None:
        """The most deserving client, or None when empty."""
        ...

    def __iter__(self) -> Iterator[str]:
        """Clients, most deserving first. Do not change the sorter while iterating."""
        ...

    def __len__(self) -> int: ...


class KeyedSorter:
    """Clients kept sorted by `key(client, allocated)`."""

    __slots__ = ("_key", "_allocated", "_keys", "_order", "_owned")

    def __init__(self, key: Callable[[str, Resources], SortKey]) -> None:
        self._key = key
        self._allocated: dict[str, Resources] = {}
        # Clients whose allocation is a bundle this sorter made (`arith.add_into`).
        self._owned: set[str] = set()
        self._keys: dict[str, SortKey] = {}
        self._order: list[tuple[SortKey, str]] = []

    def add(self, client: str, allocated: Resources) -> None:
        if client in self._keys:
            raise ValueError(f"client {client!r} is already in the sorter")
        self._allocated[client] = allocated
        key = self._key(client, allocated)
        self._keys[client] = key
        bisect.insort(self._order, (key, client))

    def allocate(self, client: str, resources: Resources) -> None:
        owned = self._owned
        self.update(client, add_into(self._allocated[client], resources, client in owned))
        owned.add(client)

    def grow(self, client: str, resources: Resources) -> Resources:
        self.allocate(client, resources)
        return self._allocated[client]

    def update(self, client: str, allocated: Resources) -> None:
        if allocated is not self._allocated[client]:
            self._owned.discard(client)  # the caller's bundle, not ours to change
        self._allocated[client] = allocated
        keys, order = self._keys, self._order
        old = keys[client]
        key = self._key(client, allocated)
        keys[client] = key
        index = bisect.bisect_left(order, (old, client))
        if index >= len(order) or order[index][1] != client:
            # A key that does not compare consistently (NaN): find the client the slow way.
            index = next(i for i, (_, c) in enumerate(order) if c == client)
        if key == old:
            return  # same key, same place (a share capped at 1, say)
        if key > old:
            # A grant raises a key (DRF, fair): the new place is at or after the old one, so
            # search there only; the same slot is overwritten in place.
            new = bisect.bisect_left(order, (key, client), index + 1) - 1
            if new == index:
                order[index] = (key, client)
                return
            del order[index]
            order.insert(new, (key, client))
            return
        del order[index]
        bisect.insort(order, (key, client))

    def allocation(self, client: str) -> Resources:
        held = self._allocated[client]
        if client in self._owned:  # later grants change it in place: give a snapshot
            return Resources(dict(held.scalars), held.ranges, held.sets)
        return held

    def remove(self, client: str) -> None:
        old = (self._keys.pop(client), client)
        del self._allocated[client]
        self._owned.discard(client)
        index = bisect.bisect_left(self._order, old)
        if index >= len(self._order) or self._order[index][1] != client:
            index = next(i for i, (_, c) in enumerate(self._order) if c == client)
        del self._order[index]

    def first(self) -> str | None:
        return self._order[0][1] if self._order else None

    def __iter__(self) -> Iterator[str]:
        for _, client in self._order:
            yield client

    def __len__(self) -> int:
        return len(self._order)


class OrderedSorter:
    """Clients in the order `order(allocations)` returns, recomputed after each change.

    A policy that leaves a client out of its order, or names one that does not exist, does
    not lose or invent clients: unknown names are dropped and forgotten clients come last,
    by name.
    """

    __slots__ = ("_order_fn", "_allocated", "_order")

    def __init__(self, order: Callable[[Mapping[str, Resources]], list[str]]) -> None:
        self._order_fn = order
        self._allocated: dict[str, Resources] = {}
        self._order: list[str] | None = None

    def add(self, client: str, allocated: Resources) -> None:
        if client in self._allocated:
            raise ValueError(f"client {client!r} is already in the sorter")
        self._allocated[client] = allocated
        self._order = None

    def allocate(self, client: str, resources: Resources) -> None:
        self.update(client, plus(self._allocated[client], resources))

    def grow(self, client: str, resources: Resources) -> Resources:
        self.allocate(client, resources)
        return self._allocated[client]

    def update(self, client: str, allocated: Resources) -> None:
        # A snapshot: a pass may sum into its bundle in place, and the policy sees a mapping.
        self._allocated[client] = Resources(
            dict(allocated.scalars), allocated.ranges, allocated.sets
        )
        self._order = None

    def allocation(self, client: str) -> Resources:
        return self._allocated[client]

    def remove(self, client: str) -> None:
        del self._allocated[client]
        if self._order is not None:
            self._order.remove(client)

    def first(self) -> str | None:
        if self._order is None:
            self._order = self._sorted()
        return self._order[0] if self._order else None

    def __iter__(self) -> Iterator[str]:
        if self._order is None:
            self._order = self._sorted()
        return iter(self._order)

    def __len__(self) -> int:
        return len(self._allocated)

    def _sorted(self) -> list[str]:
        seen: set[str] = set()
        out: list[str] = []
        for client in self._order_fn(dict(self._allocated)):
            if client in self._allocated and client not in seen:
                seen.add(client)
                out.append(client)
        if len(out) < len(self._allocated):
            out.extend(sorted(c for c in self._allocated if c not in seen))
        return out
