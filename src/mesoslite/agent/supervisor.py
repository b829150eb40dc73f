"""`SupervisorClient`: the agent's end of its long-lived task supervisor (issue 15).

Design:
- One C process per agent work dir (`wrappers/supervisor.c`, compiled once into `WORK/bin`)
  is the parent of every task: it forks each (vfork), and in the child does what the old
  per-task wrapper's child did (new session, join the cgroups, output files, user switch,
  `execve`). So a task costs one process, not two, and the agent no `Popen` and no pidfd.
- It runs in its own session and outlives the agent. It listens on an abstract unix socket
  named after the work dir's real path and accepts only peers of its own uid
  (`SO_PEERCRED`); the agent in turn checks that the peer has its uid and is the pid the
  supervisor names in its hello. A name held by anybody else is refused, never used.
- Requests go in batches (one `send` for a chunk of launches); the answers (`S seq pid` or
  `F seq errno step`) are read back by `collect_launches`, which the agent calls after it
  sent the next chunk (`send_launches`), so the supervisor's vforks overlap its own work.
- It makes each task's sandbox (mode 0700, the task user's) right before opening its output
  files, so the agent pays no `mkdir` per task (issue 15); a failure is an `F` at the step
  "making the sandbox".
- Exits: the supervisor waits with `waitid(WNOWAIT)`, so the task is still a zombie when it
  SIGKILLs what is left of its process group (no pid or pgid can have been reused) and of
  its cgroups (what left the group: `cgroup.procs`, read in C, not by the agent), appends
  `tag code` to the exit log (`exit_log.py`), then reaps it and tells the agent `X pid code`
  (many per `send`). The line is on disk before the pid leaves its table.
- Kill: the agent asks (`K pid sig`); the supervisor signals the group only while the pid
  is in its table, i.e. not reaped, so a kill never reaches a reused pid.
- A restarted agent reconnects and asks for each recovered pid (`A pid`): one still in the
  table is watched again (its `X` comes later); one not in it has ended, and its code is in
  the exit log already. Both answers come in order on one stream, so no exit falls between.
- If the supervisor dies, the socket ends: `on_lost` is called, and the launcher watches its
  orphans through pidfds (their exit codes are lost) and starts a new one at the next launch.
- It exits by itself once no agent is connected and it has no child left.
"""

from __future__ import annotations

import asyncio
import errno as errno_mod
import hashlib
import logging
import os
import select
import socket
import struct
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

PIDFILE = "meta/supervisor.pid"
REPLY_TIMEOUT_S = 30.0
# What the child was doing when it failed (the `step` of an `F` answer).
STEPS = (
    "fork",
    "setting up output",
    "entering the sandbox",
    "switching user",
    "executing",
    "opening stdout/stderr",
    "making the sandbox",
)
# Version 2 makes each task's sandbox itself and ends what is left in its cgroups before its
# `X` line; a supervisor of version 1 (started by an older agent) leaves both to the agent.
VERSION_MAKES_SANDBOX = 2
# Version 3 answers `T`: which live task was launched with a tag (`find`).
VERSION_FINDS_BY_TAG = 3


class SupervisorGone(Exception):
    """Raised when the supervisor's socket ends or it does not answer in time."""


@dataclass(frozen=True, slots=True)
class LaunchRequest:
    """One task for the supervisor to start (see `wrappers/supervisor.c`)."""

    tag: str
    exit_log: str
    file: str
    cwd: str
    stdout: str
    stderr: str
    run_as: str  # "UID GID G1,G2" or ""
    cgroup_procs: Sequence[str]
    argv: Sequence[str]
    env: Sequence[bytes]  # b"K=V"


@dataclass(frozen=True, slots=True)
class LaunchRefused:
    """The supervisor could not start a task: `errno` at `step` (an index into `STEPS`)."""

    errno: int
    step: int

    @property
    def text(self) -> str:
        return os.strerror(self.errno)

    @property
    def not_found(self) -> bool:
        return self.errno == errno_mod.ENOENT and STEPS[self.step] == "executing"


def socket_name(work_dir: Path) -> bytes:
    digest = hashlib.sha1(str(work_dir.resolve()).encode()).hexdigest()[:20]
    return b"\0mesoslite-supervisor-" + digest.encode()


