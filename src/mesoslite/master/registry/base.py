"""The registry's contents, its write commands, and the `Registry` protocol its stores follow.

Writes are command objects with `apply(snapshot) -> snapshot`, so both stores (SQLite,
ZooKeeper) share one mutation path. Each op also names the objects it may
change (`keys()`): a store applies the ops to its snapshot, encodes those objects before and
after (`mesoslite.master.registry.codec`) and writes only the ones that differ, so a write
costs what changed, not what exists.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Protocol

from mesoslite.allocator.base import Quota
from mesoslite.allocator.tiers import RoleTier
from mesoslite.ids import AgentId, FrameworkId
from mesoslite.model import AgentInfo, FrameworkInfo
from mesoslite.resources import Resources

# The registry's objects, one record each (a znode in ZooKeeper, a row in SQLite):
# (kind, key). The kinds are the directories of the ZooKeeper layout.
AGENTS = "agents"
FRAMEWORKS = "frameworks"
ROLES = "roles"  # a role's weight, quota and tier
RESERVATIONS = "reservations"  # per agent: role -> resources
GONE = "gone"
JOBS = "jobs"
META = "meta"  # one object (key ""): the jobs framework id and the layout version
KINDS = (AGENTS, FRAMEWORKS, ROLES, RESERVATIONS, GONE, JOBS)
ObjectKey = tuple[str, str]


@dataclass(frozen=True, slots=True)
class RegistrySnapshot:
    agents: Mapping[AgentId, AgentInfo] = field(default_factory=dict)
    frameworks: Mapping[FrameworkId, FrameworkInfo] = field(default_factory=dict)
    # Set at run time by operators (`mesoslite role set-weight|set-quota`).
    role_weights: Mapping[str, float] = field(default_factory=dict)
    quotas: Mapping[str, Quota] = field(default_factory=dict)
    # Dynamic reservations (RESERVE in ACCEPT): agent -> role -> resources.
    reservations: Mapping[AgentId, Mapping[str, Resources]] = field(default_factory=dict)
    # Agents marked gone (`mesoslite agent gone`): refused if they register again.
    gone_agents: frozenset[AgentId] = frozenset()
    # The built-in jobs framework's state: job name -> its JSON document (the jobs
    # framework owns the format, `mesoslite.jobs.state`), and the framework id it runs as.
    jobs: Mapping[str, str] = field(default_factory=dict)
    jobs_framework_id: str = ""
    # Priority tiers (`mesoslite role set-priority`): role -> tier; the default is absent.
    role_tiers: Mapping[str, RoleTier] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AdmitAgent:
    info: AgentInfo

    def keys(self) -> tuple[ObjectKey, ...]:
        return ((AGENTS, self.info.id),)

    def apply(self, snap: RegistrySnapshot) -> RegistrySnapshot:
        return replace(snap, agents={**snap.agents, self.info.id: self.info})


@dataclass(frozen=True, slots=True)
class RemoveAgent:
    agent_id: AgentId

    def keys(self) -> tuple[ObjectKey, ...]:
        return ((AGENTS, self.agent_id),)

    def apply(self, snap: RegistrySnapshot) -> RegistrySnapshot:
        return replace(snap, agents={k: v for k, v in snap.agents.items() if k != self.agent_id})


@dataclass(frozen=True, slots=True)
class MarkAgentGone:
    """Remove the agent and remember it is gone, across master restarts and failovers."""

    agent_id: AgentId

    def keys(self) -> tuple[ObjectKey, ...]:
        return ((AGENTS, self.agent_id), (RESERVATIONS, self.agent_id), (GONE, self.agent_id))

    def apply(self, snap: RegistrySnapshot) -> RegistrySnapshot:
        agents = {k: v for k, v in snap.agents.items() if k != self.agent_id}
        reservations = {k: v for k, v in snap.reservations.items() if k != self.agent_id}
        return replace(
            snap, agents=agents, reservations=reservations,
            gone_agents=snap.gone_agents | {self.agent_id},
        )


@dataclass(frozen=True, slots=True)
class AddFramework:
    info: FrameworkInfo

    def keys(self) -> tuple[ObjectKey, ...]:
        return ((FRAMEWORKS, self.info.id),)

    def apply(self, snap: RegistrySnapshot) -> RegistrySnapshot:
        return replace(snap, frameworks={**snap.frameworks, self.info.id: self.info})


@dataclass(frozen=True, slots=True)
class RemoveFramework:
    framework_id: FrameworkId

    def keys(self) -> tuple[ObjectKey, ...]:
        return ((FRAMEWORKS, self.framework_id),)

    def apply(self, snap: RegistrySnapshot) -> RegistrySnapshot:
        frameworks = {k: v for k, v in snap.frameworks.items() if k != self.framework_id}
        return replace(snap, frameworks=frameworks)


@dataclass(frozen=True, slots=True)
class SetRoleWeight:
    """Set a role's weight; weight 1 (the default) removes the entry."""

    role: str
    weight: float

    def keys(self) -> tuple[ObjectKey, ...]:
        return ((ROLES, self.role),)

    def apply(self, snap: RegistrySnapshot) -> RegistrySnapshot:
        weights = {k: v for k, v in snap.role_weights.items() if k != self.role}
        if self.weight != 1.0:
            weights[self.role] = self.weight
        return replace(snap, role_weights=weights)


