"""Priority tiers: roles grouped by priority, served strictly highest tier first (#16).

A role's priority is an integer (default 0); higher is served first. A role with no priority
of its own takes its nearest ancestor's (`eng/ml` inherits `eng`'s), so a tier can be given
to a whole subtree at once. Within a tier the configured policy (drf, fair, ssf) orders
roles and frameworks as usual; a lower tier is offered only what the higher tiers could not
use in the same pass. Quota guarantees are met before any tier (`allocation_pass.run`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

from mesoslite.allocator.roles import ancestors

DEFAULT_PRIORITY = 0
# Bounds of `mesoslite role set-priority`: wide enough for any scheme, small enough to print.
MIN_PRIORITY = -1000
MAX_PRIORITY = 1000

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RoleTier:
    """A role's tier: its `priority`, and whether its tasks may be preempted for higher
    tiers' waiting work (`preemptible`)."""

    priority: int = DEFAULT_PRIORITY
    preemptible: bool = False

    @property
    def is_default(self) -> bool:
        return self == RoleTier()


def priority_of(role: str, priorities: Mapping[str, int]) -> int:
    """The role's priority: its own, else its nearest ancestor's, else `DEFAULT_PRIORITY`."""
    if not priorities:
        return DEFAULT_PRIORITY
    for path in ancestors(role):
        if path in priorities:
            return priorities[path]
    return DEFAULT_PRIORITY


def tier_of(role: str, tiers: Mapping[str, RoleTier]) -> RoleTier:
    """The role's tier record, inherited like `priority_of` (the nearest role that has one)."""
    for path in ancestors(role):
        if path in tiers:
            return tiers[path]
    return RoleTier()


def split_by_tier(
    clients: Mapping[str, T], priorities: Mapping[str, int]
) -> list[tuple[int, dict[str, T]]]:
    """`clients` (keyed by role) grouped into tiers, highest priority first. Without any
    priority set, one tier: the common case costs one dict copy."""
    if not priorities:
        return [(DEFAULT_PRIORITY, dict(clients))] if clients else []
    tiers: dict[int, dict[str, T]] = {}
    for role, value in clients.items():
        tiers.setdefault(priority_of(role, priorities), {})[role] = value
    return sorted(tiers.items(), key=lambda item: -item[0])
