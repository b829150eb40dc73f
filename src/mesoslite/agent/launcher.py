"""`TaskLauncher`: runs each task as a process in its own session, reaps it, kills it.

Design:
- `subprocess.Popen` with `start_new_session=True`: the task leads its own session and
  process group, so one `killpg` reaches everything it started (unless it makes its own
  session; then its cgroup still holds it). Without `preexec_fn`, CPython spawns with vfork,
  which is what keeps a launch near the bare fork/exec cost. `asyncio`'s subprocess support
  is not used: in 3.11 its child watcher spends a thread per child.
- Every task runs under a tiny wrapper: `wrappers/wrapper.c`, compiled once into the work
  dir when a C compiler is there (~0.3 ms a task), else `wrappers/wrapper.pl` (perl-base is in every
  Debian-like system; ~2 ms a task, where Python would take ~20). It joins the task's
  cgroups, forks the command, ignores SIGTERM/SIGINT/SIGHUP itself (the command does not),
  waits, appends the command's exit code (or -signal) under the launch's tag to the agent's
  exit log (`exit_log.py`), and ends the same way as the command. So the agent reaping the
  wrapper sees the command's own status, and an agent that was down when the task ended
  reads it from the log. The wrapper leads the process group: a group SIGKILL ends it too
  (no line then; the agent, if alive, still reaps -9). Without perl, commands run
  unwrapped (no recovered exit codes).
- A task run as another user (`users.py`): the wrapper stays root and switches only the
  command it forks (`setgroups`, `setgid`, `setuid` in the child, from `$MESOSLITE_RUN_AS`).
  So the task cannot forge or delete its exit code (the exit log is root's, in a
  root-only dir), cannot kill its wrapper (another uid) and cannot leave its cgroups, and
  the fast C wrapper in the root-only work dir is usable; a Popen that switches user would
  also lose vfork. Unwrapped, Popen switches the command itself. Its sandbox and output
  files are chowned to it (`sandbox.py`).
- Why the wrapper (issue 15): only a parent learns a process's exit status, and the agent
  may be dead when the task ends. The task supervisor (`supervisor.py`, the default) is the
  one parent of every task instead: `start_many` sends it a chunk in one message and returns
  what collects the pids later (`launch_queue.py`); the wrapper is the fallback.
- Tasks outlive the agent: after a restart `adopt` watches a surviving wrapper again through
  a pidfd (it is no longer our child: init reaps it) and reads its code from the exit log.
- Reaping takes no thread and no SIGCHLD handler: `os.pidfd_open(pid)` becomes readable when
  the process exits; the loop watches it with `add_reader`, then `waitpid(WNOHANG)` collects
  the status. Between those two the task is a zombie, so its pid (and process group id)
  cannot be reused: that is when the rest of its group is SIGKILLed, so no process is left
  behind and no stranger is ever signalled.
- Kill: `signal` sends SIGTERM or SIGKILL to the group; when (the grace period) is
  decided by `AgentState` on the injected clock.
- Everything runs on the agent's loop; `launch` blocks only for the Popen and a few tiny
  file operations.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from mesoslite.agent.exit_log import ExitSink, read_exit_status
from mesoslite.agent.sandbox import give_to, make_sandbox, sandbox_path
from mesoslite.agent.task_binaries import find_wrapper
from mesoslite.agent.users import RUN_AS_ENV, RunAsPolicy, TaskUser, UserRefused
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
    # None for a task adopted after an agent restart (not our child any more).
    popen: subprocess.Popen[bytes] | None
    pidfd: int
    exit_file: ExitSink | None = None
    start_ticks: int = 0
    cgroups: tuple[str, ...] = ()
    exit_code: int | None = None
    # A child of the task supervisor (`supervisor.py`): it reports the exit, no pidfd.
    supervised: bool = False
    # Its exit status is lost: True, or why (`exited`'s `status_lost`).
    lost: bool | str = False

    @property
    def exited(self) -> bool:
        return self.exit_code is not None


ExitCallback = Callable[[LaunchedTask, int], None]
# What `launch_many` takes per task: `launch`'s arguments.
LaunchItem = tuple[FrameworkId, TaskSpec, "ExitSink | None", tuple[str, ...]]
Results = list["LaunchedTask | LaunchError"]


class TaskLauncher:
    """Starts, reaps and kills task processes on the running loop.

    Args:
        work_dir: the agent's work dir; sandboxes go under `sandboxes/`.
        on_exit: called on the loop with the task and its exit code (or -signal) once its
            process has exited and the rest of its process group was killed.
        users: which user each task runs as (see `users.py`).
        kind: "supervisor" (one process per agent is every task's parent,
            `supervisor_tasks.py`) or "wrapper" (a wrapper process per task); the wrapper is
            the fallback when the supervisor cannot be built or started.
    """

    def __init__(
        self,
        work_dir: Path,
        on_exit: ExitCallback,
        users: RunAsPolicy | None = None,
        kind: str = "wrapper",
    ) -> None:
        self.work_dir = work_dir
        self.agent_id = ""
        self.users = users or RunAsPolicy()
        self._on_exit = on_exit
        self._loop = asyncio.get_running_loop()
        self._base_env = dict(os.environ)
        self._devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        self._framework_dirs: set[str] = set()
        self.running: dict[int, LaunchedTask] = {}
        self.supervisor = SupervisorMode(self) if kind == "supervisor" else None
        # The wrapper is built when first needed: with a supervisor binary at hand (the
        # default) perhaps never, which spares an agent's first start a compile.
        self._wrapper: list[str] | None = None
        self._wrapper_found = False
        if self.supervisor is None or self.supervisor.binary is None:
            self._find_wrapper()  # now, so that its warnings come at the start

    @property
    def wrapper(self) -> list[str] | None:
        """The command prefix that runs the wrapper; None: tasks run unwrapped."""
        return self._wrapper if self._wrapper_found else self._find_wrapper()

    @wrapper.setter
    def wrapper(self, value: list[str] | None) -> None:
        self._wrapper, self._wrapper_found = value, True

    def _find_wrapper(self) -> list[str] | None:
        self.wrapper = find_wrapper(self.work_dir)
        return self._wrapper

    def close(self) -> None:
        """Stop watching processes (they are not killed) and release the launcher's fds."""
        if self.supervisor is not None:
            self.supervisor.close()
        for launched in list(self.running.values()):
            if launched.pidfd >= 0:
                self._loop.remove_reader(launched.pidfd)
                os.close(launched.pidfd)
        self.running.clear()
        os.close(self._devnull)

    # ------------------------------------------------------------------ launching

    def launch(
        self,
        framework_id: FrameworkId,
        task: TaskSpec,
        exit_file: ExitSink | None = None,
        cgroups: tuple[str, ...] = (),
    ) -> LaunchedTask:
        """Start `task` in its sandbox, under the wrapper that writes its exit code to
        `exit_file` and joins `cgroups` (given as their `cgroup.procs`; see isolation.py).

        Raises:
            LaunchError: the task could not be started; nothing is left running.
        """
        if self.supervisor is not None and self.supervisor.ensure() is not None:
            [done] = self.supervisor.launch_many([(framework_id, task, exit_file, cgroups)])
            if isinstance(done, LaunchError):
                raise done
            return done
        sandbox, args, env, user, _ = self.prepare(framework_id, task)
        if self.wrapper is not None:
            procs = " ".join(os.path.join(c, "cgroup.procs") for c in cgroups)
            sink = ("", "") if exit_file is None else (str(exit_file.path), exit_file.tag)
            args = [*self.wrapper, *sink, procs, *args]
            if user is not None:
                env[RUN_AS_ENV] = user.wrapper_env()  # the wrapper switches the command
        popen = self._popen(args, sandbox, env, user)
        return self._watch(framework_id, task, sandbox, popen, exit_file, cgroups)

    def launch_many(self, items: Sequence[LaunchItem]) -> Results:
        """`launch` for each of `items`: its `LaunchedTask`, or the `LaunchError` saying why not."""
        done = self.start_many(items)
        return done() if callable(done) else done

    def start_many(self, items: Sequence[LaunchItem]) -> Results | Callable[[], Results]:
        """`launch_many` in two halves with the supervisor: the chunk is sent now, the function
        returned collects the results (the caller works meanwhile); else the results."""
        if self.supervisor is not None and self.supervisor.ensure() is not None:
            return self.supervisor.start_many(items)
        out: Results = []
        for item in items:
            try:
                out.append(self.launch(*item))
            except LaunchError as e:
                out.append(e)
        return out

    def prepare(
        self, framework_id: FrameworkId, task: TaskSpec, *, make: bool = True
    ) -> tuple[Path, list[str], dict[str, str], TaskUser | None, str]:
        """The task's sandbox (made if `make`), argv, env, user, file to run, or a LaunchError."""
        sandbox = sandbox_path(self.work_dir, framework_id, task.task_id)
        if sandbox is None:
            raise LaunchError(
                TaskState.ERROR,
                REASON_TASK_INVALID,
                f"framework id {framework_id!r} or task id {task.task_id!r} "
                "cannot name a sandbox directory",
            )
        args, env, file = self._command(framework_id, task, sandbox)
        user = self._user_of(task.command.user, env)
        if make:
            self._make_sandbox(sandbox, framework_id, user)
        return sandbox, args, env, user, file

    def _watch(
        self,
        framework_id: FrameworkId,
        task: TaskSpec,
        sandbox: Path,
        popen: subprocess.Popen[bytes],
        exit_file: ExitSink | None,
        cgroups: tuple[str, ...],
    ) -> LaunchedTask:
        try:
            pidfd = os.pidfd_open(popen.pid)
        except OSError:
            # Cannot watch it: do not leave it running unwatched.
            _killpg(popen.pid, signal.SIGKILL)
            popen.wait()
            raise _failed("cannot watch the task process (pidfd_open failed)") from None
        launched = LaunchedTask(
            framework_id,
            task.task_id,
            popen.pid,
            sandbox,
            time.time(),
            popen,
            pidfd,
            exit_file,
            process_start_ticks(popen.pid) or 0,
            cgroups,
        )
        self.running[popen.pid] = launched
        self._loop.add_reader(pidfd, self._reap, launched)
        return launched

    def _command(
        self, framework_id: FrameworkId, task: TaskSpec, sandbox: Path
    ) -> tuple[list[str], dict[str, str], str]:
        """The task's argv (unwrapped), environment and file to execute; a `LaunchError` if
        it cannot run."""
        cmd = task.command
        if (cmd.shell and not cmd.value.strip()) or (
            not cmd.shell and not (cmd.argv and cmd.argv[0])
        ):
            raise LaunchError(TaskState.ERROR, REASON_TASK_INVALID, "command is empty")
        args = [SHELL, "-c", cmd.value] if cmd.shell else list(cmd.argv)
        env = self._base_env.copy()
        env.update(cmd.environment)
        file = SHELL if cmd.shell else _check_executable(args[0], env.get("PATH", os.defpath))
        env["MESOSLITE_TASK_ID"] = task.task_id
        env["MESOSLITE_FRAMEWORK_ID"] = framework_id
        env["MESOSLITE_AGENT_ID"] = self.agent_id
        env["MESOSLITE_SANDBOX"] = str(sandbox)
        return args, env, file

    def _popen(
        self, args: list[str], sandbox: Path, env: dict[str, str], user: TaskUser | None
    ) -> subprocess.Popen[bytes]:
        """Start the process in its own session, its output into the sandbox."""
        out = err = -1
        # NOFOLLOW: the sandbox may be the task user's, who could plant a symlink in it.
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW
        # Unwrapped, Popen switches the command itself (the wrapper does it otherwise).
        switch = user.popen_kwargs() if user is not None and self.wrapper is None else {}
        try:
            out = os.open(sandbox / "stdout", flags, 0o644)
            err = os.open(sandbox / "stderr", flags, 0o644)
            give_to(user, out, err)
            return subprocess.Popen(
                args,
                stdin=self._devnull,
                stdout=out,
                stderr=err,
                cwd=sandbox,
                env=env,
                close_fds=True,
                start_new_session=True,
                **switch,
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

    def adopt(
        self,
        framework_id: FrameworkId,
        task_id: TaskId,
        pid: int,
        start_ticks: int,
        exit_file: ExitSink | None,
        cgroups: tuple[str, ...] = (),
    ) -> LaunchedTask | None:
        """Watch a task process that survived an agent restart; None if it is gone (or its
        pid now names another process)."""
        if self.supervisor is not None:
            found = self.supervisor.adopt(framework_id, task_id, pid, start_ticks, exit_file)
            if found is not None:
                found.cgroups = cgroups
                return found
        if pid <= 0 or process_start_ticks(pid) != start_ticks:
            return None
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:
            return None
        if process_start_ticks(pid) != start_ticks:  # reused between the check and the open
            os.close(pidfd)
            return None
        sandbox = sandbox_path(self.work_dir, framework_id, task_id) or self.work_dir
        launched = LaunchedTask(
            framework_id,
            task_id,
            pid,
            sandbox,
            time.time(),
            None,
            pidfd,
            exit_file,
            start_ticks,
            cgroups,
        )
        self.running[pid] = launched
        self._loop.add_reader(pidfd, self._reap, launched)
        return launched

    def _user_of(self, name: str, env: dict[str, str]) -> TaskUser | None:
        """The user to switch the task to (None: it runs as the agent); sets HOME, USER and
        LOGNAME in `env` for it. Raises a `LaunchError` (TASK_FAILED) naming the user."""
        env.pop(RUN_AS_ENV, None)  # only the launcher sets it, never a task's environment
        try:
            user = self.users.resolve(name)
        except UserRefused as e:
            raise _failed(e.message) from None
        if user is not None:
            env.update(HOME=user.home, USER=user.name, LOGNAME=user.name)
        return user

    def _make_sandbox(self, sandbox: Path, framework_id: str, user: TaskUser | None) -> None:
        try:
            make_sandbox(sandbox, user, parent_known=framework_id in self._framework_dirs)
            self._framework_dirs.add(framework_id)
        except OSError as e:
            raise _failed(f"cannot create sandbox {sandbox}: {e.strerror or e}") from None

    # ------------------------------------------------------------------ reaping and killing

    def _reap(self, launched: LaunchedTask) -> None:
        self._loop.remove_reader(launched.pidfd)
        code: int | None
        if launched.popen is not None:
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
            # Tell Popen it is done, so that it never waits for a pid that may be reused.
            launched.popen.returncode = code
        else:
            # Adopted: init reaps it, so its pid may be reused any moment; never signal the
            # group now. What is left of it is ended through its cgroup, if it has one.
            code = read_exit_status(launched.exit_file)
            if code is None:
                code = UNKNOWN_EXIT
                launched.lost = launched.lost or True
        kill_cgroup_members(launched.cgroups)
        os.close(launched.pidfd)
        launched.exit_code = code
        del self.running[launched.pid]
        self._on_exit(launched, code)

    def signal(self, launched: LaunchedTask, sig: int) -> None:
        """Send `sig` to the task's process group, unless its process has exited."""
        if launched.exited:
            return
        if launched.supervised and self.supervisor is not None:
            self.supervisor.kill(launched, sig)
            return
        if launched.popen is None and process_start_ticks(launched.pid) != launched.start_ticks:
            return  # an adopted task that is gone: its pid may belong to someone else now
        _killpg(launched.pid, sig)


# The exit code reported for an adopted task whose wrapper left no exit status (it was
# SIGKILLed with its group, e.g. by an earlier agent's kill or by hand).
UNKNOWN_EXIT = -signal.SIGKILL


def process_start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (`/proc/PID/stat` field 22);
    None if there is no such process or it is a zombie (it has ended)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    try:
        # The command name (field 2) may hold spaces and parentheses: split after its last ")".
        fields = data[data.rindex(b")") + 2 :].split()
        return None if fields[0] in (b"Z", b"X") else int(fields[19])
    except (ValueError, IndexError):
        return None


def kill_cgroup_members(cgroups: tuple[str, ...]) -> None:
    """SIGKILL every process left in these cgroups (a task's leftovers)."""
    for cg in cgroups:
        try:
            with open(os.path.join(cg, "cgroup.procs")) as f:
                pids = [int(x) for x in f.read().split()]
        except (OSError, ValueError):
            continue
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def _check_executable(name: str, path: str) -> str:
    """Raise the `LaunchError` Popen would have raised, before the wrapper hides it; else
    the file to execute."""
    if "/" in name:
        if not os.path.exists(name):
            raise _failed(f"executable not found: {name!r}")
        if not os.access(name, os.X_OK) or os.path.isdir(name):
            raise _failed(f"permission denied executing {name!r}")
        return name
    found = shutil.which(name, path=path)
    if found is None:
        raise _failed(f"executable not found: {name!r}")
    return found


def _failed(message: str) -> LaunchError:
    return LaunchError(TaskState.FAILED, REASON_LAUNCH_FAILED, message)


def _killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


# At the end: `supervisor_tasks` imports this module's names.
from mesoslite.agent.supervisor_tasks import SupervisorMode  # noqa: E402
