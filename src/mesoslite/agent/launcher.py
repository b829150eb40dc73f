"""`TaskLauncher`: runs each task as a process in its own session, reaps it, kills it.

Design:
- `subprocess.Popen` with `start_new_session=True`: the task leads its own session and
  process group, so one `killpg` reaches everything it started (unless it makes its own
  session; cgroups are a later issue). Without `preexec_fn`, CPython spawns with vfork,
  which is what keeps a launch near the bare fork/exec cost. `asyncio`'s subprocess support
  is not used: in 3.11 its child watcher spends a thread per child.
- Reaping takes no thread and no SIGCHLD handler: `os.pidfd_open(pid)` becomes readable when
  the process exits; the loop watches it with `add_reader`, then `waitpid(WNOHANG)` collects
  the status. Between those two the task is a zombie, so its pid (and process group id)
  cannot be reused: that is when the rest of its group is SIGKILLed, so no process is left
  behind and no stranger is ever signalled.
- Kill: SIGTERM to the group, SIGKILL to the group after the grace period if the main
  process has not exited by then.
- Everything runs on the agent's loop; `launch` blocks only for the Popen and a few tiny
  file operations.
"""

from __future__ import annotations

import asyncio
import logging
import os
import pwd
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mesoslite.agent.sandbox import sandbox_path
from mesoslite.ids import FrameworkId, TaskId
from mesoslite.model import REASON_LAUNCH_FAILED, REASON_TASK_INVALID, TaskSpec, TaskState

logger = logging.getLogger(__name__)

SHELL = "/bin/sh"


class LaunchError(Exception):
    """Raised when a task cannot be started.

    `state` is `TaskState.ERROR` when the task is wrong for this agent (nothing was tried) and
    `TaskState.FAILED` when starting it failed (a missing executable, an unknown user).
    """

    def __init__(self, state: TaskState, reason: str, message: str) -> None:
        super().__init__(message)
        self.state = state
        self.reason = reason
        self.message = message


@dataclass(slots=True, eq=False)
class LaunchedTask:
    """One task process: its pid (also its process group id) and where its output goes."""

    framework_id: FrameworkId
    task_id: TaskId
    pid: int
    sandbox: Path
    started_at: float
    popen: subprocess.Popen[bytes]
    pidfd: int
    exit_code: int | None = None
    kill_timer: asyncio.TimerHandle | None = None

    @property
    def exited(self) -> bool:
        return self.exit_code is not None


ExitCallback = Callable[[LaunchedTask, int], None]


