"""`AgentActor`: the one owner of the agent's state (its tasks and their updates) on its loop.

Design:
- Everything runs on the agent's event loop: the master link calls the actor's methods
  synchronously as messages arrive, the launcher calls back when a process exits, timers
  fire for retries. No locks; no thread touches the state (`read_file` reads the sandbox
  in a worker thread, but only the file).
- A task is in `tasks` from the moment its launch arrives until its terminal update is
  acknowledged: STAGING while it waits in the launch queue, RUNNING with a process,
  terminal until acknowledged. That is also what the agent reports when it (re-)registers.
- Its resources count as used from its launch until it is terminal (not until the ack:
  the master frees them when it sees the terminal update and may offer them again at once).
- Launches are queued and started `LAUNCH_CHUNK` per loop iteration, so that one huge
  `LaunchTasks` does not keep pings, acknowledgements and exits waiting.
- Updates produced close together are sent in one `StatusUpdates` message (a
  `STATUS_FLUSH_DELAY_S` window); `StatusUpdateManager` keeps them until acknowledged.
- Failure cases: a launch the agent cannot run (resources not free, a bad id, a missing
  executable) becomes TASK_ERROR or TASK_FAILED at once; a kill of an unknown task answers
  TASK_DROPPED so the master does not wait for it forever.
- Recovery (`recover`, run by `start`): every launched task and every update is checkpointed
  in the work dir (`checkpoint.py`) before anything is sent. A restarted agent puts the
  unacknowledged updates back in order, re-adopts the tasks whose processes still run,
  reports the exit codes of those that ended while it was down (their wrapper wrote them),
  and registers with the same id. With `recover="cleanup"` it kills what it recovered, and
  its `stop` kills its tasks too (tasks never outlive it); with `"reconnect"` (the default)
  `stop` leaves them running for the next agent to adopt.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections import deque
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

from mesoslite import __version__
from mesoslite.agent import constants as k
from mesoslite.agent import gc
from mesoslite.agent.checkpoint import (
    EXIT_STATUS_FILE,
    CheckpointStore,
    RecoveredTask,
    read_exit_status,
)
from mesoslite.agent.health import HealthChecker, HealthState
from mesoslite.agent.isolation import WATCH_INTERVAL_S, detect_isolator, tree_rss_bytes
from mesoslite.agent.launcher import LaunchedTask, LaunchError, TaskLauncher
from mesoslite.agent.messages import FileChunkOut, MasterSender, Outgoing, StatusUpdatesOut
from mesoslite.agent.sandbox import read_sandbox_file
from mesoslite.agent.status_updates import StatusUpdateManager, TaskKey
from mesoslite.ids import AgentId, FrameworkId, TaskId
from mesoslite.model import (
    REASON_AGENT_RESTARTED,
    REASON_COMMAND_EXITED,
    REASON_HEALTH_CHECK,
    REASON_MEMORY_LIMIT,
    REASON_RECONCILIATION,
    REASON_TASK_INVALID,
    REASON_TASK_KILLED,
    REASON_TASK_UNHEALTHY,
    AgentInfo,
    CommandSpec,
    StatusSource,
    TaskSpec,
    TaskState,
    TaskStatus,
)
from mesoslite.resources import Resources

logger = logging.getLogger(__name__)

# ---------------------------------------------------------------------- state


@dataclass(slots=True, eq=False)
class AgentTask:
    framework_id: FrameworkId
    spec: TaskSpec
    state: TaskState
    launched: LaunchedTask | None = None
    kill_requested: bool = False
    # False for a recovered task whose resources did not fit the agent's (changed) total.
    counted: bool = True
    # Set when the psutil watch killed it for its memory.
    over_memory: bool = False
    health: HealthState | None = None
    checker: HealthChecker | None = None
    # Why its health checks had it killed (the last failure), "" if they did not.
    unhealthy: str = ""

    @property
    def key(self) -> TaskKey:
        return (self.framework_id, self.spec.task_id)


def placeholder_spec(task_id: TaskId) -> TaskSpec:
    """A spec for a task the agent never had a valid one for (reported, never run)."""
    return TaskSpec(task_id, CommandSpec(), Resources.empty())


class AgentActor:
    """The agent's tasks and their status updates. See the module docstring."""

    def __init__(
        self,
        *,
        work_dir: Path,
        hostname: str,
        resources: Resources,
        attributes: dict[str, str],
        kill_grace_period_s: float,
        status_update_retry_s: float,
        recover: str = "reconnect",
        sandbox_gc_age_s: float = 0.0,
        reserved: dict[str, Resources] | None = None,
    ) -> None:
        self.work_dir = work_dir
        self.hostname = hostname
        self.total = resources
        # Static reservations (`--resources 'cpus(ml):4'`), part of `total`; the master
        # offers them only to their role.
        self.reserved = dict(reserved or {})
        self.free = resources
        self.attributes = attributes
        self.kill_grace_period_s = kill_grace_period_s
        self.recover_mode = recover
        self.sandbox_gc_age_s = sandbox_gc_age_s
        self.store = CheckpointStore(work_dir)
        self.isolator = detect_isolator(work_dir)
        self.attributes = {**attributes, "isolation": self.isolator.kind}
        self.agent_id = AgentId(self._load_agent_id())
        self.tasks: dict[TaskKey, AgentTask] = {}
        self.updates = StatusUpdateManager(status_update_retry_s)
        self.connected = False
        self.stopping = False
        self._loop = asyncio.get_running_loop()
        self.launcher = TaskLauncher(work_dir, self._on_exit)
        self.launcher.agent_id = self.agent_id
        self._sender: MasterSender | None = None
        self._launch_queue: deque[AgentTask] = deque()
        self._launch_handle: asyncio.Handle | None = None
        self._outbox: list[TaskStatus] = []
        self._flush_handle: asyncio.TimerHandle | None = None
        self._retry_handle: asyncio.TimerHandle | None = None
        self._watch_handle: asyncio.TimerHandle | None = None
        self._gc_handle: asyncio.TimerHandle | None = None
        self._background: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------------ lifecycle

    def start(self, sender: MasterSender) -> None:
        """Recover what the last agent in this work dir left (see `recover`), then serve."""
        self._sender = sender
        self.recover()
        self._schedule_retry()
        if self.isolator.watches_memory:
            self._watch_handle = self._loop.call_later(WATCH_INTERVAL_S, self._watch_memory)
        if self.sandbox_gc_age_s > 0:
            self._gc_handle = self._loop.call_later(self._gc_interval_s(), self._gc)

    def recover(self) -> int:
        """Take back the checkpointed tasks and updates; returns how many tasks were found."""
        found = self.store.recover()
        now = self._loop.time()
        adopted = ended = 0
        for r in found:
            for st in r.pending:
                self.updates.restore(st, now)
            outcome = self._recover_task(r)
            adopted += outcome == "adopted"
            ended += outcome == "ended"
        if found:
            logger.info(
                "recovered from checkpoints tasks=%d adopted=%d ended_while_down=%d "
                "pending_updates=%d mode=%s",
                len(found),
                adopted,
                ended,
                self.updates.pending_count,
                self.recover_mode,
            )
        return len(found)

    def _recover_task(self, r: RecoveredTask) -> str:
        key = (r.framework_id, r.task_id)
        spec = r.spec or placeholder_spec(r.task_id)
        last = r.last_state
        if last is not None and last.terminal:
            if r.pending:
                self.tasks[key] = AgentTask(r.framework_id, spec, last)
                return "terminal"
            self.store.remove(r.framework_id, r.task_id)
            return "done"
        task = AgentTask(r.framework_id, spec, TaskState.STAGING)
        if self.free.contains(spec.resources):
            self.free = self.free - spec.resources
        else:
            logger.warning(
                "recovered task does not fit the agent's resources task_id=%s: %s",
                r.task_id,
                "; ".join(self.free.shortfall(spec.resources)),
            )
            task.counted = False
        self.tasks[key] = task
        if r.spec is None:
            self._finish(
                task,
                TaskState.LOST,
                REASON_AGENT_RESTARTED,
                "the agent restarted before the task's process was recorded",
            )
            return "lost"
        task_dir = self.store.task_dir(r.framework_id, r.task_id)
        exit_file = task_dir / EXIT_STATUS_FILE if task_dir is not None else None
        launched = self.launcher.adopt(
            r.framework_id, r.task_id, r.pid, r.start_ticks, exit_file, tuple(r.cgroups)
        )
        if launched is not None:
            task.launched = launched
            task.state = TaskState.RUNNING
            if last is None:
                self._update(task, TaskState.RUNNING)
            if self.recover_mode == "cleanup" or r.kill_requested:
                # Killed by a previous agent (the grace restarts) or by this cleanup.
                self._kill(task, self._grace(task, 0.0))
            else:
                self._start_health_checks(task)
            return "adopted"
        code = read_exit_status(exit_file)
        if r.kill_requested:
            message = "killed; " + (_describe(code) if code is not None else "exit status lost")
            self._finish(task, TaskState.KILLED, REASON_TASK_KILLED, message, code)
        elif code is None:
            self._finish(
                task,
                TaskState.FAILED,
                REASON_AGENT_RESTARTED,
                "the task's process ended while the agent was down and left no exit status",
            )
        else:
            state, reason, message = _outcome(code, killed=False)
            self._finish(task, state, reason, f"{message} (while the agent was down)", code)
        return "ended"

    async def stop(self, flush_s: float = k.STOP_FLUSH_S) -> None:
        """Stop serving. With `recover="cleanup"`, first kill every task (SIGTERM, grace,
        SIGKILL) and wait for them; otherwise leave them running for the next agent. Then
        try to deliver pending updates for up to `flush_s` and let go of the launcher."""
        self.stopping = True
        while self._launch_queue:
            task = self._launch_queue.popleft()
            if task.state == TaskState.STAGING:
                self._finish(task, TaskState.KILLED, REASON_TASK_KILLED, "agent is stopping")
        longest = 0.0
        for task in list(self.tasks.values()):
            if self.recover_mode != "cleanup":
                break
            if task.launched is not None and not task.launched.exited:
                grace = self._grace(task, 0.0)
                longest = max(longest, grace)
                self._kill(task, grace)
        if self.launcher.running and self.recover_mode == "cleanup":
            logger.info("agent stopping: killing tasks=%d", len(self.launcher.running))
            await _wait_until(lambda: not self.launcher.running, longest + k.STOP_KILL_SLACK_S)
        self._flush()
        if self.connected and self.updates.pending_count:
            await _wait_until(lambda: not self.updates.pending_count or not self.connected, flush_s)
        for handle in (
            self._retry_handle,
            self._flush_handle,
            self._launch_handle,
            self._watch_handle,
            self._gc_handle,
        ):
            if handle is not None:
                handle.cancel()
        for bg in list(self._background):
            bg.cancel()
        if self.launcher.running:
            if self.recover_mode == "cleanup":
                logger.error(
                    "tasks still running after SIGKILL pids=%s", sorted(self.launcher.running)
                )
            else:
                logger.info(
                    "leaving tasks running for the next agent to recover tasks=%d",
                    len(self.launcher.running),
                )
        self.launcher.close()
        # A task killed just now may not be reaped yet (its cgroup is busy): a moment, once.
        for _ in range(10):
            self.isolator.remove(())
            if not self.isolator.has_leftovers:
                break
            await asyncio.sleep(0.05)
        self.isolator.close()

    # ------------------------------------------------------------------ registration

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

    def registered(self, agent_id: AgentId) -> None:
        """The master took us: keep the id it gave, and resend every pending update now."""
        if agent_id != self.agent_id:
            if self.agent_id:
                logger.warning("master gave a new agent id old=%s new=%s", self.agent_id, agent_id)
            self.agent_id = agent_id
            self.launcher.agent_id = agent_id
            self._save_agent_id(agent_id)
        self.connected = True
        self._outbox.clear()  # everything in it is in the resend below, in order
        pending = self.updates.resend_all(self._loop.time())
        if pending:
            self._send(StatusUpdatesOut(tuple(pending)))

    def disconnected(self) -> None:
        self.connected = False

    def _load_agent_id(self) -> str:
        try:
            return (self.work_dir / k.AGENT_ID_FILE).read_text().strip()
        except FileNotFoundError:
            return ""

    def _save_agent_id(self, agent_id: str) -> None:
        path = self.work_dir / k.AGENT_ID_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(agent_id + "\n")
        tmp.replace(path)

    # ------------------------------------------------------------------ from the master

    def launch_tasks(self, framework_id: FrameworkId, specs: Sequence[TaskSpec]) -> None:
        """Accept tasks to run: check them now, start them over the next loop iterations."""
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
                self._reject(task, TaskState.ERROR, "the agent is stopping")
            elif not self.free.contains(spec.resources):
                self._reject(
                    task,
                    TaskState.ERROR,
                    "the agent does not have the task's resources free: "
                    + "; ".join(self.free.shortfall(spec.resources)),
                )
            else:
                self.tasks[key] = task
                self.free = self.free - spec.resources
                self._launch_queue.append(task)
        if self._launch_queue and self._launch_handle is None:
            self._launch_handle = self._loop.call_soon(self._launch_some)

    def reject_task(self, framework_id: FrameworkId, task_id: TaskId, message: str) -> None:
        """A task the master sent that could not even be read: TASK_ERROR."""
        self._reject(
            AgentTask(framework_id, placeholder_spec(task_id), TaskState.STAGING),
            TaskState.ERROR,
            message,
        )

    def kill_task(self, framework_id: FrameworkId, task_id: TaskId, grace_s: float) -> None:
        task = self.tasks.get((framework_id, task_id))
        if task is None:
            self._reject(
                AgentTask(framework_id, placeholder_spec(task_id), TaskState.STAGING),
                TaskState.DROPPED,
                "task is not known on this agent",
                REASON_RECONCILIATION,
            )
        elif task.state.terminal:
            pass  # it ended already; its terminal update is on its way
        elif task.launched is None:
            self._finish(task, TaskState.KILLED, REASON_TASK_KILLED, "killed before it started")
        else:
            self._kill(task, self._grace(task, grace_s))

    def shutdown_framework(self, framework_id: FrameworkId) -> None:
        """The framework is gone: kill all of its tasks."""
        victims = [t for t in self.tasks.values() if t.framework_id == framework_id]
        logger.info("shutting down framework framework_id=%s tasks=%d", framework_id, len(victims))
        for task in victims:
            self.kill_task(framework_id, task.spec.task_id, 0.0)

    def acknowledge(self, acks: Sequence[tuple[FrameworkId, TaskId, bytes]]) -> None:
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
                self.store.remove(framework_id, task_id)
            else:
                self.store.append_ack(framework_id, task_id, update_uuid)

    def reconcile(self, framework_ids: Collection[FrameworkId]) -> None:
        """Resend now what these frameworks (all, if empty) have not acknowledged."""
        if not self.connected:
            return
        self._flush()
        pending = self.updates.resend_all(self._loop.time(), framework_ids or None)
        if pending:
            self._send(StatusUpdatesOut(tuple(pending)))

    def read_file(
        self, request_id: int, framework_id: str, task_id: str, name: str, offset: int, length: int
    ) -> None:
        """Read part of a sandbox file off the loop, answer with a `FileChunkOut`."""
        bg = self._loop.create_task(
            self._read_file(request_id, framework_id, task_id, name, offset, length)
        )
        self._background.add(bg)
        bg.add_done_callback(self._background.discard)

    async def _read_file(
        self, request_id: int, framework_id: str, task_id: str, name: str, offset: int, length: int
    ) -> None:
        data, size, error = await asyncio.to_thread(
            read_sandbox_file, self.work_dir, framework_id, task_id, name, offset, length
        )
        self._send(FileChunkOut(request_id, data, size, error))

    # ------------------------------------------------------------------ launching and exits

    def _launch_some(self) -> None:
        self._launch_handle = None
        for _ in range(min(k.LAUNCH_CHUNK, len(self._launch_queue))):
            task = self._launch_queue.popleft()
            if task.state != TaskState.STAGING:
                continue  # killed while it waited
            exit_file = self.store.prepare_launch(task.framework_id, task.spec.task_id)
            cgroups = self.isolator.prepare(
                task.framework_id, task.spec.task_id, task.spec.resources
            )
            try:
                task.launched = launched = self.launcher.launch(
                    task.framework_id, task.spec, exit_file, cgroups
                )
            except LaunchError as e:
                logger.info(
                    "task launch failed framework_id=%s task_id=%s: %s",
                    task.framework_id,
                    task.spec.task_id,
                    e.message,
                )
                self.isolator.remove(cgroups)
                self._finish(task, e.state, e.reason, e.message)
                continue
            self.store.save_task(
                task.spec,
                task.framework_id,
                launched.pid,
                launched.start_ticks,
                list(launched.cgroups),
            )
            task.state = TaskState.RUNNING
            self._update(task, TaskState.RUNNING)
            self._start_health_checks(task)
        if self._launch_queue:
            self._launch_handle = self._loop.call_soon(self._launch_some)

    def _on_exit(self, launched: LaunchedTask, code: int) -> None:
        task = self.tasks.get((launched.framework_id, launched.task_id))
        if task is None or task.launched is not launched:
            self.isolator.remove(launched.cgroups)
            return
        memory_hit = task.over_memory or self.isolator.memory_limit_hit(launched.cgroups)
        self.isolator.remove(launched.cgroups)
        if memory_hit and not task.kill_requested:
            limit = task.spec.resources.scalar("mem")
            self._finish(
                task,
                TaskState.FAILED,
                REASON_MEMORY_LIMIT,
                f"killed: over its memory limit of {limit:g} MB ({_describe(code)})",
                code,
            )
            return
        if task.unhealthy:
            self._finish(
                task,
                TaskState.KILLED,
                REASON_TASK_UNHEALTHY,
                f"killed after failing its health check: {task.unhealthy}; {_describe(code)}",
                code,
                healthy=False,
            )
            return
        if launched.popen is None and read_exit_status(launched.exit_file) is None:
            # Adopted after a restart, and its wrapper was killed before it could say.
            state = TaskState.KILLED if task.kill_requested else TaskState.FAILED
            reason = REASON_TASK_KILLED if task.kill_requested else REASON_AGENT_RESTARTED
            self._finish(task, state, reason, "the task's process ended; its exit status is lost")
            return
        state, reason, message = _outcome(code, killed=task.kill_requested)
        self._finish(task, state, reason, message, code)

    def _start_health_checks(self, task: AgentTask) -> None:
        hc = task.spec.health_check
        if hc is None or task.launched is None:
            return
        task.health = HealthState(hc, self._loop.time())
        task.checker = HealthChecker(
            hc, task.launched.sandbox, lambda ok, detail: self._health_result(task, ok, detail)
        )

    def _health_result(self, task: AgentTask, ok: bool, detail: str) -> None:
        if task.health is None or task.state != TaskState.RUNNING or task.kill_requested:
            return
        changed, kill = task.health.record(ok, self._loop.time())
        if changed:
            logger.info(
                "task health changed task_id=%s healthy=%s: %s", task.spec.task_id, ok, detail
            )
            self._update(task, TaskState.RUNNING, REASON_HEALTH_CHECK, detail, healthy=ok)
        if kill and task.launched is not None:
            task.unhealthy = f"{task.health.failures} consecutive failures, the last: {detail}"
            logger.info("killing an unhealthy task task_id=%s", task.spec.task_id)
            self._kill(task, self._grace(task, 0.0))

    def _gc_interval_s(self) -> float:
        return min(k.SANDBOX_GC_MAX_INTERVAL_S, max(0.1, self.sandbox_gc_age_s / 4))

    def _gc(self) -> None:
        """Remove old sandboxes of tasks the agent no longer holds, off the loop."""
        self._gc_handle = self._loop.call_later(self._gc_interval_s(), self._gc)
        live = {(str(f), str(t)) for f, t in self.tasks}
        bg = self._loop.create_task(self._collect(live))
        self._background.add(bg)
        bg.add_done_callback(self._background.discard)

    async def _collect(self, live: set[tuple[str, str]]) -> None:
        try:
            await asyncio.to_thread(
                gc.collect, self.work_dir, live, self.sandbox_gc_age_s, time.time()
            )
        except OSError as e:
            logger.warning("sandbox gc failed: %s", e)

    def _watch_memory(self) -> None:
        """Without a memory cgroup: kill tasks whose process tree is over their `mem`."""
        self._watch_handle = self._loop.call_later(WATCH_INTERVAL_S, self._watch_memory)
        for task in self.tasks.values():
            launched = task.launched
            limit_mb = task.spec.resources.scalar("mem")
            if launched is None or launched.exited or task.over_memory or limit_mb <= 0:
                continue
            if tree_rss_bytes(launched.pid) > limit_mb * 1024 * 1024:
                logger.info(
                    "task over its memory limit, killing it task_id=%s limit_mb=%g",
                    task.spec.task_id,
                    limit_mb,
                )
                task.over_memory = True
                self.launcher.kill(launched, 0.0)

    def _grace(self, task: AgentTask, requested_s: float) -> float:
        """The kill's own grace if > 0, else the task's if > 0, else the agent's default."""
        if requested_s > 0:
            return requested_s
        if task.spec.kill_grace_period_s > 0:
            return task.spec.kill_grace_period_s
        return self.kill_grace_period_s

    def _kill(self, task: AgentTask, grace_s: float) -> None:
        assert task.launched is not None
        if not task.kill_requested:
            self.store.mark_killing(task.framework_id, task.spec.task_id)
        task.kill_requested = True
        self.launcher.kill(task.launched, grace_s)

    # ------------------------------------------------------------------ updates

    def _finish(
        self,
        task: AgentTask,
        state: TaskState,
        reason: str,
        message: str,
        exit_code: int | None = None,
        healthy: bool | None = None,
    ) -> None:
        """Make a task terminal: free its resources and send the update."""
        if not task.state.terminal and task.counted:
            self.free = self.free + task.spec.resources
        if task.checker is not None:
            task.checker.stop()
            task.checker = None
        task.state = state
        logger.info(
            "task %s framework_id=%s task_id=%s: %s",
            state.label,
            task.framework_id,
            task.spec.task_id,
            message,
        )
        self._update(task, state, reason, message, exit_code, healthy)

    def _reject(
        self, task: AgentTask, state: TaskState, message: str, reason: str = REASON_TASK_INVALID
    ) -> None:
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
        self._update(task, state, reason, message)

    def _update(
        self,
        task: AgentTask,
        state: TaskState,
        reason: str = "",
        message: str = "",
        exit_code: int | None = None,
        healthy: bool | None = None,
    ) -> None:
        status = TaskStatus(
            task.spec.task_id,
            task.framework_id,
            self.agent_id,
            state,
            message,
            reason,
            StatusSource.AGENT,
            timestamp=time.time(),
            exit_code=exit_code,
            healthy=healthy,
        )
        update = self.updates.add(status, self._loop.time())
        # On disk before it can be sent: an agent killed from here on resends it on restart.
        self.store.append_update(update)
        if self.connected:
            self._outbox.append(update)
            if self._flush_handle is None:
                self._flush_handle = self._loop.call_later(k.STATUS_FLUSH_DELAY_S, self._flush)

    def _flush(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        if self._outbox:
            batch, self._outbox = tuple(self._outbox), []
            if self.connected:
                self._send(StatusUpdatesOut(batch))

    def _schedule_retry(self) -> None:
        tick = max(0.05, self.updates.retry_s / 4)
        self._retry_handle = self._loop.call_later(tick, self._retry)

    def _retry(self) -> None:
        self._schedule_retry()
        if not self.connected:
            return  # all of them go at once on re-registration
        self._flush()
        due = self.updates.due(self._loop.time())
        if due:
            logger.debug("resending unacknowledged updates count=%d", len(due))
            self._send(StatusUpdatesOut(tuple(due)))

    def _send(self, item: Outgoing) -> None:
        if self._sender is not None:
            self._sender.send(item)


def _outcome(code: int, *, killed: bool) -> tuple[TaskState, str, str]:
    """The terminal state, reason and message of a task whose process ended with `code`."""
    if killed:
        return TaskState.KILLED, REASON_TASK_KILLED, f"killed; {_describe(code)}"
    if code == 0:
        return TaskState.FINISHED, REASON_COMMAND_EXITED, _describe(code)
    return TaskState.FAILED, REASON_COMMAND_EXITED, _describe(code)


def _describe(code: int) -> str:
    if code >= 0:
        return f"command exited with status {code}"
    try:
        name = signal.Signals(-code).name
    except ValueError:
        name = f"signal {-code}"
    return f"command terminated by {name}"


async def _wait_until(pred: Callable[[], bool], timeout_s: float) -> bool:
    """Poll `pred` until it holds or `timeout_s` passes (only used while stopping)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not pred():
        if asyncio.get_running_loop().time() >= deadline:
            return False
        await asyncio.sleep(0.01)
    return True
