"""The master's mutable bookkeeping records, owned by `MasterState` alone."""

from __future__ import annotations

from dataclasses import dataclass, field

from mesoslite.allocator.base import Demand
from mesoslite.frozen import maker
from mesoslite.ids import AgentId, FrameworkId, OfferId, TaskId
from mesoslite.master.tally import RoleSums, Tally
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
    # What its tasks use and its offers hold (`used`, `offered`): sums changed in place by
    # `use`/`unuse`/`hold`/`release` (one dict update per task, not a new bundle, #15).
    _used: Tally = field(default_factory=Tally)
    _offered: Tally = field(default_factory=Tally)
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

    # `free`'s last answer and what it came from (the total, the versions of used and
    # offered): every allocation pass reads every agent's free resources, and most agents
    # did not change since the last pass (#15).
    _free_cache: tuple[Resources, int, int, Resources] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    @property
    def id(self) -> AgentId:
        return self.info.id

    @property
    def used(self) -> Resources:
        return self._used.value

    @used.setter
    def used(self, value: Resources) -> None:
        self._used.set(value)  # `__setattr__` marks the agent changed

    @property
    def offered(self) -> Resources:
        return self._offered.value

    @offered.setter
    def offered(self, value: Resources) -> None:
        self._offered.set(value)

    # Each marks the agent changed, as setting `used` or `offered` does (`__setattr__`).
    # The scalar case is `Tally.add`/`subtract` written out: four of these per task (#15).
    def use(self, resources: Resources) -> None:
        """`used += resources`, in place."""
        if resources.ranges or resources.sets:
            self._used.add(resources)
        else:
            used = self._used
            sc = used.scalars
            for name, milli in resources.scalars.items():
                sc[name] = sc.get(name, 0) + milli
            used.version += 1
        if self.changed is not None:
            self.changed.add(self.info.id)

    def unuse(self, resources: Resources) -> None:
        """`used = used.minus_clamped(resources)`, in place (ports may overlap)."""
        if resources.ranges or resources.sets:
            self._used.subtract(resources, clamp=True)
        else:
            used = self._used
            sc = used.scalars
            for name, milli in resources.scalars.items():
                left = sc.get(name, 0) - milli
                if left > 0:
                    sc[name] = left
                else:
                    sc.pop(name, None)  # clamped
            used.version += 1
        if self.changed is not None:
            self.changed.add(self.info.id)

    def hold(self, resources: Resources) -> None:
        """`offered += resources`, in place."""
        if resources.ranges or resources.sets:
            self._offered.add(resources)
        else:
            offered = self._offered
            sc = offered.scalars
            for name, milli in resources.scalars.items():
                sc[name] = sc.get(name, 0) + milli
            offered.version += 1
        if self.changed is not None:
            self.changed.add(self.info.id)

    def release(self, resources: Resources) -> None:
        """`offered -= resources`, in place; raises `ValueError` if it holds less."""
        self._offered.subtract(resources, clamp=False)
        if self.changed is not None:
            self.changed.add(self.info.id)

    def fits(self, resources: Resources) -> bool:
        """`free.contains(resources)`; for scalars alone, without building `free` (its
        cache would be spent by the next grant on the agent, #15)."""
        if resources.ranges or resources.sets:
            return self.free.contains(resources)
        total = self.info.resources.scalars
        used = self._used.scalars
        offered = self._offered.scalars
        for name, want in resources.scalars.items():
            # `free` clamps at 0: for `want` > 0, comparing unclamped is the same.
            if want > 0 and total.get(name, 0) - used.get(name, 0) - offered.get(name, 0) < want:
                return False
        return True

    @property
    def free(self) -> Resources:
        """`info.resources.minus_clamped(used + offered)` (clamped: re-registered smaller)."""
        total, used, offered = self.info.resources, self._used, self._offered
        cached = self._free_cache
        if (
            cached is not None
            and cached[0] is total
            and cached[1] == used.version
            and cached[2] == offered.version
        ):
            return cached[3]
        if used.has_items() or offered.has_items():
            free = total.minus_clamped(used.value + offered.value)
        else:
            # Scalars alone, from the sums as they are (no bundle of either built), in the
            # total's order, as `minus_clamped` leaves them.
            u, o = used.scalars, offered.scalars
            scalars = {}
            for name, milli in total.scalars.items():
                left = milli - u.get(name, 0) - o.get(name, 0)
                if left > 0:
                    scalars[name] = left
            free = _resources(scalars, total.ranges, total.sets)
        self._free_cache = (total, used.version, offered.version, free)
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
    # What its tasks use and its offers hold: in all, and per role (allocation role); read
    # as bundles (`used`, `offered`, `used_by_role`, `offered_by_role`), changed in place by
    # the methods below (#15).
    _used: Tally = field(default_factory=Tally)
    _offered: Tally = field(default_factory=Tally)
    _used_in: dict[str, Tally] = field(default_factory=dict)
    _offered_in: dict[str, Tally] = field(default_factory=dict)
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

    @property
    def used(self) -> Resources:
        return self._used.value

    @property
    def offered(self) -> Resources:
        return self._offered.value

    @property
    def used_by_role(self) -> RoleSums:
        return RoleSums(self._used_in)

    @property
    def offered_by_role(self) -> RoleSums:
        return RoleSums(self._offered_in)

    def held(self, role: str) -> Resources:
        """What it uses and holds in offers in `role`."""
        used, offered = self._used_in.get(role), self._offered_in.get(role)
        if offered is None:
            return _EMPTY if used is None else used.value
        return offered.value if used is None else used.value + offered.value

    # The common case first: one role, whose entry is the total (see `_add`), and scalars
    # alone, changed as `Tally.add`/`subtract` do: four of these per task (#15).
    def add_used(self, role: str, resources: Resources) -> None:
        total = self._used
        if self._used_in.get(role) is total and not (resources.ranges or resources.sets):
            _add_scalars(total, resources)
        else:
            _add(total, self._used_in, role, resources)

    def remove_used(self, role: str, resources: Resources) -> None:
        total = self._used
        if self._used_in.get(role) is total and not (resources.ranges or resources.sets):
            if _subtract_scalars(total, resources):
                del self._used_in[role]
        else:
            _subtract(total, self._used_in, role, resources)

    def add_offered(self, role: str, resources: Resources) -> None:
        total = self._offered
        if self._offered_in.get(role) is total and not (resources.ranges or resources.sets):
            _add_scalars(total, resources)
        else:
            _add(total, self._offered_in, role, resources)

    def remove_offered(self, role: str, resources: Resources) -> None:
        total = self._offered
        if self._offered_in.get(role) is total and not (resources.ranges or resources.sets):
            if _subtract_scalars(total, resources):
                del self._offered_in[role]
        else:
            _subtract(total, self._offered_in, role, resources)


