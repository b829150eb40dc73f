"""Why a framework is or is not getting offers: the one shape the master fills in
(`master/allocation.explain`) and the CLI shows (`mesoslite framework explain`).

The two sides differ only in how a quota and the demands are held: the master keeps them as
values (`Quota | None`, `tuple[Demand, ...] | None`), the CLI as the text the master sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from mesoslite.resources import Resources

Q = TypeVar("Q")  # a role's quota
D = TypeVar("D")  # the framework's outstanding demands


@dataclass(frozen=True, slots=True)
class RoleExplanation(Generic[Q]):
    """A framework in one of its roles: what it holds there and what the allocator said."""

    role: str
    weight: float
    dominant_share: float
    allocated: Resources
    offered: Resources
    suppressed: bool
    filters: dict[str, float]  # agent id -> seconds until the filter ends
    quota: Q
    last_reason: str


@dataclass(frozen=True, slots=True)
class Explanation(Generic[Q, D]):
    """Why a framework is or is not getting offers.

    The top-level fields are the framework's as a whole (`role` its roles, comma-separated;
    `role_weight` that of its first role; `quota` only for a framework in one role);
    `roles` says the same per role.
    """

    framework_id: str
    status: str
    role: str
    role_weight: float
    dominant_share: float
    allocated: Resources
    offered: Resources
    suppressed: bool
    filters: dict[str, float]  # agent id -> seconds until the filter ends
    demands: D
    quota: Q
    last_reason: str
    roles: tuple[RoleExplanation[Q], ...] = ()