class TaskLauncher:
    """Starts, reaps and kills task processes on the running loop.

    Args:
        work_dir: the agent's work dir; sandboxes go under `sandboxes/`.
        on_exit: called on the loop with the task and its exit code (or -signal) once its
            process has exited and the rest of its process group was killed.
    """

    def __init__(self, work_dir: Path, on_exit: ExitCallback) -> None:
        self.work_dir = work_dir
        self.agent_id = ""
        self._on_exit = on_exit
        self._loop = asyncio.get_running_loop()
        self._base_env = dict(os.environ)
        self._euid = os.geteuid()
        try:
            self._user = pwd.getpwuid(self._euid).pw_name
        except KeyError:
            self._user = str(self._euid)
        self._devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        self._framework_dirs: set[str] = set()
        self.running: dict[int, LaunchedTask] = {}

    def close(self) -> None:
        """Stop watching processes (they are not killed) and release the launcher's fds."""
        for launched in list(self.running.values()):
            self._loop.remove_reader(launched.pidfd)
            os.close(launched.pidfd)
            if launched.kill_timer is not None:
                launched.kill_timer.cancel()
        self.running.clear()
        os.close(self._devnull)

    # ------------------------------------------------------------------ launching

    def launch(self, framework_id: FrameworkId, task: TaskSpec) -> LaunchedTask:
        """Start `task` in its sandbox.

        Raises:
            LaunchError: the task could not be started; nothing is left running.
        """
        sandbox = sandbox_path(self.work_dir, framework_id, task.task_id)
        if sandbox is None:
            raise LaunchError(
                TaskState.ERROR,
                REASON_TASK_INVALID,
                f"framework id {framework_id!r} or task id {task.task_id!r} "
                "cannot name a sandbox directory",
            )
        cmd = task.command
        if (cmd.shell and not cmd.value.strip()) or (
            not cmd.shell and not (cmd.argv and cmd.argv[0])
        ):
            raise LaunchError(TaskState.ERROR, REASON_TASK_INVALID, "command is empty")
        args = [SHELL, "-c", cmd.value] if cmd.shell else list(cmd.argv)
        env = self._base_env.copy()
        env.update(cmd.environment)
        env["MESOSLITE_TASK_ID"] = task.task_id
        env["MESOSLITE_FRAMEWORK_ID"] = framework_id
        env["MESOSLITE_AGENT_ID"] = self.agent_id
        env["MESOSLITE_SANDBOX"] = str(sandbox)
        identity = self._identity(cmd.user, env)
        self._make_sandbox(sandbox, framework_id, identity)
        out = err = -1
        try:
            out = os.open(
                sandbox / "stdout", os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644
            )
            err = os.open(
                sandbox / "stderr", os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644
            )
            popen = subprocess.Popen(
                args,
                stdin=self._devnull,
                stdout=out,
                stderr=err,
                cwd=sandbox,
                env=env,
                close_fds=True,
                start_new_session=True,
                **identity,
            )
        except FileNotFoundError as e:
            if e.filename is not None and str(e.filename) == str(sandbox):
                raise _failed(f"sandbox {sandbox} is missing") from None
            raise _failed(f"executable not found: {args[0]!r}") from None
        except PermissionError:
            raise _failed(f"permission denied executing {args[0]!r}") from None
        except OSError as e:
            raise _failed(f"cannot start {args[0]!r}: {e.strerror or e}") from None
        except subprocess.SubprocessError as e:
            raise _failed(f"cannot start {args[0]!r}: {e}") from None
        finally:
            for fd in (out, err):
                if fd >= 0:
                    os.close(fd)
        try:
            pidfd = os.pidfd_open(popen.pid)
        except OSError:
            # Cannot watch it: do not leave it running unwatched.
            _killpg(popen.pid, signal.SIGKILL)
            popen.wait()
            raise _failed("cannot watch the task process (pidfd_open failed)") from None
        launched = LaunchedTask(
            framework_id, task.task_id, popen.pid, sandbox, time.time(), popen, pidfd
        )
        self.running[popen.pid] = launched
        self._loop.add_reader(pidfd, self._reap, launched)
        return launched

    def _identity(self, user: str, env: dict[str, str]) -> dict[str, Any]:
        """Popen arguments to run as `user` (empty: as the agent); fills HOME/USER in `env`."""
        if not user or user == self._user:
            return {}
        if self._euid != 0:
            raise LaunchError(
                TaskState.ERROR,
                REASON_TASK_INVALID,
                f"running as another user is not supported yet: the task asks for {user!r}, "
                f"the agent runs as {self._user!r} and is not root",
            )
        try:
            pw = pwd.getpwnam(user)
        except KeyError:
            raise _failed(f"user {user!r} does not exist on this agent") from None
        env.update(HOME=pw.pw_dir, USER=pw.pw_name, LOGNAME=pw.pw_name)
        return {
            "user": pw.pw_uid,
            "group": pw.pw_gid,
            "extra_groups": os.getgrouplist(pw.pw_name, pw.pw_gid),
        }

    def _make_sandbox(self, sandbox: Path, framework_id: str, identity: dict[str, Any]) -> None:
        try:
            if framework_id not in self._framework_dirs:
                sandbox.parent.mkdir(parents=True, exist_ok=True)
                self._framework_dirs.add(framework_id)
            try:
                sandbox.mkdir()
            except FileExistsError:
                pass  # a task id used again: its new run overwrites stdout and stderr
            if identity:
                os.chown(sandbox, identity["user"], identity["group"])
        except OSError as e:
            raise _failed(f"cannot create sandbox {sandbox}: {e.strerror or e}") from None

    # ------------------------------------------------------------------ reaping and killing

    def _reap(self, launched: LaunchedTask) -> None:
        self._loop.remove_reader(launched.pidfd)
        # The main process is a zombie now: its pid cannot be reused, so the group is ours.
        _killpg(launched.pid, signal.SIGKILL)
        try:
            _, status = os.waitpid(launched.pid, os.WNOHANG)
            code = os.waitstatus_to_exitcode(status)
        except ChildProcessError:
            # Someone else reaped it (nothing in the agent does); the status is lost.
            logger.warning(
                "task process already reaped pid=%d task_id=%s", launched.pid, launched.task_id
            )
            code = -signal.SIGKILL
        os.close(launched.pidfd)
        # Tell Popen it is done, so that it never waits for a pid that may be reused.
        launched.popen.returncode = code
        launched.exit_code = code
        if launched.kill_timer is not None:
            launched.kill_timer.cancel()
            launched.kill_timer = None
        del self.running[launched.pid]
        self._on_exit(launched, code)

    def kill(self, launched: LaunchedTask, grace_s: float) -> None:
        """SIGTERM the task's group now and SIGKILL it after `grace_s` (at once if 0).

        A second kill while the first one's grace runs can only shorten it (an agent that
        stops must not wait for a long grace a framework asked for).
        """
        if launched.exited:
            return
        if grace_s <= 0:
            _killpg(launched.pid, signal.SIGKILL)
            return
        when = self._loop.time() + grace_s
        if launched.kill_timer is not None:
            if when >= launched.kill_timer.when():
                return
            launched.kill_timer.cancel()
        else:
            _killpg(launched.pid, signal.SIGTERM)
        launched.kill_timer = self._loop.call_at(when, self._escalate, launched)

    def _escalate(self, launched: LaunchedTask) -> None:
        launched.kill_timer = None
        if not launched.exited:
            logger.info(
                "task ignored SIGTERM, sending SIGKILL task_id=%s pid=%d",
                launched.task_id,
                launched.pid,
            )
            _killpg(launched.pid, signal.SIGKILL)


def _failed(message: str) -> LaunchError:
    return LaunchError(TaskState.FAILED, REASON_LAUNCH_FAILED, message)


def _killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass
