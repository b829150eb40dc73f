"""`AgentActor`: the shell around `AgentState`, the one owner of the agent's state on its loop.

Design:
- Every decision is `AgentState`'s (`state.py`): the actor turns what happens (a message
  from the master, a process exiting, a timer firing, a health check's answer) into a
  command on it and carries out the effects it returns, in order: spawning, adopting and
  signalling processes, checkpointing (`checkpoint.py`), sending to the master, running
  health checks, and timers. Everything runs on the agent's event loop; no locks, no thread
  touches the state (sandbox reads and GC run in worker threads, on files only).
- Every timer goes through the injected `Clock` (the system clock in the daemon, a
  `VirtualClock` in tests): kill grace periods, the update flush window and resends, health
  check intervals, the memory watch and sandbox GC.
- Launches are spawned `LAUNCH_CHUNK` per loop iteration (`launch_queue.py`), so that one
  huge `LaunchTasks` does not keep pings, acknowledgements and exits waiting; with the task
  supervisor one chunk is in flight, and a kill of one of its tasks, a framework's
  shutdown and `stop` first collect it.
- Recovery (`recover`, run by `start`): a restarted agent reads its checkpoints, and
  `AgentState` decides (`recovery.py`); processes still running are adopted. With
  `recover="cleanup"` it kills what it recovered, and its `stop` kills its tasks too (tasks
  never outlive it); with `"reconnect"` (the default) `stop` leaves them running for the
  next agent to adopt.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any

from mesoslite.agent import constants as k
from mesoslite.agent import effects as fx
from mesoslite.agent import gc
from mesoslite.agent.checkpoint_log import CheckpointLog
from mesoslite.agent.effects import Effect, TaskKey
from mesoslite.agent.exit_log import read_exit_status
from mesoslite.agent.health import run_health_check
from mesoslite.agent.isolation import WATCH_INTERVAL_S, detect_isolator, tree_rss_bytes
from mesoslite.agent.launch_queue import LaunchQueue
from mesoslite.agent.launcher import LaunchedTask, LaunchError, TaskLauncher
from mesoslite.agent.messages import FileChunkOut, MasterSender, Outgoing, StatusUpdatesOut
from mesoslite.agent.recovered import RecoveredTask
from mesoslite.agent.sandbox import read_sandbox_file
from mesoslite.agent.state import AgentState, AgentTask
from mesoslite.agent.status_updates import StatusUpdateManager
from mesoslite.agent.users import RunAsPolicy
from mesoslite.clock import Clock, SystemClock
from mesoslite.ids import AgentId, FrameworkId, TaskId
from mesoslite.model import AgentInfo, TaskSpec, TaskState
from mesoslite.resources import Resources

logger = logging.getLogger(__name__)

Cancel = Callable[[], None]


class AgentActor:
    """Carries out `AgentState`'s effects. See the module docstring."""

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
        clock: Clock | None = None,
        users: RunAsPolicy | None = None,
        task_launcher: str = "wrapper",
    ) -> None:
        self.work_dir = work_dir
        self.clock: Clock = clock or SystemClock()
        self.sandbox_gc_age_s = sandbox_gc_age_s
        # Records made in one loop iteration go to disk in one write (issue 15).
        self.store = CheckpointLog(work_dir, schedule=asyncio.get_running_loop().call_soon)
        self.isolator = detect_isolator(work_dir)
        self.state = AgentState(
            agent_id=AgentId(self._load_agent_id()),
            hostname=hostname,
            resources=resources,
            attributes={**attributes, "isolation": self.isolator.kind},
            kill_grace_period_s=kill_grace_period_s,
            status_update_retry_s=status_update_retry_s,
            recover=recover,
            reserved=reserved,
        )
        self._loop = asyncio.get_running_loop()
        self.launcher = TaskLauncher(work_dir, self._on_exit, users, task_launcher)
        self.launcher.agent_id = self.state.agent_id
        # The process of each task that has one, from spawn (or adoption) until it exits.
        self.processes: dict[TaskKey, LaunchedTask] = {}
        self._sender: MasterSender | None = None
        self.launches = LaunchQueue(self)
        self._timers: dict[fx.Timer, Cancel] = {}
        self._periodic: list[Cancel] = []
        self._checks: dict[TaskKey, asyncio.Task[None]] = {}
        self._background: set[asyncio.Task[None]] = set()
        self._handlers: dict[type, Callable[[Any], None]] = {
            fx.StartTimer: self._start_timer,
            fx.CancelTimer: self._cancel_timer,
            fx.StartProcess: lambda e: self.launches.add(e.key),
            fx.AdoptProcess: self._adopt,
            fx.SignalTask: self._signal,
            fx.RunHealthCheck: self._run_health_check,
            fx.StopHealthCheck: self._stop_health_check,
            fx.SendUpdates: self._send_updates,
            fx.CheckpointUpdate: lambda e: self.store.append_update(e.status),
            fx.CheckpointAck: lambda e: self.store.append_ack(e.key[0], e.key[1], e.update_uuid),
            fx.CheckpointKilling: lambda e: self.store.mark_killing(*e.key),
            fx.RemoveCheckpoint: lambda e: self.store.remove(*e.key),
            fx.SaveAgentId: self._save_agent_id,
        }

    # ------------------------------------------------------------------ the state's view

    @property
    def agent_id(self) -> AgentId:
        return self.state.agent_id

    @property
    def tasks(self) -> dict[TaskKey, AgentTask]:
        return self.state.tasks

    @property
    def updates(self) -> StatusUpdateManager:
        return self.state.updates

    @property
    def free(self) -> Resources:
        return self.state.free

    @property
    def total(self) -> Resources:
        return self.state.total

    @property
    def attributes(self) -> dict[str, str]:
        return self.state.attributes

    @property
    def connected(self) -> bool:
        return self.state.connected

    # ------------------------------------------------------------------ lifecycle

    def start(self, sender: MasterSender) -> None:
        """Recover what the last agent in this work dir left (see `recover`), then serve."""
        self._sender = sender
        self.recover()
        self._perform(self.state.start())
        if self.isolator.watches_memory:
            self._every(WATCH_INTERVAL_S, self._watch_memory)
        if self.sandbox_gc_age_s > 0:
            interval = min(k.SANDBOX_GC_MAX_INTERVAL_S, max(0.1, self.sandbox_gc_age_s / 4))
            self._every(interval, self._gc)

    def recover(self) -> int:
        """Take back the checkpointed tasks and updates; returns how many tasks were found."""
        found = self.store.recover()
        self._kill_unrecorded(found)
        self._perform(self.state.recover(found, self.clock.now()))
        if found:
            logger.info(
                "recovered from checkpoints tasks=%d running=%d pending_updates=%d mode=%s",
                len(found),
                len(self.processes),
                self.state.updates.pending_count,
                self.state.recover_mode,
            )
        return len(found)

    async def stop(self, flush_s: float = k.STOP_FLUSH_S) -> None:
        """Stop serving. With `recover="cleanup"`, first kill every task (SIGTERM, grace,
        SIGKILL) and wait for them; otherwise leave them running for the next agent. Then
        try to deliver pending updates for up to `flush_s` and let go of the launcher."""
        self.launches.finish()  # the chunk in flight gets its processes (killed, or left)
        effects, longest = self.state.begin_stop(self.clock.now())
        self.launches.clear()
        self._perform(effects)
        cleanup = self.state.recover_mode == "cleanup"
        if self.launcher.running and cleanup:
            logger.info("agent stopping: killing tasks=%d", len(self.launcher.running))
            await self._wait_until(lambda: not self.launcher.running, longest + k.STOP_KILL_SLACK_S)
        self._perform(self.state.flush(self.clock.now()))
        if self.state.connected and self.state.updates.pending_count:
            await self._wait_until(
                lambda: not self.state.updates.pending_count or not self.state.connected, flush_s
            )
        self._cancel_everything()
        if self.launcher.running:
            if cleanup:
                logger.error(
                    "tasks still running after SIGKILL pids=%s", sorted(self.launcher.running)
                )
            else:
                logger.info(
                    "leaving tasks running for the next agent to recover tasks=%d",
                    len(self.launcher.running),
                )
        self.launcher.close()
        self.store.close()
        # A task killed just now may not be reaped yet (its cgroup is busy): a moment, once.
        for _ in range(10):
            self.isolator.remove(())
            if not self.isolator.has_leftovers:
                break
            await asyncio.sleep(0.05)
        self.isolator.close()

    def _cancel_everything(self) -> None:
        for cancel in [*self._timers.values(), *self._periodic]:
            cancel()
        self._timers.clear()
        self._periodic.clear()
        self.launches.clear()
        for bg in [*self._background, *self._checks.values()]:
            bg.cancel()

    # ------------------------------------------------------------------ registration

    def registration(self) -> tuple[AgentInfo, list[tuple[FrameworkId, TaskSpec, TaskState]]]:
        """What to tell the master when (re-)registering: who we are and every task we hold."""
        return self.state.registration()

    def registered(self, agent_id: AgentId) -> None:
        """The master took us: keep the id it gave, and resend every pending update now."""
        self._perform(self.state.registered(agent_id, self.clock.now()))

    def disconnected(self) -> None:
        self.state.disconnected()

    def _load_agent_id(self) -> str:
        try:
            return (self.work_dir / k.AGENT_ID_FILE).read_text().strip()
        except FileNotFoundError:
            return ""

    def _save_agent_id(self, effect: fx.SaveAgentId) -> None:
        self.launcher.agent_id = effect.agent_id
        path = self.work_dir / k.AGENT_ID_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(effect.agent_id + "\n")
        tmp.replace(path)

    # ------------------------------------------------------------------ from the master

    def launch_tasks(self, framework_id: FrameworkId, specs: Sequence[TaskSpec]) -> None:
        """Accept tasks to run: check them now, start them over the next loop iterations."""
        self._perform(self.state.launch_tasks(framework_id, specs, self.clock.now()))

    def reject_task(self, framework_id: FrameworkId, task_id: TaskId, message: str) -> None:
        """A task the master sent that could not even be read: TASK_ERROR."""
        self._perform(self.state.reject_task(framework_id, task_id, message, self.clock.now()))

    def kill_task(self, framework_id: FrameworkId, task_id: TaskId, grace_s: float) -> None:
        self.launches.settle(lambda key: key == (framework_id, task_id))
        self._perform(self.state.kill_task(framework_id, task_id, grace_s, self.clock.now()))

    def shutdown_framework(self, framework_id: FrameworkId) -> None:
        """The framework is gone: kill all of its tasks."""
        self.launches.settle(lambda key: key[0] == framework_id)
        self._perform(self.state.shutdown_framework(framework_id, self.clock.now()))

    def acknowledge(self, acks: Sequence[tuple[FrameworkId, TaskId, bytes]]) -> None:
        self._perform(self.state.acknowledge(acks))

    def reconcile(self, framework_ids: Collection[FrameworkId]) -> None:
        """Resend now what these frameworks (all, if empty) have not acknowledged."""
        self._perform(self.state.reconcile(framework_ids, self.clock.now()))

    def read_file(
        self, request_id: int, framework_id: str, task_id: str, name: str, offset: int, length: int
    ) -> None:
        """Read part of a sandbox file off the loop, answer with a `FileChunkOut`."""
        self._spawn_background(
            self._read_file(request_id, framework_id, task_id, name, offset, length)
        )

    async def _read_file(
        self, request_id: int, framework_id: str, task_id: str, name: str, offset: int, length: int
    ) -> None:
        data, size, error = await asyncio.to_thread(
            read_sandbox_file, self.work_dir, framework_id, task_id, name, offset, length
        )
        self._send(FileChunkOut(request_id, data, size, error))

    # ------------------------------------------------------------------ effects

    def _perform(self, effects: list[Effect]) -> None:
        for effect in effects:
            self._handlers[type(effect)](effect)

    def _start_timer(self, effect: fx.StartTimer) -> None:
        timer = effect.timer
        cancel = self._timers.pop(timer, None)
        if cancel is not None:
            cancel()
        self._timers[timer] = self.clock.call_later(effect.delay_s, lambda: self._fire(timer))

    def _fire(self, timer: fx.Timer) -> None:
        self._timers.pop(timer, None)
        self._perform(self.state.timer_fired(timer, self.clock.now()))

    def _cancel_timer(self, effect: fx.CancelTimer) -> None:
        cancel = self._timers.pop(effect.timer, None)
        if cancel is not None:
            cancel()

    def _every(self, interval_s: float, action: Callable[[], None]) -> None:
        """Run `action` every `interval_s` on the clock until the actor stops."""

        def run() -> None:
            self._periodic.remove(cancel_ref[0])
            cancel_ref[0] = self.clock.call_later(interval_s, run)
            self._periodic.append(cancel_ref[0])
            action()

        cancel_ref = [self.clock.call_later(interval_s, run)]
        self._periodic.append(cancel_ref[0])

    def _send_updates(self, effect: fx.SendUpdates) -> None:
        self.store.flush()  # an update is on disk before it is sent
        self._send(StatusUpdatesOut(effect.statuses))

    def _signal(self, effect: fx.SignalTask) -> None:
        launched = self.processes.get(effect.key)
        if launched is not None:
            self.store.flush()  # the `killing` mark before the signal
            self.launcher.signal(launched, signal.SIGKILL if effect.force else signal.SIGTERM)

    def _send(self, item: Outgoing) -> None:
        if self._sender is not None:
            self._sender.send(item)

    def _spawn_background(self, coro: Any) -> None:
        bg = self._loop.create_task(coro)
        self._background.add(bg)
        bg.add_done_callback(self._background.discard)

    # ------------------------------------------------------------------ processes

    def launched(
        self,
        key: TaskKey,
        spec: TaskSpec,
        cgroups: tuple[str, ...],
        launched: LaunchedTask | LaunchError,
    ) -> None:
        """A launch's result (from `LaunchQueue`): the task runs with its process, or failed."""
        framework_id, _ = key
        if isinstance(launched, LaunchError):
            e = launched
            self.isolator.remove(cgroups)
            self._perform(
                self.state.launch_failed(key, e.state, e.reason, e.message, self.clock.now())
            )
            return
        self.processes[key] = launched
        self.store.save_task(
            spec, framework_id, launched.pid, launched.start_ticks, list(launched.cgroups)
        )
        self._perform(self.state.process_started(key, self.clock.now()))

    def _kill_unrecorded(self, found: Sequence[RecoveredTask]) -> None:
        """Launches written down without their pid (the last agent died with the chunk out)
        become TASK_LOST: a process the supervisor started for one anyway is killed first."""
        mode = self.launcher.supervisor
        for r in found:
            sink = self.store.exit_sink(r.framework_id, r.task_id) if r.spec is None else None
            if mode is not None and sink is not None and sink.tag:
                pid = mode.kill_unrecorded(sink.tag)
                if pid:
                    logger.warning(
                        "killed a task started after the last agent's record task_id=%s pid=%d",
                        r.task_id, pid,
                    )

    def _adopt(self, effect: fx.AdoptProcess) -> None:
        framework_id, task_id = effect.key
        exit_file = self.store.exit_sink(framework_id, task_id)
        launched = self.launcher.adopt(
            framework_id, task_id, effect.pid, effect.start_ticks, exit_file, effect.cgroups
        )
        if launched is not None:
            self.processes[effect.key] = launched
        code = None if launched is not None else read_exit_status(exit_file)
        now = self.clock.now()
        self._perform(self.state.adopted(effect.key, launched is not None, code, now))

    def _on_exit(self, launched: LaunchedTask, code: int) -> None:
        key = (launched.framework_id, launched.task_id)
        if self.processes.get(key) is not launched:
            self.isolator.remove(launched.cgroups)
            return
        del self.processes[key]
        memory_hit = self.isolator.memory_limit_hit(launched.cgroups)
        self.isolator.remove(launched.cgroups)
        # Adopted after a restart, and its wrapper was killed before it could say (or the
        # task supervisor died): the launcher says.
        lost = launched.lost
        self._perform(
            self.state.exited(key, code, self.clock.now(), memory_hit=memory_hit, status_lost=lost)
        )

    # ------------------------------------------------------------------ health, memory, gc

    def _run_health_check(self, effect: fx.RunHealthCheck) -> None:
        launched = self.processes.get(effect.key)
        if launched is None:
            return
        task = self.tasks.get(effect.key)
        user = task.spec.command.user if task is not None else ""
        check = self._loop.create_task(self._health_check(effect, launched.sandbox, user))
        self._checks[effect.key] = check

    async def _health_check(self, effect: fx.RunHealthCheck, sandbox: Path, user: str) -> None:
        # A command check runs as the task's user, like the task.
        ok, detail = await run_health_check(effect.spec, sandbox, self.launcher.users, user)
        self._checks.pop(effect.key, None)
        self._perform(self.state.health_result(effect.key, ok, detail, self.clock.now()))

    def _stop_health_check(self, effect: fx.StopHealthCheck) -> None:
        check = self._checks.pop(effect.key, None)
        if check is not None:
            check.cancel()

    def _watch_memory(self) -> None:
        """Without a memory cgroup: measure the tasks whose `mem` `AgentState` holds them to."""
        for key, _ in self.state.memory_watched():
            launched = self.processes.get(key)
            if launched is not None and not launched.exited:
                self._perform(self.state.memory_used(key, tree_rss_bytes(launched.pid)))

    def _gc(self) -> None:
        """Remove old sandboxes of tasks the agent no longer holds, off the loop."""
        self._spawn_background(self._collect(self.state.live_keys()))

    async def _collect(self, live: set[tuple[str, str]]) -> None:
        try:
            # Sandbox ages are file mtimes: compared with the wall clock, not the agent's.
            await asyncio.to_thread(
                gc.collect, self.work_dir, live, self.sandbox_gc_age_s, time.time()
            )
        except OSError as e:
            logger.warning("sandbox gc failed: %s", e)

    async def _wait_until(self, pred: Callable[[], bool], timeout_s: float) -> bool:
        """Poll `pred` until it holds or `timeout_s` passes on the clock (while stopping)."""
        if timeout_s <= 0 or pred():
            return pred()
        expired = False

        def expire() -> None:
            nonlocal expired
            expired = True

        cancel = self.clock.call_later(timeout_s, expire)
        try:
            while not pred():
                if expired:
                    return False
                await asyncio.sleep(0.01)
            return True
        finally:
            cancel()