class SupervisorClient:
    """A connection to the work dir's supervisor (see the module docstring).

    Args:
        sock: a connected socket whose peer passed the checks of `connect`.
        pid: the supervisor's pid.
        on_exits: called on the loop with `[(pid, code), ...]` of tasks that ended.
        on_lost: called on the loop once, when the supervisor is gone.
        version: the protocol version it said in its hello (1 if it named none).
    """

    def __init__(
        self,
        sock: socket.socket,
        pid: int,
        on_exits: Callable[[list[tuple[int, int]]], None],
        on_lost: Callable[[], None],
        version: int = 1,
    ) -> None:
        self.pid = pid
        self.version = version
        self._sock = sock
        self._buf = b""
        self._seq = 0
        self._replies: dict[str, tuple[str, str]] = {}
        self._exits: list[tuple[int, int]] = []
        self._on_exits = on_exits
        self._on_lost = on_lost
        self.alive = True
        self.partial: list[int | LaunchRefused] = []
        self._loop = asyncio.get_running_loop()
        sock.setblocking(False)
        self._loop.add_reader(sock.fileno(), self._readable)

    # ------------------------------------------------------------------ requests

    def launch_many(self, requests: Sequence[LaunchRequest]) -> list[int | LaunchRefused]:
        """Start the tasks; for each its pid, or why it could not start.

        Raises:
            SupervisorGone: the supervisor died; `self.partial` holds the answers it had
                given for the first requests (the pids among them are processes).
        """
        return self.collect_launches(self.send_launches(requests))

    def send_launches(self, requests: Sequence[LaunchRequest]) -> list[str]:
        """Ask for the tasks to be started; returns the ticket `collect_launches` takes.

        Raises:
            SupervisorGone: the supervisor is gone (none of them was asked for).
        """
        frames = []
        seqs = []
        for r in requests:
            self._seq += 1
            seqs.append(str(self._seq))
            fields = [
                b"L",
                seqs[-1].encode(),
                r.tag.encode(),
                *[_fs(s) for s in (r.exit_log, r.file, r.cwd, r.stdout, r.stderr)],
                r.run_as.encode(),
            ]
            for seq in (r.cgroup_procs, r.argv):
                fields.append(b"%d" % len(seq))
                fields.extend([_fs(s) for s in seq])
            fields.append(b"%d" % len(r.env))
            fields.extend(r.env)
            frames.append(_frame(fields))
        self._send(b"".join(frames))
        return seqs

    def collect_launches(self, seqs: Sequence[str]) -> list[int | LaunchRefused]:
        """The answers to `send_launches`' ticket, in order; blocks until all are in (the
        loop may have read some of them meanwhile).

        Raises:
            SupervisorGone: as `launch_many`.
        """
        out: list[int | LaunchRefused] = []
        self.partial = out
        for seq in seqs:
            kind, rest = self._reply(seq)
            a, _, b = rest.partition(" ")
            if kind == "S":
                out.append(int(a))
            else:
                out.append(LaunchRefused(int(a), min(int(b), len(STEPS) - 1)))
        return out

    def kill(self, pid: int, sig: int) -> None:
        """Signal the task's group, if it has not been reaped."""
        try:
            self._send(_frame([b"K", b"%d" % pid, b"%d" % sig]))
        except SupervisorGone:
            pass

    def owns(self, pid: int) -> bool:
        """Whether `pid` is a task of the supervisor's that has not ended."""
        self._send(_frame([b"A", b"%d" % pid]))
        return self._reply(f"A{pid}")[1] == "1"

    def find(self, tag: str) -> int:
        """The pid of the supervisor's live task launched with `tag`, 0 if none: a restarted
        agent whose predecessor died between a launch and recording its pid takes the task
        back. An older supervisor does not know the question: 0."""
        if self.version < VERSION_FINDS_BY_TAG:
            return 0
        self._seq += 1
        self._send(_frame([b"T", b"%d" % self._seq, _fs(tag)]))
        return int(self._reply(f"T{self._seq}")[1])

    def close(self) -> None:
        """Let go (the supervisor keeps running while it has tasks)."""
        if self.alive:
            self.alive = False
            self._loop.remove_reader(self._sock.fileno())
        self._sock.close()

    # ------------------------------------------------------------------ the socket

    def _send(self, data: bytes) -> None:
        if not self.alive:
            raise SupervisorGone("the task supervisor is gone")
        view = memoryview(data)
        while view:
            try:
                n = self._sock.send(view)
            except BlockingIOError:
                select.select([], [self._sock], [], REPLY_TIMEOUT_S)
                continue
            except OSError:
                self._gone()
                raise SupervisorGone("the task supervisor is gone") from None
            view = view[n:]

    def _reply(self, key: str) -> tuple[str, str]:
        """Block until the answer for `key` comes (exits read meanwhile are kept)."""
        deadline = time.monotonic() + REPLY_TIMEOUT_S
        while key not in self._replies:
            if not self.alive:  # gone while the answer was awaited (its socket is closed)
                raise SupervisorGone("the task supervisor is gone")
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._sock], [], [], left)[0]:
                self._gone()
                raise SupervisorGone("the task supervisor did not answer")
            self._read()
            if not self.alive:
                raise SupervisorGone("the task supervisor is gone")
        return self._replies.pop(key)

    def _readable(self) -> None:
        self._read()
        self._deliver()

    def _read(self) -> None:
        try:
            data = self._sock.recv(1 << 16)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._gone()
            return
        lines = (self._buf + data).split(b"\n")
        self._buf = lines.pop()
        for line in lines:
            kind, _, rest = line.decode().partition(" ")
            if kind == "X":
                pid, _, code = rest.partition(" ")
                self._exits.append((int(pid), int(code)))
            elif kind == "A" or kind == "T":
                key, _, answer = rest.partition(" ")
                self._replies[kind + key] = (kind, answer)
            else:
                seq, _, tail = rest.partition(" ")
                self._replies[seq] = (kind, tail)
        if self._exits:
            self._loop.call_soon(self._deliver)

    def _deliver(self) -> None:
        if self._exits:
            exits, self._exits = self._exits, []
            self._on_exits(exits)

    def _gone(self) -> None:
        if self.alive:
            self.close()
            logger.error("the task supervisor is gone pid=%d", self.pid)
            self._loop.call_soon(self._deliver)
            self._loop.call_soon(self._on_lost)


