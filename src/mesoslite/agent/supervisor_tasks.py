"""`SupervisorMode`: `TaskLauncher`'s tasks run as children of the agent's task supervisor.

See `supervisor.py` for the supervisor itself. What this adds on the launcher's side:
- Launch: the launcher prepares each task as before (argv, environment, user), the
  supervisor makes its sandbox and starts the chunk in one exchange; no `Popen`, no pidfd
  and no `mkdir` per task in the agent.
- Exits come from the supervisor (its `X` lines); the rest of the group, and what was left
  in the task's cgroups, were killed by it while the task was a zombie.
- A supervisor of protocol version 1 (left running by an older agent) does neither of the
  last two: the launcher then makes the sandbox and ends the cgroups' leftovers, as before.
- Adopt after an agent restart: a pid the supervisor still holds (and that started when
  the checkpoint says) is watched again through it; otherwise the caller falls back to
  the pidfd path (a task of an old wrapper, or one that ended: its code is in the log).
- The supervisor dies: its tasks are watched through pidfds like adopted ones, and each is
  reported with its exit status lost (unless its line reached the exit log), naming the
  supervisor's death; a new supervisor is started at once for the next launches.
"""

from __future__ import annotations

import errno
import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from mesoslite.agent.exit_log import ExitSink, read_exit_status
from mesoslite.agent.supervisor import (
    VERSION_MAKES_SANDBOX,
    LaunchRefused,
    LaunchRequest,
    SupervisorClient,
    SupervisorGone,
    connect,
)
from mesoslite.agent.task_binaries import find_supervisor
from mesoslite.ids import FrameworkId, TaskId

if TYPE_CHECKING:
    from mesoslite.agent.launcher import LaunchedTask, LaunchError, LaunchItem, TaskLauncher

logger = logging.getLogger(__name__)

# What `start_many` returns: called once, it gives the chunk's results.
Collect = Callable[[], "list[LaunchedTask | LaunchError]"]

SUPERVISOR_DIED = "the task supervisor died"
# The answer for a launch the supervisor died before answering.
UNANSWERED = LaunchRefused(0, 0)


