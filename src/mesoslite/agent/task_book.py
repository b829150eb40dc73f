"""`TaskBook`: the agent's tasks, free resources and updates, and the primitives on them.

`AgentState` (`state.py`) takes the commands and `recovery.py` the checkpoints read after a
restart; both change tasks only through these primitives, each returning its effects: make a
task terminal (`finish`, `reject`), make an update (`update`, `flush`), kill (`kill`).
Pure like `AgentState`: `now` is an argument.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from mesoslite.agent import constants as k
from mesoslite.agent import effects as fx
from mesoslite.agent.effects import Effect, TaskKey
from mesoslite.agent.health_state import HealthState
from mesoslite.agent.recovered import RecoveredTask
from mesoslite.agent.status_updates import StatusUpdateManager
from mesoslite.ids import AgentId, FrameworkId, TaskId
from mesoslite.model import (
    REASON_TASK_INVALID,
    CommandSpec,
    StatusSource,
    TaskSpec,
    TaskState,
    TaskStatus,
)
from mesoslite.resources import Resources

logger = logging.getLogger(__name__)


@dataclass(slots=True, eq=False)
class AgentTask:
    framework_id: FrameworkId
    spec: TaskSpec
    state: TaskState
    # A process runs (or ran) for it: spawned by this agent or adopted after a restart.
    has_process: bool = False
    kill_requested: bool = False
    # When the running kill's grace period ends (SIGKILL then), None if none runs.
    kill_deadline: float | None = None
    # False for a recovered task whose resources did not fit the agent's (changed) total.
    counted: bool = True
    # Set when the memory watch killed it for its memory.
    over_memory: bool = False
    health: HealthState | None = None
    # Why its health checks had it killed (the last failure), "" if they did not.
    unhealthy: str = ""

    @property
    def key(self) -> TaskKey:
        return (self.framework_id, self.spec.task_id)


def placeholder_spec(task_id: TaskId) -> TaskSpec:
    """A spec for a task the agent never had a valid one for (reported, never run)."""
    return TaskSpec(task_id, CommandSpec(), Resources.empty())


class TaskBook:
    """Tasks, free resources and unacknowledged updates. See the module docstring."""

    def __init__(
        self,
        *,
        agent_id: AgentId,
        hostname: str,
        resources: Resources,
        attributes: dict[str, str],
        kill_grace_period_s: float,
        status_update_retry_s: float,
        recover: str = "reconnect",
        reserved: dict[str, Resources] | None = None,
    ) -> None:
        self.agent_id = agent_id
        self.hostname = hostname
        self.total = resources
        # Static reservations (`--resources 'cpus(ml):4'`), part of `total`; the master
        # offers them only to their role.
        self.reserved = dict(reserved or {})
        self.free = resources
        self.attributes = dict(attributes)
        self.kill_grace_period_s = kill_grace_period_s
        self.recover_mode = recover
        self.tasks: dict[TaskKey, AgentTask] = {}
        self.updates = StatusUpdateManager(status_update_retry_s)
        self.connected = False
        self.stopping = False
        self._outbox: list[TaskStatus] = []
        self._flush_pending = False
        self._flushed_at = float("-inf")
        # Recovered tasks whose processes the shell is adopting (`recovery.py`).
        self.adopting: dict[TaskKey, RecoveredTask] = {}

    def start_health_checks(self, task: AgentTask, now: float) -> list[Effect]:
        hc = task.spec.health_check
        if hc is None or not task.has_process:
            return []
        task.health = HealthState(hc, now)
        return [fx.StartTimer(fx.HealthTimer(task.key), hc.delay_s)]

    def grace(self, task: AgentTask, requested_s: float) -> float:
        """The kill's own grace if > 0, else the task's if > 0, else the agent's default."""
        if requested_s > 0:
            return requested_s
        if task.spec.kill_grace_period_s > 0:
            return task.spec.kill_grace_period_s
        return self.kill_grace_period_s

    def kill(self, task: AgentTask, grace_s: float, now: float) -> list[Effect]:
        """SIGTERM now and SIGKILL after `grace_s` (at once if 0). A second kill while the
        first one's grace runs can only shorten it (a stopping agent must not wait for a
        long grace a framework asked for)."""
        out: list[Effect] = []
        if not task.kill_requested:
            out.append(fx.CheckpointKilling(task.key))
        task.kill_requested = True
        if grace_s <= 0:
            return out + [fx.SignalTask(task.key, force=True)]
        deadline = now + grace_s
        if task.kill_deadline is not None:
            if deadline >= task.kill_deadline:
                return out
        else:
            out.append(fx.SignalTask(task.key, force=False))
        task.kill_deadline = deadline
        return out + [fx.StartTimer(fx.KillTimer(task.key), grace_s)]

    def finish(
        self,
        task: AgentTask,
        state: TaskState,
        reason: str,
        message: str,
        now: float,
        exit_code: int | None = None,
        healthy: bool | None = None,
    ) -> list[Effect]:
        """Make a task terminal: free its resources and send the update."""
        out: list[Effect] = []
        if not task.state.terminal and task.counted:
            self.free = self.free + task.spec.resources
        if task.health is not None:
            out += [fx.CancelTimer(fx.HealthTimer(task.key)), fx.StopHealthCheck(task.key)]
        task.state = state
        logger.info(
            "task %s framework_id=%s task_id=%s: %s",
            state.label,
            task.framework_id,
            task.spec.task_id,
            message,
        )
        return out + self.update(task, state, now, reason, message, exit_code, healthy)

    def reject(
        self,
        task: AgentTask,
        state: TaskState,
        message: str,
        now: float,
        reason: str = REASON_TASK_INVALID,
    ) -> list[Effect]:
        """A task that never counted against the agent's resources ends at once."""
        logger.info(
            "task %s framework_id=%s task_id=%s: %s",
            state.label,
            task.framework_id,
            task.spec.task_id,
            message,
        )
        task.state = state
        self.tasks[task.key] = task
        return self.update(task, state, now, reason, message)

    def update(
        self,
        task: AgentTask,
        state: TaskState,
        now: float,
        reason: str = "",
        message: str = "",
        exit_code: int | None = None,
        healthy: bool | None = None,
    ) -> list[Effect]:
        status = TaskStatus(
            task.spec.task_id,
            task.framework_id,
            self.agent_id,
            state,
            message,
            reason,
            StatusSource.AGENT,
            timestamp=now,
            exit_code=exit_code,
            healthy=healthy,
        )
        update = self.updates.add(status, now)
        # On disk before it can be sent: an agent killed from here on resends it on restart.
        out: list[Effect] = [fx.CheckpointUpdate(update)]
        if self.connected:
            self._outbox.append(update)
            if not self._flush_pending:
                self._flush_pending = True
                # The window only gathers a burst: after a quiet spell an update (a lone
                # task's end) leaves at the end of this loop iteration (issue 15).
                quiet = now - self._flushed_at >= k.STATUS_FLUSH_DELAY_S
                delay_s = 0.0 if quiet else k.STATUS_FLUSH_DELAY_S
                out.append(fx.StartTimer(fx.FlushTimer(), delay_s))
        return out

    def flush(self, now: float) -> list[Effect]:
        """Send the updates gathered in the flush window now."""
        out: list[Effect] = []
        if self._flush_pending:
            self._flush_pending = False
            out.append(fx.CancelTimer(fx.FlushTimer()))
        if self._outbox:
            self._flushed_at = now
            batch, self._outbox = tuple(self._outbox), []
            if self.connected:
                out.append(fx.SendUpdates(batch))
                # Their resend clock starts now: an update that waited in a long loop
                # iteration is not resent the moment it is first sent.
                self.updates.sent(batch, now)
        return out