def _add_scalars(tally: Tally, resources: Resources) -> None:
    sc = tally.scalars
    for name, milli in resources.scalars.items():
        sc[name] = sc.get(name, 0) + milli
    tally.version += 1


def _subtract_scalars(tally: Tally, resources: Resources) -> bool:
    """Clamped; returns whether the tally is left empty."""
    sc = tally.scalars
    for name, milli in resources.scalars.items():
        left = sc.get(name, 0) - milli
        if left > 0:
            sc[name] = left
        else:
            sc.pop(name, None)
    tally.version += 1
    return not sc and tally.is_empty()


# A framework in one role holds everything in it: its total and its role's entry are one
# `Tally`, and each change below is made once, not twice (#15). A second role gets its own
# and the first its own copy, so every entry stays its role's sum.
def _add(total: Tally, by_role: dict[str, Tally], role: str, resources: Resources) -> None:
    in_role = by_role.get(role)
    if in_role is None:
        if not by_role and total.is_empty():
            in_role = by_role[role] = total
        else:
            in_role = by_role[role] = Tally()
    if in_role is not total:
        _unshare(total, by_role)
        in_role.add(resources)
    total.add(resources)


def _subtract(total: Tally, by_role: dict[str, Tally], role: str, resources: Resources) -> None:
    """Clamped: a framework's totals merge the ranges and sets of all its agents, so two
    agents' `ports:[31000-31010]` are held once there, and the second removal finds none.
    A role's entry that comes to nothing is dropped."""
    in_role = by_role.get(role)
    if in_role is not total:
        _unshare(total, by_role)
    total.subtract(resources, clamp=True)
    if in_role is None:
        return
    if in_role is not total:
        in_role.subtract(resources, clamp=True)
    if in_role.is_empty():
        del by_role[role]


def _unshare(total: Tally, by_role: dict[str, Tally]) -> None:
    """The total is about to change apart from a role's entry: give the role that shares
    it (if one does) a copy of its own."""
    for role, tally in by_role.items():
        if tally is total:
            by_role[role] = total.copy()
            return


_EMPTY = Resources.empty()
_resources = maker(Resources)
