"""The allocator's contract: what it sees (`ClusterView`), what it decides (`AllocationRound`).

An allocator is pure: it opens no socket and reads no clock; `now` and the seed are given.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
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
    # role -> free resources reserved for that role (statically or dynamically); not in `free`.
    # Offered only to frameworks of that role or of a role below it (`eng` covers `eng/ml`).
    reserved: Mapping[str, Resources] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Demand:
    """What a framework still needs: `count` more tasks shaped like `resources`."""

    resources: Resources
    count: int


@dataclass(frozen=True, slots=True)
class Quota:
    """A role's quota: `guarantee` is offered to it before anyone's fair share; `limit`
    (scalars only; None means none) is never exceeded by what the role holds."""

    guarantee: Resources = field(default_factory=Resources.empty)
    limit: Resources | None = None


@dataclass(frozen=True, slots=True)
class FrameworkView:
    """A framework in one of its roles, as the allocator sees it.

    A framework that holds several roles (`FrameworkInfo.roles`, Mesos's MULTI_ROLE) is in the
    view once per role, with the same `id`: it competes in each role's sorter with what it
    holds in that role, and each grant says the role it is for (`OfferGrant.role`).
    `allocated` is what its tasks use plus what it holds in offers, in this role. `filters`
    maps an agent to the time before which that agent must not be offered to it in this role
    (`refuse_seconds`); `suppressed` is likewise per role.
    Only active (connected) frameworks are in the view.
    """

    id: FrameworkId
    role: str
    allocated: Resources
    suppressed: bool = False
    filters: Mapping[AgentId, float] = field(default_factory=dict)
    # With demands, offers are sized to whole tasks of these shapes (progressive filling);
    # without, an offer carries an agent's whole free resources.
    demands: tuple[Demand, ...] = ()
    # Where it wants to run (`ssf`): agent ids, `rack:NAME` or `zone:NAME`.
    locality: tuple[str, ...] = ()
    # Agents its tasks run on now (`ssf` uses them when there are no locality hints).
    running_on: tuple[AgentId, ...] = ()


@dataclass(frozen=True, slots=True)
class ClusterView:
    """Everything one allocation pass may look at. `seed` breaks ties reproducibly."""

    agents: tuple[AgentView, ...]
    frameworks: tuple[FrameworkView, ...]
    role_weights: Mapping[str, float] = field(default_factory=dict)
    seed: int = 0
    quotas: Mapping[str, Quota] = field(default_factory=dict)
    # Role -> priority tier (`allocator.tiers`); higher tiers are served strictly first.
    role_priorities: Mapping[str, int] = field(default_factory=dict)
    # Optional, for a caller that keeps them between passes (the master, #15): the sum of
    # `agents`' totals, and `agents` by id. They must agree with `agents`; None: a pass
    # computes them (at a cost proportional to the cluster).
    total: Resources | None = None
    agents_by_id: Mapping[AgentId, AgentView] | None = None


@dataclass(frozen=True, slots=True)
class OfferGrant:
    framework_id: FrameworkId
    agent_id: AgentId
    resources: Resources
    # The parts of `resources` taken from the agent's reservations, by role (empty: none).
    reserved: Mapping[str, Resources] = field(default_factory=dict)
    # Whole tasks' worth of the framework's demands in `resources` (0: a whole-agent offer).
    tasks: int = 0
    # The role it is allocated to: one of the framework's roles (the `role` of the
    # `FrameworkView` it was granted through). Empty is allowed only for a framework in one
    # role, and means that role.
    role: str = ""


@dataclass(frozen=True, slots=True)
class AllocationRound:
    """The result of one pass: offers to make, and why each framework got or did not get one."""

    grants: tuple[OfferGrant, ...]
    reasons: Mapping[FrameworkId, str] = field(default_factory=dict)
    seed: int = 0
    # For frameworks in several roles: the reason per role (`reasons` joins them).
    role_reasons: Mapping[FrameworkId, Mapping[str, str]] = field(default_factory=dict)


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


class AgentRanker(Protocol):
    """Optional on a `Policy` (`ssf`): `agent_ranker(agents, seed, alive)` returns a function
    `rank(framework, begin)` giving `(position, agent_id)` pairs, best agent first, positions
    increasing; agents it leaves out are not offered to that framework. The allocator calls
    `rank` again with `begin` = the position after which to resume (positions before it were
    passed over). Called once per pass; `alive(id)` says whether an agent still has anything
    to offer this pass, so spent agents can be skipped cheaply (`live.LiveOrder`)."""

    def agent_ranker(
        self, agents: Sequence[AgentView], seed: int, alive: Callable[[AgentId], bool]
    ) -> Callable[[FrameworkView, int], Iterable[tuple[int, AgentId]]]: ...
