"""What the jobs framework needs of the master it runs in, and nothing more (a port).

The master implements it in process (`mesoslite.master.jobs_port`): calls go straight to
the master's actor, events come back as plain values, with no protobuf and no loopback
gRPC in between. jobs/ imports nothing of master/; the master wires the two together.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from mesoslite.allocator.base import Demand
from mesoslite.ids import AgentId, FrameworkId, OfferId, TaskId
from mesoslite.model import FrameworkInfo, Offer, TaskSpec, TaskStatus
from mesoslite.resources import Resources


@dataclass(frozen=True, slots=True)
class JobsState:
    """What the registry held for the jobs framework when this master started leading."""

    docs: Mapping[str, str] = field(default_factory=dict)  # job name -> its document
    framework_id: str = ""  # "" before the first subscription


@dataclass(frozen=True, slots=True)
class AgentRoom:
    """An agent as the jobs framework could use it now: what is free for it (its own
    outstanding offers count as free), unreserved and reserved per role."""

    agent_id: str
    hostname: str
    attributes: Mapping[str, str]
    total: Resources
    free: Resources  # unreserved
    reserved_free: Mapping[str, Resources] = field(default_factory=dict)  # role -> free

    def room(self, role: str) -> Resources:
        """What a task of `role` could use here."""
        extra = self.reserved_free.get(role)
        return self.free if extra is None else self.free + extra


@dataclass(frozen=True, slots=True)
class ClusterRoom:
    """What `job plan` and a pending instance's reason are judged against: the active
    agents, what each role's quota limit still allows, and the allocator's last word on the
    jobs framework in each of its roles (`mesoslite framework explain`)."""

    agents: tuple[AgentRoom, ...] = ()
    # Roles with a quota limit: (the limit, what the role holds now but our offers).
    quota: Mapping[str, tuple[Resources, Resources]] = field(default_factory=dict)
    reasons: Mapping[str, str] = field(default_factory=dict)  # role -> allocator's reason


class JobsEvents(Protocol):
    """What the master tells the jobs framework, in order, one call at a time."""

    async def on_offers(self, offers: list[Offer]) -> None: ...

    async def on_updates(self, statuses: list[TaskStatus]) -> None:
        """A batch of status updates, in order (one agent message's, or several's)."""
        ...

    async def on_error(self, message: str) -> None:
        """The master ended the subscription for good (e.g. torn down)."""
        ...


class MasterPort(Protocol):
    """Every call raises a `mesoslite.errors` class when the master refuses it."""

    def load(self) -> JobsState: ...

    def agent_totals(self) -> list[Resources]:
        """Each registered agent's total resources (to refuse a spec no agent could run)."""
        ...

    def cluster_room(self) -> ClusterRoom:
        """The cluster as the jobs framework could use it now (see `ClusterRoom`)."""
        ...

    async def persist(self, put: Mapping[str, str], remove: Sequence[str]) -> None:
        """Write job documents (name -> document) and remove jobs, in one group commit;
        returns once durable."""
        ...

    async def set_framework_id(self, framework_id: FrameworkId) -> None: ...

    async def subscribe(self, info: FrameworkInfo, events: JobsEvents) -> FrameworkId:
        """Register (again, with `info.id`) and send events to `events` from now on; a
        second call replaces the first subscription (e.g. with more roles)."""
        ...

    async def unsubscribe(self) -> None:
        """Disconnect, as a framework failing over: its tasks keep running."""
        ...

    async def accept(self, offer_id: OfferId, tasks: Sequence[TaskSpec]) -> None: ...

    async def decline(self, offer_ids: Sequence[OfferId], refuse_seconds: float) -> None: ...

    async def kill(self, task_id: TaskId, agent_id: AgentId) -> None: ...

    async def acknowledge(self, statuses: Sequence[TaskStatus]) -> None:
        """Acknowledge these updates, in one call (one message per agent)."""
        ...

    async def reconcile(self, tasks: Sequence[tuple[TaskId, AgentId]] = ()) -> None:
        """Ask for the latest state of these tasks, or of every task of ours if empty."""
        ...

    async def suppress(self) -> None: ...

    async def revive(self) -> None: ...

    async def declare_waiting(self, by_role: Mapping[str, tuple[Demand, ...]]) -> None:
        """Say which instances wait for room, by role (replaces the last declaration): a
        higher tier's waiting work may preempt a lower tier's tasks (#16)."""
        ...

    def role_priority(self, role: str) -> int:
        """The role's priority tier (`mesoslite role set-priority`)."""
        ...
