"""Reservations in an allocation pass: an agent's resources reserved for a role are offered
only to frameworks of that role or below it, beside the agent's unreserved free resources."""

from __future__ import annotations

from mesoslite.allocator.agents import allocatable
from mesoslite.allocator.quota import take
from mesoslite.allocator.roles import ancestors
from mesoslite.resources import Resources


def offerable(free: Resources, pools: dict[str, Resources] | None) -> bool:
    """True if an agent has anything worth offering, unreserved or in any role's pool."""
    if allocatable(free):
        return True
    return pools is not None and any(allocatable(p) for p in pools.values())


def available_to(free: Resources, pools: dict[str, Resources] | None, role: str) -> Resources:
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