def _fs(s: str) -> bytes:
    """`os.fsencode` without its per-call lookups (UTF-8 file system encoding, as on Linux)."""
    return s.encode("utf-8", "surrogateescape")


def _frame(fields: list[bytes]) -> bytes:
    payload = b"\0".join(fields) + b"\0"
    return struct.pack("<I", len(payload)) + payload


def connect(
    work_dir: Path,
    binary: str,
    on_exits: Callable[[list[tuple[int, int]]], None],
    on_lost: Callable[[], None],
) -> SupervisorClient:
    """Reach the work dir's supervisor, starting one if there is none.

    Raises:
        OSError: none could be reached or started (the name is held by a stranger).
    """
    name = socket_name(work_dir)
    found = _hello(name)
    if found is None:
        _start(work_dir, binary, name)
        found = _hello(name)
    if found is None:
        raise OSError(f"cannot reach the task supervisor {name[1:].decode()}")
    sock, pid, version = found
    _write_pidfile(work_dir, pid)
    return SupervisorClient(sock, pid, on_exits, on_lost, version)


def _hello(name: bytes) -> tuple[socket.socket, int, int] | None:
    """Connect and check the peer: our uid, and the pid it says it has; its version."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        sock.settimeout(5)
        sock.connect(name)
        cred = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        pid, uid, _ = struct.unpack("3i", cred)
        if uid != os.geteuid():
            raise OSError(f"the task supervisor socket is held by uid {uid}, not ours")
        sock.sendall(_frame([b"H"]))
        line = b""
        while not line.endswith(b"\n"):
            chunk = sock.recv(64)
            if not chunk:
                sock.close()  # it was exiting: start another
                return None
            line += chunk
        words = line.split()
        if words[:2] != [b"H", b"%d" % pid] or len(words) > 3 or not words[-1].isdigit():
            raise OSError(f"the task supervisor socket answers as a stranger: {line!r}")
        return sock, pid, int(words[2]) if len(words) == 3 else 1
    except (ConnectionRefusedError, FileNotFoundError, ConnectionResetError):
        sock.close()
        return None
    except OSError:
        sock.close()
        raise


def _start(work_dir: Path, binary: str, name: bytes) -> None:
    """Run the supervisor; it returns once listening (its child goes on in its own session)."""
    log = work_dir / "meta" / "supervisor.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as err:
        rc = subprocess.run(
            [binary, name[1:].decode()],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,
            timeout=30,
        ).returncode
    if rc not in (0, 3):  # 3: somebody listens already (raced us); `_hello` checks who
        raise OSError(f"the task supervisor did not start (exit {rc}; see {log})")
    logger.info("task supervisor started work_dir=%s", work_dir)


def _write_pidfile(work_dir: Path, pid: int) -> None:
    path = work_dir / PIDFILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(f"{pid}\n")
    tmp.replace(path)


def read_pidfile(work_dir: Path) -> int | None:
    """The pid of the last supervisor an agent in `work_dir` talked to (for operators, tests)."""
    try:
        return int((work_dir / PIDFILE).read_text())
    except (OSError, ValueError):
        return None
