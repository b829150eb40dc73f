"""Health checks of running tasks: command, HTTP and TCP, each one run on the agent's loop.

Design:
- `run_health_check` runs one check, bounded by its `timeout_s`. When checks run (after
  `delay_s`, then `interval_s` after each result) and what a result means (grace period,
  consecutive failures, the kill) is decided by `AgentState` on the injected clock, with
  `HealthState` (`health_state.py`); the actor runs each check it asks for.
- A command check runs `/bin/sh -c` in the task's sandbox, in its own session, and its
  whole group is SIGKILLed when it times out. HTTP is a bare `GET` over asyncio streams
  (2xx and 3xx are healthy), TCP an accepted connection, both to 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
from pathlib import Path
from typing import Any

from mesoslite.agent.health_state import HealthState as HealthState  # re-exported
from mesoslite.agent.users import RunAsPolicy, TaskUser, UserRefused
from mesoslite.model import HealthCheckSpec

logger = logging.getLogger(__name__)


async def run_health_check(
    spec: HealthCheckSpec, sandbox: Path, users: RunAsPolicy | None = None, user: str = ""
) -> tuple[bool, str]:
    """Run one check of `spec`, bounded by its `timeout_s`; returns (healthy, detail).
    A command check runs as the task's `user`, resolved by `users` as the launch was."""
    try:
        run_as = users.resolve(user) if users is not None and spec.kind == "command" else None
    except UserRefused as e:
        return False, e.message
    try:
        return await asyncio.wait_for(_check(spec, sandbox, run_as), spec.timeout_s)
    except TimeoutError:
        return False, f"no answer within {spec.timeout_s:g}s"
    except OSError as e:
        return False, e.strerror or str(e)


async def _check(
    spec: HealthCheckSpec, sandbox: Path, run_as: TaskUser | None
) -> tuple[bool, str]:
    if spec.kind == "command":
        return await _command(spec, sandbox, run_as)
    if spec.kind == "http":
        return await _http(spec)
    return await _tcp(spec)


async def _command(
    spec: HealthCheckSpec, sandbox: Path, run_as: TaskUser | None
) -> tuple[bool, str]:
    argv, switch = _as_user(["/bin/sh", "-c", spec.command], run_as)
    proc = await asyncio.create_subprocess_exec(
        *argv,
        cwd=sandbox if sandbox.is_dir() else None,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        start_new_session=True,
        **switch,
    )
    try:
        code = await proc.wait()
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
    return code == 0, f"command exited with status {code}"


def _as_user(argv: list[str], run_as: TaskUser | None) -> tuple[list[str], dict[str, Any]]:
    """`argv` run as `run_as`: through util-linux's `setpriv` when there is one, else with
    Popen's own switch. Popen's switch makes CPython fork() instead of vfork(), and a fork of
    the agent (gRPC's threads and fork handlers in it) was seen to die with SIGSEGV."""
    if run_as is None:
        return argv, {}
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return argv, run_as.popen_kwargs()
    groups = ",".join(str(g) for g in run_as.groups)
    group_flag = f"--groups={groups}" if groups else "--clear-groups"
    ids = [f"--reuid={run_as.uid}", f"--regid={run_as.gid}", group_flag]
    return [setpriv, *ids, "--", *argv], {}


async def _http(spec: HealthCheckSpec) -> tuple[bool, str]:
    reader, writer = await asyncio.open_connection("127.0.0.1", spec.port)
    try:
        host = f"127.0.0.1:{spec.port}"
        writer.write(f"GET {spec.path} HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
        await writer.drain()
        line = (await reader.readline()).decode("latin-1").split()
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    if len(line) < 2 or not line[1].isdigit():
        return False, "not an HTTP answer"
    status = int(line[1])
    return 200 <= status < 400, f"HTTP {status}"


async def _tcp(spec: HealthCheckSpec) -> tuple[bool, str]:
    _, writer = await asyncio.open_connection("127.0.0.1", spec.port)
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True, "connected"
