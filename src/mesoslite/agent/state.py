"""`AgentState`: the agent's tasks and their updates as a synchronous, deterministic core.

Design:
- Each public method takes one command (a launch, a kill, an exit, an acknowledgement, a
  health result, a timer firing, the master connecting or going), changes the state and
  returns the effects for the shell (`actor.py`) to carry out, in order (`effects.py`).
  `now` is an argument; nothing here awaits, spawns, signals, reads a clock or a file. The
  same code runs in the daemon and in unit tests on a `VirtualClock`.
- A task is in `tasks` from the moment its launch arrives until its terminal update is
  acknowledged: STAGING while it waits to be spawned, RUNNING with a process, terminal
  until acknowledged. That is also what the agent reports when it (re-)registers.
- Its resources count as used from its launch until it is terminal (not until the ack:
  the master frees them when it sees the terminal update and may offer them again at once).
- Every update is checkpointed (`CheckpointUpdate`) before it can be sent. Updates made
  close together leave in one `SendUpdates` (a `STATUS_FLUSH_DELAY_S` window);
  `StatusUpdateManager` keeps them until acknowledged and the periodic `RetryTimer` resends
  the overdue ones.
- Kill: SIGTERM now, SIGKILL when the grace period's `KillTimer` fires if the process still
  runs; a second kill can only shorten the grace. Health checks run when their
  `HealthTimer` fires; `HealthState` says what the results mean.
- Failure cases: a launch the agent cannot run (resources not free, the agent stopping)
  becomes TASK_ERROR at once; a kill of an unknown task answers TASK_DROPPED so the master
  does not wait for it forever. Recovery after a restart is in `recovery.py`.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence

from mesoslite import __version__
from mesoslite.agent import effects as fx
from mesoslite.agent import recovery
from mesoslite.agent.effects import Effect, TaskKey
from mesoslite.agent.outcome import describe_exit, exit_outcome
from mesoslite.agent.recovered import RecoveredTask
from mesoslite.agent.task_book import AgentTask, TaskBook, placeholder_spec
from mesoslite.ids import AgentId, FrameworkId, TaskId
from mesoslite.model import (
    REASON_AGENT_RESTARTED,
    REASON_HEALTH_CHECK,
    REASON_MEMORY_LIMIT,
    REASON_RECONCILIATION,
    REASON_TASK_KILLED,
    REASON_TASK_UNHEALTHY,
    AgentInfo,
    TaskSpec,
    TaskState,
)

logger = logging.getLogger(__name__)

__all__ = ["AgentState", "AgentTask", "placeholder_spec"]


class AgentState(TaskBook):
    """The agent's commands on its `TaskBook`. See the module docstring."""

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> list[Effect]:
        """Serving begins: the periodic resend of overdue updates."""
        return [fx.StartTimer(fx.RetryTimer(), self.retry_tick_s)]

    @property
    def retry_tick_s(self) -> float:
        return max(0.05, self.updates.retry_s / 4)

    def registration(self) -> tuple[AgentInfo, list[tuple[FrameworkId, TaskSpec, TaskState]]]:
        """What to tell the master when (re-)registering: who we are and every task we hold."""
        info = AgentInfo(
            hostname=self.hostname,
            resources=self.total,
            attributes=dict(self.attributes),
            id=self.agent_id,
            version=__version__,
            reserved=dict(self.reserved),
        )
        return info, [(t.framework_id, t.spec, t.state) for t in self.tasks.values()]

    def registered(self, agent_id: AgentId, now: float) -> list[Effect]:
        """The master took us: keep the id it gave, and resend every pending update now."""
        out: list[Effect] = []
        if agent_id != self.agent_id:
            if self.agent_id:
                logger.warning("master gave a new agent id old=%s new=%s", self.agent_id, agent_id)
            self.agent_id = agent_id
            out.append(fx.SaveAgentId(agent_id))
        self.connected = True
        self._outbox.clear()  # everything in it is in the resend below, in order
        pending = self.updates.resend_all(now)
        if pending:
            out.append(fx.SendUpdates(tuple(pending)))
        return out

    def recover(self, found: Sequence[RecoveredTask], now: float) -> list[Effect]:
        """Take back what the last agent left (`recovery.py`); before `start`."""
        return recovery.recover(self, found, now)

    def adopted(self, key: TaskKey, alive: bool, exit_code: int | None, now: float) -> list[Effect]:
        """The shell's answer to `AdoptProcess` (`recovery.adopted`)."""
        return recovery.adopted(self, key, alive, exit_code, now)

    def disconnected(self) -> None:
        self.connected = False

    def begin_stop(self, now: float) -> tuple[list[Effect], float]:
        """The agent stops: no more launches; tasks not spawned yet end KILLED. With
        `recover="cleanup"` every running task is killed too.

        Returns:
            The effects, and the longest grace period of those kills.
        """
        self.stopping = True
        out: list[Effect] = []
        longest = 0.0
        for task in list(self.tasks.values()):
            if task.state == TaskState.STAGING and not task.has_process:
                out += self.finish(
                    task, TaskState.KILLED, REASON_TASK_KILLED, "agent is stopping", now
                )
            elif self.recover_mode == "cleanup" and task.has_process and not task.state.terminal:
                grace = self.grace(task, 0.0)
                longest = max(longest, grace)
                out += self.kill(task, grace, now)
        return out, longest

    # ------------------------------------------------------------------ from the master

    def launch_tasks(
        self, framework_id: FrameworkId, specs: Sequence[TaskSpec], now: float
    ) -> list[Effect]:
        """Accept tasks to run: check them now, ask the shell to spawn them."""
        out: list[Effect] = []
        for spec in specs:
            key = (framework_id, spec.task_id)
            existing = self.tasks.get(key)
            if existing is not None and not existing.state.terminal:
                logger.warning(
                    "launch of a task already running ignored framework_id=%s task_id=%s",
                    framework_id,
                    spec.task_id,
                )
                continue
            task = AgentTask(framework_id, spec, TaskState.STAGING)
            if self.stopping:
                out += self.reject(task, TaskState.ERROR, "the agent is stopping", now)
            elif not self.free.contains(spec.resources):
                shortfall = "; ".join(self.free.shortfall(spec.resources))
                message = "the agent does not have the task's resources free: " + shortfall
                out += self.reject(task, TaskState.ERROR, message, now)
            else:
                self.tasks[key] = task
                self.free = self.free - spec.resources
                out.append(fx.StartProcess(key))
        return out

    def reject_task(
        self, framework_id: FrameworkId, task_id: TaskId, message: str, now: float
    ) -> list[Effect]:
        """A task the master sent that could not even be read: TASK_ERROR."""
        task = AgentTask(framework_id, placeholder_spec(task_id), TaskState.STAGING)
        return self.reject(task, TaskState.ERROR, message, now)

    def kill_task(
        self, framework_id: FrameworkId, task_id: TaskId, grace_s: float, now: float
    ) -> list[Effect]:
        task = self.tasks.get((framework_id, task_id))
        if task is None:
            ghost = AgentTask(framework_id, placeholder_spec(task_id), TaskState.STAGING)
            return self.reject(
                ghost,
                TaskState.DROPPED,
                "task is not known on this agent",
                now,
                REASON_RECONCILIATION,
            )
        if task.state.terminal:
            return []  # it ended already; its terminal update is on its way
        if not task.has_process:
            return self.finish(
                task, TaskState.KILLED, REASON_TASK_KILLED, "killed before it started", now
            )
        return self.kill(task, self.grace(task, grace_s), now)

    def shutdown_framework(self, framework_id: FrameworkId, now: float) -> list[Effect]:
        """The framework is gone: kill all of its tasks."""
        victims = [t for t in self.tasks.values() if t.framework_id == framework_id]
        logger.info("shutting down framework framework_id=%s tasks=%d", framework_id, len(victims))
        out: list[Effect] = []
        for task in victims:
            out += self.kill_task(framework_id, task.spec.task_id, 0.0, now)
        return out

    def acknowledge(self, acks: Sequence[tuple[FrameworkId, TaskId, bytes]]) -> list[Effect]:
        out: list[Effect] = []
        for framework_id, task_id, update_uuid in acks:
            key = (framework_id, task_id)
            if not self.updates.acknowledge(framework_id, task_id, update_uuid):
                logger.debug(
                    "acknowledgement matched nothing framework_id=%s task_id=%s",
                    framework_id,
                    task_id,
                )
                continue
            task = self.tasks.get(key)
            if task is not None and task.state.terminal and not self.updates.has_pending(key):
                del self.tasks[key]  # done: forget it (its sandbox stays on disk)
                out.append(fx.RemoveCheckpoint(key))
            else:
                out.append(fx.CheckpointAck(key, update_uuid))
        return out

    def reconcile(self, framework_ids: Collection[FrameworkId], now: float) -> list[Effect]:
        """Resend now what these frameworks (all, if empty) have not acknowledged."""
        if not self.connected:
            return []
        out = self.flush(now)
        pending = self.updates.resend_all(now, framework_ids or None)
        if pending:
            out.append(fx.SendUpdates(tuple(pending)))
        return out

    # ------------------------------------------------------------------ from the shell

    def wants_start(self, key: TaskKey) -> TaskSpec | None:
        """The spec to spawn for a queued `StartProcess`, None if it was killed meanwhile."""
        task = self.tasks.get(key)
        if task is None or task.state != TaskState.STAGING or task.has_process:
            return None
        return task.spec

    def process_started(self, key: TaskKey, now: float) -> list[Effect]:
        task = self.tasks[key]
        task.has_process = True
        task.state = TaskState.RUNNING
        return self.update(task, TaskState.RUNNING, now) + self.start_health_checks(task, now)

    def launch_failed(
        self, key: TaskKey, state: TaskState, reason: str, message: str, now: float
    ) -> list[Effect]:
        logger.info("task launch failed framework_id=%s task_id=%s: %s", key[0], key[1], message)
        return self.finish(self.tasks[key], state, reason, message, now)

    def exited(
        self,
        key: TaskKey,
        code: int,
        now: float,
        *,
        memory_hit: bool = False,
        status_lost: bool | str = False,
    ) -> list[Effect]:
        """The task's process ended with `code` (or -signal). `memory_hit`: its memory
        cgroup hit the limit; `status_lost`: it was adopted and its wrapper left no status."""
        task = self.tasks[key]
        out: list[Effect] = []
        if task.kill_deadline is not None:
            task.kill_deadline = None
            out.append(fx.CancelTimer(fx.KillTimer(key)))
        if (memory_hit or task.over_memory) and not task.kill_requested:
            limit = task.spec.resources.scalar("mem")
            message = f"killed: over its memory limit of {limit:g} MB ({describe_exit(code)})"
            return out + self.finish(
                task, TaskState.FAILED, REASON_MEMORY_LIMIT, message, now, code
            )
        if task.unhealthy:
            message = (
                f"killed after failing its health check: {task.unhealthy}; {describe_exit(code)}"
            )
            return out + self.finish(
                task, TaskState.KILLED, REASON_TASK_UNHEALTHY, message, now, code, healthy=False
            )
        if status_lost:
            state = TaskState.KILLED if task.kill_requested else TaskState.FAILED
            reason = REASON_TASK_KILLED if task.kill_requested else REASON_AGENT_RESTARTED
            message = "the task's process ended; its exit status is lost"
            if isinstance(status_lost, str):
                message += f" ({status_lost})"
            return out + self.finish(task, state, reason, message, now)
        state, reason, message = exit_outcome(code, killed=task.kill_requested)
        return out + self.finish(task, state, reason, message, now, code)

    def health_result(self, key: TaskKey, ok: bool, detail: str, now: float) -> list[Effect]:
        task = self.tasks.get(key)
        if task is None or task.health is None or task.state != TaskState.RUNNING:
            return []
        if task.kill_requested:
            return []
        out: list[Effect] = [fx.StartTimer(fx.HealthTimer(key), task.health.spec.interval_s)]
        changed, kill = task.health.record(ok, now)
        if changed:
            logger.info("task health changed task_id=%s healthy=%s: %s", key[1], ok, detail)
            out += self.update(
                task, TaskState.RUNNING, now, REASON_HEALTH_CHECK, detail, healthy=ok
            )
        if kill:
            task.unhealthy = f"{task.health.failures} consecutive failures, the last: {detail}"
            logger.info("killing an unhealthy task task_id=%s", key[1])
            out += self.kill(task, self.grace(task, 0.0), now)
        return out

    def memory_watched(self) -> list[tuple[TaskKey, float]]:
        """Running tasks to hold to their `mem` (without a memory cgroup): key, limit in MB."""
        return [
            (key, t.spec.resources.scalar("mem"))
            for key, t in self.tasks.items()
            if t.has_process
            and not t.state.terminal
            and not t.over_memory
            and t.spec.resources.scalar("mem") > 0
        ]

    def memory_used(self, key: TaskKey, rss_bytes: int) -> list[Effect]:
        """The task's process tree uses `rss_bytes`: over its `mem`, it is SIGKILLed."""
        task = self.tasks.get(key)
        if task is None or task.over_memory or not task.has_process or task.state.terminal:
            return []
        limit_mb = task.spec.resources.scalar("mem")
        if limit_mb <= 0 or rss_bytes <= limit_mb * 1024 * 1024:
            return []
        logger.info(
            "task over its memory limit, killing it task_id=%s limit_mb=%g", key[1], limit_mb
        )
        task.over_memory = True
        return [fx.SignalTask(key, force=True)]

    def timer_fired(self, timer: fx.Timer, now: float) -> list[Effect]:
        if isinstance(timer, fx.FlushTimer):
            self._flush_pending = False
            return self.flush(now)
        if isinstance(timer, fx.RetryTimer):
            return self._retry(now)
        task = self.tasks.get(timer.key)
        if task is None or task.state != TaskState.RUNNING:
            return []
        if isinstance(timer, fx.KillTimer):
            task.kill_deadline = None
            logger.info("task ignored SIGTERM, sending SIGKILL task_id=%s", timer.key[1])
            return [fx.SignalTask(timer.key, force=True)]
        if task.health is None or task.kill_requested:
            return []
        return [fx.RunHealthCheck(timer.key, task.health.spec)]

    def live_keys(self) -> set[tuple[str, str]]:
        """The tasks the agent holds, whose sandboxes GC must keep."""
        return {(str(f), str(t)) for f, t in self.tasks}

    def _retry(self, now: float) -> list[Effect]:
        out: list[Effect] = [fx.StartTimer(fx.RetryTimer(), self.retry_tick_s)]
        if not self.connected:
            return out  # all of them go at once on re-registration
        out += self.flush(now)
        due = self.updates.due(now)
        if due:
            logger.debug("resending unacknowledged updates count=%d", len(due))
            out.append(fx.SendUpdates(tuple(due)))
        return out
