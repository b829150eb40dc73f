"""Reservations in an allocation pass: an agent's resources reserved for a role are offered
only to frameworks of that role or below it, beside the agent's unreserved free resources."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from mesoslite.allocator.agents import MIN_ALLOCATABLE_CPUS, MIN_ALLOCATABLE_MEM, allocatable
from mesoslite.allocator.quota import take
from mesoslite.allocator.roles import ancestors
from mesoslite.ids import AgentId
from mesoslite.resources import SCALE, Resources


def offerable(free: Resources, pools: Mapping[str, Resources] | None) -> bool:
    """True if some role may be granted something worth offering on an agent: its
    unreserved free resources, or those plus what one role may use of the pools (its own
    and its ancestors'), taken together. A role's 0.005 reserved cpus beside 0.005
    unreserved ones are worth 0.01 to it, though neither pool is alone (#16)."""
    if allocatable(free):
        return True
    if not pools:
        return False
    return any(allocatable(available_to(free, pools, role)) for role in pools)


def alive_check(
    free: Mapping[AgentId, Resources], reserved: Mapping[AgentId, Mapping[str, Resources]]
) -> Callable[[AgentId], bool]:
    """`offerable` for an agent id, reading the pass's (mutable) free and reserved maps.

    A closure over the maps, not a bound method of the pass: the agent orders keep it, and
    a pass referenced from its own order is a reference cycle that only the cyclic GC
    frees, which the simulator turns off (#15)."""

    if not reserved:

        def unreserved_alive(agent_id: AgentId) -> bool:
            # `allocatable`, inlined: asked of every agent a pass steps on (#15).
            scalars = free[agent_id].scalars
            return (
                scalars.get("cpus", 0) / SCALE >= MIN_ALLOCATABLE_CPUS
                or scalars.get("mem", 0) / SCALE >= MIN_ALLOCATABLE_MEM
            )

        return unreserved_alive

    def alive(agent_id: AgentId) -> bool:
        # Asked of every agent a search steps on: the common case first, inlined.
        res = free[agent_id]
        if allocatable(res):
            return True
        pools = reserved.get(agent_id)
        return bool(pools) and offerable(res, pools)

    return alive


def available_to(free: Resources, pools: Mapping[str, Resources] | None, role: str) -> Resources:
    """What `role` may be granted on an agent: its free resources plus the pools reserved
    for `role` or a role above it."""
    if pools:
        for path in ancestors(role):
            pool = pools.get(path)
            if pool is not None:
                free = free + pool
    return free


def take_reserved(
    pools: dict[str, Resources] | None, wanted: Resources, role: str
) -> tuple[dict[str, Resources], Resources]:
    """Take what the pools of `role` and its ancestors hold of `wanted` (nearest role first,
    `pools` changed in place); returns (the part taken from each pool, the rest of `wanted`,
    to take from the agent's unreserved free resources)."""
    left = wanted
    reserved: dict[str, Resources] = {}
    if pools:
        for path in ancestors(role):
            pool = pools.get(path)
            if pool is None or left.is_empty():
                continue
            got = take(pool, left)
            if got.is_empty():
                continue
            pools[path] = pool - got
            reserved[path] = got
            left = left - got
    return reserved, left