class SupervisorMode:
    """The supervisor's side of a `TaskLauncher` (see the module docstring)."""

    def __init__(self, launcher: TaskLauncher) -> None:
        self.launcher = launcher
        self.binary = find_supervisor(launcher.work_dir)
        # Started (or reached) at the first launch or adoption, not before: an agent that
        # ends at once (a port in use) leaves nothing behind.
        self.client: SupervisorClient | None = None
        # The supervisor makes sandboxes and ends what is left in a task's cgroups itself
        # (version 2); tasks of an older one get both from the launcher.
        self.v2 = False
        # Launch chunks sent and not collected yet, and the exits read meanwhile of pids
        # not known yet (they may be of those chunks: the `X` can come before `collect`).
        self._outstanding = 0
        self._early: list[tuple[int, int]] = []
        # The agent's own environment, which every task inherits, encoded once: name ->
        # (value, b"NAME=value").
        self._env_bytes = {
            k: (v, f"{k}={v}".encode("utf-8", "surrogateescape"))
            for k, v in launcher._base_env.items()
        }

    def ensure(self) -> SupervisorClient | None:
        """The connected supervisor, started if need be; None: use the wrapper."""
        if self.client is None and self.binary is not None:
            try:
                self.client = connect(self.launcher.work_dir, self.binary, self._exits, self._lost)
                self.v2 = self.client.version >= VERSION_MAKES_SANDBOX
            except (OSError, subprocess.SubprocessError) as e:
                logger.warning("no task supervisor, tasks run under the wrapper: %s", e)
                self.binary = None  # not again: a stranger holds its name, or it cannot run
        return self.client

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None

    # ------------------------------------------------------------------ launching

    def launch_many(self, items: Sequence[LaunchItem]) -> list[LaunchedTask | LaunchError]:
        return self.start_many(items)()

    def start_many(self, items: Sequence[LaunchItem]) -> Collect:
        """Send the launches; returns what collects their results (call it once, soon: until
        then these tasks have no pid on the agent's side, and their exits wait)."""
        from mesoslite.agent.launcher import LaunchError

        client = self.client
        assert client is not None
        out: list[LaunchedTask | LaunchError | None] = []
        asked: list[tuple[int, LaunchItem, Path, str]] = []
        requests: list[LaunchRequest] = []
        for item in items:
            try:
                request, sandbox = self._request(*item)
            except LaunchError as e:
                out.append(e)
                continue
            asked.append((len(out), item, sandbox, request.argv[0]))
            requests.append(request)
            out.append(None)
        seqs: list[str] | None = None
        if requests:
            try:
                seqs = client.send_launches(requests)
            except SupervisorGone:
                seqs = None
            self._outstanding += 1

        def collect() -> list[LaunchedTask | LaunchError]:
            if requests:
                self._outstanding -= 1
                answers: list[int | LaunchRefused] = []
                try:
                    if seqs is not None:
                        answers = client.collect_launches(seqs)
                except SupervisorGone:
                    answers = [*client.partial]
                if len(answers) < len(requests):  # it died: those it did not answer for
                    _end_unconfirmed([(str(sb), it[3]) for _, it, sb, _ in asked[len(answers) :]])
                    answers += [UNANSWERED] * (len(requests) - len(answers))
                for (i, item, sandbox, argv0), answer in zip(asked, answers, strict=True):
                    out[i] = self._result(item, sandbox, argv0, answer, client)
                if self._early:  # exits read before their pids: now the agent knows them
                    early, self._early = self._early, []
                    self.launcher._loop.call_soon(self._exits, early)
            return [r for r in out if r is not None]

        return collect

    def _request(
        self,
        framework_id: FrameworkId,
        task: object,
        exit_file: ExitSink | None,
        cgroups: tuple[str, ...],
    ) -> tuple[LaunchRequest, Path]:
        # A supervisor of version 2 makes the sandbox (saves the agent a mkdir per task).
        sandbox, args, env, user, file = self.launcher.prepare(
            framework_id,
            task,  # type: ignore[arg-type]
            make=not self.v2,
        )
        sink = ("", "") if exit_file is None else (str(exit_file.path), exit_file.tag)
        cwd = str(sandbox)
        request = LaunchRequest(
            tag=sink[1],
            exit_log=sink[0],
            file=file,
            cwd=cwd,
            stdout=cwd + "/stdout",
            stderr=cwd + "/stderr",
            run_as="" if user is None else user.wrapper_env(),
            cgroup_procs=[c + "/cgroup.procs" for c in cgroups],
            argv=args,
            env=self._encode_env(env),
        )
        return request, sandbox

    def _encode_env(self, env: dict[str, str]) -> list[bytes]:
        """`env` as `NAME=value` bytes; the inherited pairs (the same value object) from the
        cache."""
        cache = self._env_bytes
        out = []
        for k, v in env.items():
            hit = cache.get(k)
            if hit is not None and hit[0] is v:
                out.append(hit[1])
            else:
                out.append(f"{k}={v}".encode("utf-8", "surrogateescape"))
        return out

    def _result(
        self,
        item: LaunchItem,
        sandbox: Path,
        argv0: str,
        answer: int | LaunchRefused,
        client: SupervisorClient,
    ) -> LaunchedTask | LaunchError:
        from mesoslite.agent.launcher import LaunchedTask, _failed

        framework_id, task, exit_file, cgroups = item
        if isinstance(answer, LaunchRefused):
            if answer.errno == 0:
                return _failed(f"cannot start {argv0!r}: {SUPERVISOR_DIED}")
            if answer.not_found:
                return _failed(f"executable not found: {argv0!r}")
            if answer.errno == errno.EACCES and answer.step == 4:
                return _failed(f"permission denied executing {argv0!r}")
            from mesoslite.agent.supervisor import STEPS

            if STEPS[answer.step] == "making the sandbox":  # as `TaskLauncher` says it
                return _failed(f"cannot create sandbox {sandbox}: {answer.text}")
            return _failed(f"cannot start {argv0!r}: {STEPS[answer.step]}: {answer.text}")
        pid = answer
        launched = LaunchedTask(
            framework_id,
            task.task_id,
            pid,
            sandbox,
            time.time(),
            None,
            -1,
            exit_file,
            any_start_ticks(pid) or 0,  # a task that ended at once is a zombie: still ours
            cgroups,
            supervised=True,
        )
        self.launcher.running[pid] = launched
        if client is not self.client or not client.alive:  # it died after starting this one
            self._orphan(launched)
        return launched

    # ------------------------------------------------------------------ watching

    def adopt(
        self,
        framework_id: FrameworkId,
        task_id: TaskId,
        pid: int,
        start_ticks: int,
        exit_file: ExitSink | None,
    ) -> LaunchedTask | None:
        """Watch a task of the supervisor's again after an agent restart; None if it is not
        one of its live tasks."""
        from mesoslite.agent.launcher import LaunchedTask

        client = self.ensure()
        if client is None or pid <= 0:
            return None
        try:
            if not client.owns(pid) or any_start_ticks(pid) != start_ticks:
                return None
        except SupervisorGone:
            return None
        sandbox = self.launcher.work_dir
        launched = LaunchedTask(
            framework_id,
            task_id,
            pid,
            sandbox,
            time.time(),
            None,
            -1,
            exit_file,
            start_ticks,
            supervised=True,
        )
        from mesoslite.agent.sandbox import sandbox_path

        launched.sandbox = sandbox_path(sandbox, framework_id, task_id) or sandbox
        self.launcher.running[pid] = launched
        return launched

    def kill_unrecorded(self, tag: str) -> int:
        """SIGKILL the live task launched with `tag` whose pid the last agent never wrote
        down (it died with the launch chunk out): the new agent reports it TASK_LOST, so it
        must not run on. Its pid, 0 if the supervisor has no such task."""
        client = self.ensure()
        if client is None:
            return 0
        try:
            pid = client.find(tag)
            if pid > 0:
                client.kill(pid, signal.SIGKILL)
        except SupervisorGone:
            return 0
        return pid

    def kill(self, launched: LaunchedTask, sig: int) -> None:
        if self.client is not None:
            self.client.kill(launched.pid, sig)

    def _exits(self, exits: list[tuple[int, int]]) -> None:
        from mesoslite.agent.launcher import kill_cgroup_members

        running = self.launcher.running
        for pid, code in exits:
            launched = running.get(pid)
            if launched is None and self._outstanding:
                self._early.append((pid, code))  # maybe of a chunk not collected yet
                continue
            if launched is None or not launched.supervised:
                continue  # not adopted (yet): its code is in the exit log
            del running[pid]
            if not self.v2:  # else it did, before its `X` line
                kill_cgroup_members(launched.cgroups)
            launched.exit_code = code
            self.launcher._on_exit(launched, code)

    def _lost(self) -> None:
        """The supervisor died: watch its orphans through pidfds, start another."""
        self.client = None
        orphans = [t for t in self.launcher.running.values() if t.supervised]
        logger.error("%s: watching its tasks=%d, starting another", SUPERVISOR_DIED, len(orphans))
        for launched in orphans:
            self._orphan(launched)
        self.ensure()

    def _orphan(self, launched: LaunchedTask) -> None:
        launched.supervised = False
        launched.lost = SUPERVISOR_DIED
        loop = self.launcher._loop
        try:
            pidfd = os.pidfd_open(launched.pid)
        except OSError:
            pidfd = -1
        if pidfd >= 0 and any_start_ticks(launched.pid) == launched.start_ticks:
            launched.pidfd = pidfd
            loop.add_reader(pidfd, self.launcher._reap, launched)
            return
        if pidfd >= 0:
            os.close(pidfd)
        loop.call_soon(self._gone, launched)

    def _gone(self, launched: LaunchedTask) -> None:
        """An orphan that had already ended: its code, if its line reached the log."""
        from mesoslite.agent.launcher import UNKNOWN_EXIT, kill_cgroup_members

        if self.launcher.running.pop(launched.pid, None) is None:
            return
        code = read_exit_status(launched.exit_file)
        if code is None:
            code = UNKNOWN_EXIT
        else:
            launched.lost = False
        kill_cgroup_members(launched.cgroups)
        launched.exit_code = code
        self.launcher._on_exit(launched, code)


