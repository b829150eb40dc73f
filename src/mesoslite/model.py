"""Value types shared by the master, the agent, the SDK and the CLI (frozen dataclasses).

Protobuf stops at the edge (`convert.py`); everything inside speaks these types.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from mesoslite.ids import AgentId, FrameworkId, OfferId, TaskId
from mesoslite.resources import Resources


class TaskState(enum.IntEnum):
    """Task states as in Mesos; the numbers match `mesoslite.v1.TaskState`."""

    STAGING = 1
    STARTING = 2
    RUNNING = 3
    FINISHED = 4
    FAILED = 5
    KILLING = 6
    KILLED = 7
    LOST = 8
    ERROR = 9
    DROPPED = 10
    UNREACHABLE = 11
    GONE = 12
    UNKNOWN = 13

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATES

    @property
    def label(self) -> str:
        """`TASK_RUNNING` style, as users know it from Mesos."""
        return f"TASK_{self.name}"


TERMINAL_STATES = frozenset(
    {
        TaskState.FINISHED,
        TaskState.FAILED,
        TaskState.KILLED,
        TaskState.LOST,
        TaskState.ERROR,
        TaskState.DROPPED,
        TaskState.GONE,
    }
)


class StatusSource(enum.IntEnum):
    MASTER = 1
    AGENT = 2


# Reasons carried in `TaskStatus.reason`, as in Mesos's `TaskStatus::Reason`.
REASON_COMMAND_EXITED = "COMMAND_EXITED"
REASON_TASK_KILLED = "TASK_KILLED"
REASON_INVALID_OFFERS = "INVALID_OFFERS"
REASON_TASK_INVALID = "TASK_INVALID"
REASON_RESOURCES_UNKNOWN = "RESOURCES_UNKNOWN"
REASON_AGENT_REMOVED = "AGENT_REMOVED"
REASON_AGENT_UNREACHABLE = "AGENT_UNREACHABLE"
REASON_AGENT_DISCONNECTED = "AGENT_DISCONNECTED"
REASON_FRAMEWORK_REMOVED = "FRAMEWORK_REMOVED"
REASON_RECONCILIATION = "RECONCILIATION"
REASON_LAUNCH_FAILED = "LAUNCH_FAILED"
REASON_AGENT_RESTARTED = "AGENT_RESTARTED"
# A task of a framework that is not partition-aware, killed because its agent came back
# after the master had marked it unreachable (the framework was told the task was lost).
REASON_UNREACHABLE_AGENT_REREGISTERED = "UNREACHABLE_AGENT_REREGISTERED"
REASON_MEMORY_LIMIT = "MEMORY_LIMIT"
REASON_TASK_UNHEALTHY = "TASK_UNHEALTHY"
REASON_HEALTH_CHECK = "TASK_HEALTH_CHECK_STATUS_UPDATED"
# TASK_KILLED by the master to make room for a higher priority tier's waiting work (#16).
REASON_PREEMPTED = "PREEMPTED"
# A task label: seconds it is expected to run; past them it is preempted first (#16).
MAX_RUNTIME_LABEL = "mesoslite.max_runtime_s"


@dataclass(frozen=True, slots=True)
class CommandSpec:
    """What to run: a shell string (`shell=True`, run by /bin/sh -c) or an argv list."""

    shell: bool = True
    value: str = ""
    argv: tuple[str, ...] = ()
    environment: Mapping[str, str] = field(default_factory=dict)
    user: str = ""

    @staticmethod
    def of_shell(command: str, **kw: object) -> CommandSpec:
        return CommandSpec(shell=True, value=command, **kw)  # type: ignore[arg-type]

    @staticmethod
    def of_argv(argv: list[str] | tuple[str, ...], **kw: object) -> CommandSpec:
        return CommandSpec(shell=False, argv=tuple(argv), **kw)  # type: ignore[arg-type]

    def display(self) -> str:
        return self.value if self.shell else " ".join(self.argv)


@dataclass(frozen=True, slots=True)
class HealthCheckSpec:
    """How the agent checks a running task (`mesoslite.v1.HealthCheck` says the rules).

    `kind` is "command" (`command` run in the sandbox, exit 0 is healthy), "http" (GET
    `http://127.0.0.1:<port><path>`, 2xx/3xx is healthy) or "tcp" (a connection to `port`).
    """

    kind: str
    command: str = ""
    port: int = 0
    path: str = "/"
    delay_s: float = 0.0
    interval_s: float = 10.0
    timeout_s: float = 20.0
    grace_period_s: float = 10.0
    consecutive_failures: int = 3


HEALTH_CHECK_KINDS = ("command", "http", "tcp")


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """A task to launch (Mesos's `TaskInfo`). `agent_id` is filled from the offer if empty."""

    task_id: TaskId
    command: CommandSpec
    resources: Resources
    name: str = ""
    agent_id: AgentId = AgentId("")
    kill_grace_period_s: float = 0.0
    labels: Mapping[str, str] = field(default_factory=dict)
    health_check: HealthCheckSpec | None = None
    # The role its resources are allocated to: the `allocation_role` of the offer it was
    # launched from, set by the master (what a framework gives is overwritten). The agent keeps
    # it with the task, so a new master accounts the task to the same role.
    allocation_role: str = ""


@dataclass(frozen=True, slots=True)
class TaskStatus:
    """One status update of one task."""

    task_id: TaskId
    framework_id: FrameworkId
    agent_id: AgentId
    state: TaskState
    message: str = ""
    reason: str = ""
    source: StatusSource = StatusSource.MASTER
    # Set by agents; an update with a uuid must be acknowledged.
    uuid: bytes = b""
    timestamp: float = 0.0
    exit_code: int | None = None
    # For tasks with a health check: the latest result, once checked.
    healthy: bool | None = None


@dataclass(frozen=True, slots=True)
class FrameworkInfo:
    """What a framework says about itself when it subscribes.

    A framework holds one role (`role`) or several (`roles`, as with Mesos's MULTI_ROLE
    capability). When `roles` is given it is the framework's roles and `role` must be left
    unset (`"*"` here, empty on the wire); `all_roles` is what it holds either way.
    """

    name: str
    role: str = "*"
    user: str = ""
    failover_timeout_s: float = 0.0
    hostname: str = ""
    principal: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    id: FrameworkId = FrameworkId("")
    roles: tuple[str, ...] = ()
    # Mesos's PARTITION_AWARE capability. Off: a task the framework was told is unreachable
    # is killed if its agent comes back (the framework may have replaced it). On: such a
    # task goes on, and the framework is told it is running again.
    partition_aware: bool = False

    @property
    def all_roles(self) -> tuple[str, ...]:
        """The roles it holds: `roles`, or else `(role,)`."""
        return self.roles or (self.role,)


@dataclass(frozen=True, slots=True)
class AgentInfo:
    """What an agent says about itself when it registers."""

    hostname: str
    resources: Resources
    attributes: Mapping[str, str] = field(default_factory=dict)
    id: AgentId = AgentId("")
    version: str = ""
    address: str = ""
    # Static reservations (`--resources 'cpus(ml):4'`): role -> the part of `resources`
    # offered only to that role (and roles below it).
    reserved: Mapping[str, Resources] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Offer:
    id: OfferId
    framework_id: FrameworkId
    agent_id: AgentId
    hostname: str
    resources: Resources
    attributes: Mapping[str, str] = field(default_factory=dict)
    # The parts of `resources` reserved for a role (yours, or one above yours), by role.
    reserved: Mapping[str, Resources] = field(default_factory=dict)
    # The framework's role these resources are allocated to: tasks launched from the offer
    # (and RESERVE) count against it. One of `FrameworkInfo.all_roles`.
    allocation_role: str = ""


@dataclass(frozen=True, slots=True)
class MasterInfo:
    id: str
    address: str
    version: str = ""
    started_at: float = 0.0


@dataclass(frozen=True, slots=True)
class Acknowledgement:
    agent_id: AgentId
    task_id: TaskId
    uuid: bytes
