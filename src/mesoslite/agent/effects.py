"""What `AgentState` asks its shell (`AgentActor`) to do: effects, and the timers it keeps."""

from __future__ import annotations

from dataclasses import dataclass

from mesoslite.ids import AgentId, FrameworkId, TaskId
from mesoslite.model import HealthCheckSpec, TaskStatus

TaskKey = tuple[FrameworkId, TaskId]

# -- timers: the shell runs each on the injected clock and hands it back to `timer_fired`


@dataclass(frozen=True, slots=True)
class KillTimer:
    """A killed task's grace period is over: SIGKILL it if it still runs."""

    key: TaskKey


@dataclass(frozen=True, slots=True)
class HealthTimer:
    """Time for a task's next health check."""

    key: TaskKey


@dataclass(frozen=True, slots=True)
class FlushTimer:
    """The window that gathers updates made close together into one message is over."""


@dataclass(frozen=True, slots=True)
class RetryTimer:
    """Time to look for unacknowledged updates due for a resend (periodic)."""


Timer = KillTimer | HealthTimer | FlushTimer | RetryTimer

# -- effects


@dataclass(frozen=True, slots=True)
class StartTimer:
    """Run `timer` after `delay_s` on the clock (one of each at a time: it replaces any)."""

    timer: Timer
    delay_s: float


@dataclass(frozen=True, slots=True)
class CancelTimer:
    timer: Timer


@dataclass(frozen=True, slots=True)
class StartProcess:
    """Spawn the task (soon: launches are started a chunk per loop iteration); the shell
    answers with `process_started` or `launch_failed`."""

    key: TaskKey


@dataclass(frozen=True, slots=True)
class AdoptProcess:
    """Watch a process that outlived the last agent; the shell answers with `adopted`."""

    key: TaskKey
    pid: int
    start_ticks: int
    cgroups: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SignalTask:
    """Signal the task's process group: SIGKILL if `force`, else SIGTERM."""

    key: TaskKey
    force: bool


@dataclass(frozen=True, slots=True)
class RunHealthCheck:
    """Run one check; the shell answers with `health_result`."""

    key: TaskKey
    spec: HealthCheckSpec


@dataclass(frozen=True, slots=True)
class StopHealthCheck:
    """The task is over: abandon a check in flight."""

    key: TaskKey


@dataclass(frozen=True, slots=True)
class SendUpdates:
    statuses: tuple[TaskStatus, ...]


@dataclass(frozen=True, slots=True)
class CheckpointUpdate:
    """Append the update to the task's checkpoint (before it can be sent)."""

    status: TaskStatus


@dataclass(frozen=True, slots=True)
class CheckpointAck:
    key: TaskKey
    update_uuid: bytes


@dataclass(frozen=True, slots=True)
class CheckpointKilling:
    """Note on disk that the task is being killed (reported KILLED even after a restart)."""

    key: TaskKey


@dataclass(frozen=True, slots=True)
class RemoveCheckpoint:
    key: TaskKey


@dataclass(frozen=True, slots=True)
class SaveAgentId:
    agent_id: AgentId


Effect = (
    StartTimer
    | CancelTimer
    | StartProcess
    | AdoptProcess
    | SignalTask
    | RunHealthCheck
    | StopHealthCheck
    | SendUpdates
    | CheckpointUpdate
    | CheckpointAck
    | CheckpointKilling
    | RemoveCheckpoint
    | SaveAgentId
)
