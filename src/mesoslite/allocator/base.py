"""The allocator's contract: what it sees (`ClusterView`), what it decides (`AllocationRound`).

An allocator is pure: it opens no socket and reads no clock; `now` and the seed are given.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from mesoslite.ids import AgentId, FrameworkId
from mesoslite.resources import Resources


@dataclass(frozen=True, slots=True)
class AgentView:
    """An agent as the allocator sees it. `free` excludes what is used and already offered."""

    id: AgentId
    hostname: str
    total: Resources
    free: Resources
    attributes: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FrameworkView:
    """A framework as the allocator sees it.

    `allocated` is what its tasks use plus what it holds in offers. `filters` maps an agent
    to the time before which that agent must not be offered to it (`refuse_seconds`).
    Only active (connected) frameworks are in the view.
    """

    id: FrameworkId
    role: str
    allocated: Resources
    suppressed: bool = False
    filters: Mapping[AgentId, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ClusterView:
    """Everything one allocation pass may look at. `seed` breaks ties reproducibly."""

    agents: tuple[AgentView, ...]
    frameworks: tuple[FrameworkView, ...]
    role_weights: Mapping[str, float] = field(default_factory=dict)
    seed: int = 0


@dataclass(frozen=True, slots=True)
class OfferGrant:
    framework_id: FrameworkId
    agent_id: AgentId
    resources: Resources


@dataclass(frozen=True, slots=True)
class AllocationRound:
    """The result of one pass: offers to make, and why each framework got or did not get one."""

    grants: tuple[OfferGrant, ...]
    reasons: Mapping[FrameworkId, str] = field(default_factory=dict)
    seed: int = 0


class Allocator(Protocol):
    """The whole policy: given a view and the time, decide the offers to make."""

    def allocate(self, view: ClusterView, now: float) -> AllocationRound: ...


class Policy(Protocol):
    """The common case: an ordering of roles and frameworks, applied by `HierarchicalAllocator`.

    `order_*` return ids, most deserving first. `shares` are the resources allocated to each
    role or framework; `total` is the cluster's total.
    """

    name: str

    def order_roles(
        self, roles: Mapping[str, Resources], weights: Mapping[str, float], total: Resources
    ) -> list[str]: ...

    def order_frameworks(
        self, frameworks: Mapping[FrameworkId, Resources], total: Resources
    ) -> list[FrameworkId]: ...