@dataclass(frozen=True, slots=True)
class SetQuota:
    """Set a role's quota; an empty guarantee and no limit removes it."""

    role: str
    quota: Quota

    def keys(self) -> tuple[ObjectKey, ...]:
        return ((ROLES, self.role),)

    def apply(self, snap: RegistrySnapshot) -> RegistrySnapshot:
        quotas = {k: v for k, v in snap.quotas.items() if k != self.role}
        if not self.quota.guarantee.is_empty() or self.quota.limit is not None:
            quotas[self.role] = self.quota
        return replace(snap, quotas=quotas)


@dataclass(frozen=True, slots=True)
class SetRoleTier:
    """Set a role's priority tier and preemptibility; the default tier removes the entry."""

    role: str
    tier: RoleTier

    def keys(self) -> tuple[ObjectKey, ...]:
        return ((ROLES, self.role),)

    def apply(self, snap: RegistrySnapshot) -> RegistrySnapshot:
        tiers = {k: v for k, v in snap.role_tiers.items() if k != self.role}
        if not self.tier.is_default:
            tiers[self.role] = self.tier
        return replace(snap, role_tiers=tiers)


@dataclass(frozen=True, slots=True)
class SetReservation:
    """Set what is dynamically reserved for `role` on an agent; empty removes it."""

    agent_id: AgentId
    role: str
    resources: Resources

    def keys(self) -> tuple[ObjectKey, ...]:
        return ((RESERVATIONS, self.agent_id),)

    def apply(self, snap: RegistrySnapshot) -> RegistrySnapshot:
        by_agent = {k: dict(v) for k, v in snap.reservations.items()}
        roles = by_agent.setdefault(self.agent_id, {})
        roles.pop(self.role, None)
        if not self.resources.is_empty():
            roles[self.role] = self.resources
        if not roles:
            del by_agent[self.agent_id]
        return replace(snap, reservations=by_agent)


@dataclass(frozen=True, slots=True)
class PutJob:
    """Create or replace a job's document (the jobs framework writes one per change)."""

    name: str
    doc: str

    def keys(self) -> tuple[ObjectKey, ...]:
        return ((JOBS, self.name),)

    def apply(self, snap: RegistrySnapshot) -> RegistrySnapshot:
        return replace(snap, jobs={**snap.jobs, self.name: self.doc})


@dataclass(frozen=True, slots=True)
class RemoveJob:
    name: str

    def keys(self) -> tuple[ObjectKey, ...]:
        return ((JOBS, self.name),)

    def apply(self, snap: RegistrySnapshot) -> RegistrySnapshot:
        return replace(snap, jobs={k: v for k, v in snap.jobs.items() if k != self.name})


@dataclass(frozen=True, slots=True)
class SetJobsFrameworkId:
    """The framework id the jobs framework re-subscribes with after a restart or failover."""

    framework_id: str

    def keys(self) -> tuple[ObjectKey, ...]:
        return ((META, ""),)

    def apply(self, snap: RegistrySnapshot) -> RegistrySnapshot:
        return replace(snap, jobs_framework_id=self.framework_id)


RegistryOp = (
    AdmitAgent
    | RemoveAgent
    | MarkAgentGone
    | AddFramework
    | RemoveFramework
    | SetRoleWeight
    | SetQuota
    | SetReservation
    | PutJob
    | RemoveJob
    | SetJobsFrameworkId
    | SetRoleTier
)


class Registry(Protocol):
    """A durable store of the snapshot. `apply` returns once the ops are durable."""

    async def load(self) -> RegistrySnapshot: ...

    async def apply(self, ops: list[RegistryOp]) -> None: ...

    async def close(self) -> None: ...