def _end_unconfirmed(tasks: list[tuple[str, tuple[str, ...]]]) -> None:
    """The supervisor died before it said whether it started these (sandbox, cgroups): it
    may have (its answers were still in its buffer). They are reported as not started, so
    none may run: SIGKILL what is in their cgroups, and the group of any process that leads
    its own session (as every task does) with the task's `MESOSLITE_SANDBOX` (one per agent
    work dir and task) in its environment. A /proc scan, on this rare path only."""
    from mesoslite.agent.launcher import kill_cgroup_members

    marks = set()
    for sandbox, cgroups in tasks:
        kill_cgroup_members(cgroups)
        marks.add(b"MESOSLITE_SANDBOX=" + sandbox.encode("utf-8", "surrogateescape"))
    killed = 0
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        pid = int(name)
        try:
            if os.getsid(pid) != pid:
                continue
            with open(f"/proc/{pid}/environ", "rb") as f:
                if marks.isdisjoint(f.read().split(b"\0")):
                    continue
            os.killpg(pid, signal.SIGKILL)
            killed += 1
        except OSError:
            continue
    if killed:
        logger.warning("%s: ended tasks it had started unannounced=%d", SUPERVISOR_DIED, killed)


def any_start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks (`/proc/PID/stat` field 22), zombies too."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
        return int(data[data.rindex(b")") + 2 :].split()[19])
    except (OSError, ValueError, IndexError):
        return None
