"""The master's mutable bookkeeping records, owned by `MasterState` alone."""

from __future__ import annotations

from dataclasses import dataclass, field

from mesoslite.allocator.base import Demand
from mesoslite.ids import AgentId, FrameworkId, OfferId, TaskId
from mesoslite.model import AgentInfo, FrameworkInfo, TaskSpec, TaskState, TaskStatus
from mesoslite.resources import Resources

AGENT_ACTIVE = "active"
AGENT_DISCONNECTED = "disconnected"
AGENT_UNREACHABLE = "unreachable"

FRAMEWORK_CONNECTED = "connected"
FRAMEWORK_DISCONNECTED = "disconnected"
FRAMEWORK_COMPLETED = "completed"


@dataclass(slots=True)
class TaskRecord:
    framework_id: FrameworkId
    spec: TaskSpec
    agent_id: AgentId
    # Its latest status (`status`). None: TASK_STAGING since `launched_at`, made when first
    # read; most launches' is never read, their next update replaces it (#15).
    _status: TaskStatus | None
    # When this master launched it (or first saw it, re-registered): for preemption (#16).
    launched_at: float = 0.0

    @property
    def status(self) -> TaskStatus:
        status = self._status
        if status is None:
            status = self._status = TaskStatus(
                self.spec.task_id,
                self.framework_id,
                self.agent_id,
                TaskState.STAGING,
                timestamp=self.launched_at,
            )
        return status

    @status.setter
    def status(self, status: TaskStatus) -> None:
        self._status = status

    @property
    def state(self) -> TaskState:
        return self.status.state


# What an allocation pass reads of an agent record: setting one of these marks the agent
# changed in its book's `changed` set, so the next pass looks again at it alone (#15).
_ALLOCATION_FIELDS = frozenset({"info", "status", "used", "offered", "draining"})


@dataclass(slots=True)
class AgentRecord:
    info: AgentInfo
    status: str
    registered_at: float
    used: Resources = field(default_factory=Resources.empty)
    offered: Resources = field(default_factory=Resources.empty)
    tasks: set[tuple[FrameworkId, TaskId]] = field(default_factory=set)
    offers: set[OfferId] = field(default_factory=set)
    disconnected_at: float | None = None
    # As of the agent's last pong: updates it holds that nobody acknowledged yet.
    pending_updates: int = 0
    # When the last message (of any kind) came from the agent on its current stream.
    last_seen_at: float | None = None
    # `mesoslite agent drain`: offered no more, its tasks killed.
    draining: bool = False
    # The agent book's set of agents changed since the last allocation pass (`AgentBook`
    # links it when it takes the record); None: not in a book.
    changed: set[AgentId] | None = field(default=None, repr=False, compare=False)

    def __setattr__(self, name: str, value: object) -> None:
        object.__setattr__(self, name, value)
        if name in _ALLOCATION_FIELDS:
            changed = getattr(self, "changed", None)  # unset while `__init__` runs
            if changed is not None:
                changed.add(self.info.id)

    # `free`'s last answer and the bundles it came from: every allocation pass reads every
    # agent's free resources, and most agents did not change since the last pass (#15).
    _free_cache: tuple[Resources, Resources, Resources, Resources] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    @property
    def id(self) -> AgentId:
        return self.info.id

    @property
    def free(self) -> Resources:
        total, used, offered = self.info.resources, self.used, self.offered
        cached = self._free_cache
        # Bundles are immutable, so the same three objects give the same answer.
        if cached is not None and cached[0] is total and cached[1] is used and cached[2] is offered:
            return cached[3]
        free = total.minus_clamped(used + offered)  # re-registered smaller
        self._free_cache = (total, used, offered, free)
        return free


@dataclass(slots=True)
class FrameworkRecord:
    info: FrameworkInfo
    status: str
    registered_at: float
    tasks: dict[TaskId, TaskRecord] = field(default_factory=dict)
    offers: set[OfferId] = field(default_factory=set)
    # role -> agent -> time before which that agent is not offered to this framework in that
    # role, as long as its free resources are within what was refused (`refused`), as in Mesos.
    filters: dict[str, dict[AgentId, float]] = field(default_factory=dict)
    refused: dict[str, dict[AgentId, Resources]] = field(default_factory=dict)
    # Its roles that are suppressed (SUPPRESS): offered nothing in them until REVIVE.
    suppressed_roles: set[str] = field(default_factory=set)
    # What its tasks use and its offers hold: in all, and per role (allocation role).
    used: Resources = field(default_factory=Resources.empty)
    offered: Resources = field(default_factory=Resources.empty)
    used_by_role: dict[str, Resources] = field(default_factory=dict)
    offered_by_role: dict[str, Resources] = field(default_factory=dict)
    disconnected_at: float | None = None
    # Its last REQUEST, less the tasks launched since (see `roles.consume`); None if it never
    # sent one (or sent an empty one): then it is offered whole agents.
    demands: list[Demand] | None = None

    @property
    def id(self) -> FrameworkId:
        return self.info.id

    @property
    def connected(self) -> bool:
        return self.status == FRAMEWORK_CONNECTED

    @property
    def roles(self) -> tuple[str, ...]:
        return self.info.all_roles

    @property
    def suppressed(self) -> bool:
        """True when it is suppressed in every one of its roles."""
        return all(role in self.suppressed_roles for role in self.info.all_roles)

    def held(self, role: str) -> Resources:
        """What it uses and holds in offers in `role`."""
        empty = Resources.empty()
        return self.used_by_role.get(role, empty) + self.offered_by_role.get(role, empty)

    # A framework in one role holds everything in it: its total and its role's entry are
    # one object, and each change below computes it once, not twice (#15). Sharing is
    # by identity, so it never changes a value: equal inputs, equal results.
    def add_used(self, role: str, resources: Resources) -> None:
        self.used, self.used_by_role[role] = _add(self.used, self.used_by_role, role, resources)

    def remove_used(self, role: str, resources: Resources) -> None:
        self.used = _subtract(self.used, self.used_by_role, role, resources)

    def add_offered(self, role: str, resources: Resources) -> None:
        self.offered, self.offered_by_role[role] = _add(
            self.offered, self.offered_by_role, role, resources
        )

    def remove_offered(self, role: str, resources: Resources) -> None:
        self.offered = _subtract(self.offered, self.offered_by_role, role, resources)


def _add(
    total: Resources, by_role: dict[str, Resources], role: str, resources: Resources
) -> tuple[Resources, Resources]:
    """(the new total, the role's new entry)."""
    new_total = total + resources
    in_role = by_role.get(role, _EMPTY)
    if in_role is total:
        return new_total, new_total
    return new_total, in_role + resources


def _subtract(
    total: Resources, by_role: dict[str, Resources], role: str, resources: Resources
) -> Resources:
    """The new total; the role's entry changed in `by_role`. Clamped: a framework's totals
    merge the ranges and sets of all its agents, so two agents' `ports:[31000-31010]` are
    held once there, and the second removal finds none."""
    new_total = total.minus_clamped(resources)
    if new_total.is_empty():
        new_total = _EMPTY  # the shared empty bundle, which `_add` recognises
    in_role = by_role.get(role, _EMPTY)
    left = new_total if in_role is total else in_role.minus_clamped(resources)
    if left.is_empty():
        by_role.pop(role, None)
    else:
        by_role[role] = left
    return new_total


_EMPTY = Resources.empty()
