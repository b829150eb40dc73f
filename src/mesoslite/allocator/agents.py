"""The agents of an allocation pass: which have something worth offering, in what order
they are tried, and the cluster total they add up to."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence

from mesoslite.allocator.base import AgentView
from mesoslite.resources import SCALE, Range, Resources

# Mesos's MIN_CPUS and MIN_MEM: free resources with less than both are not offered, so that
# nobody is offered (and then declines, filtering the agent) a leftover no task can use.
MIN_ALLOCATABLE_CPUS = 0.01
MIN_ALLOCATABLE_MEM = 32.0


def allocatable(free: Resources) -> bool:
    """True if `free` is worth offering: at least `MIN_ALLOCATABLE_CPUS` cpus or
    `MIN_ALLOCATABLE_MEM` MB of memory."""
    scalars = free.scalars  # `Resources.scalar`, inlined: asked of every agent each pass
    return (
        scalars.get("cpus", 0) / SCALE >= MIN_ALLOCATABLE_CPUS
        or scalars.get("mem", 0) / SCALE >= MIN_ALLOCATABLE_MEM
    )


def agent_order(agents: Sequence[AgentView], seed: int) -> list[AgentView]:
    """`agents` in a pseudo-random order that depends only on `seed` and the agents' ids.

    A keyed hash rather than `random.Random(seed).shuffle`: `allocator/` must not import
    `random` (STYLE rule 6), and this order does not depend on the order of `view.agents`.
    """
    # The same agents and seed as the last call (ssf asks twice per pass; a benchmark or a
    # quiet cluster passes after passes): the same order, without hashing again (#15).
    ids = tuple([agent.id for agent in agents])
    global _last
    last = _last  # read once: another thread may replace it (never change it)
    if last is not None and last[0] == seed and last[1] == ids:
        return [agents[i] for i in last[2]]
    order = _ranked(agents, seed)
    _last = (seed, ids, order)
    return [agents[i] for i in order]


# The last `agent_order`: (seed, the agents' ids, their ranks); ids and ints only, so no
# view is kept alive by it.
_last: tuple[int, tuple[str, ...], list[int]] | None = None


def _ranked(agents: Sequence[AgentView], seed: int) -> list[int]:
    """The indices of `agents` in `agent_order`'s order."""
    # Asked of every agent each pass (#15): the seed's hash state is copied rather than
    # rebuilt, and the 8-byte digests compared as integers (big-endian: the bytes' order).
    base = hashlib.blake2b(f"{seed}\0".encode(), digest_size=8)
    from_bytes = int.from_bytes
    keys = []
    for agent in agents:
        h = base.copy()
        h.update(agent.id.encode())
        keys.append(from_bytes(h.digest(), "big"))
    if len(set(keys)) == len(keys):
        return sorted(range(len(agents)), key=keys.__getitem__)
    # Two digests alike (not seen in practice): ties go by id.
    return sorted(range(len(agents)), key=lambda i: (keys[i], agents[i].id))


def sum_resources(bundles: list[Resources]) -> Resources:
    """The sum of many bundles; equal to folding `+`, but merges each range list once."""
    # Agents often share one `Resources` object for their totals: count each object once,
    # and merge its ranges and sets once (a union), multiplying only its scalars (#15).
    # (`bundles` keeps every object alive, so no id is reused meanwhile.)
    counts = Counter(map(id, bundles))
    distinct = {id(res): res for res in bundles}
    scalars: dict[str, int] = {}
    ranges: dict[str, list[Range]] = {}
    sets: dict[str, set[str]] = {}
    for key, res in distinct.items():
        times = counts[key]
        for name, milli in res.scalars.items():
            scalars[name] = scalars.get(name, 0) + milli * times
        for name, rs in res.ranges.items():
            ranges.setdefault(name, []).extend(rs)
        for name, items in res.sets.items():
            sets.setdefault(name, set()).update(items)
    # `Resources.of` merges the ranges (once per name); scalars are already in thousandths.
    merged = Resources.of(ranges=ranges)
    return Resources(
        {name: milli for name, milli in scalars.items() if milli},
        dict(merged.ranges),
        {name: frozenset(items) for name, items in sets.items() if items},
    )
