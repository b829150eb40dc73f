"""Health checks of running tasks: command, HTTP and TCP, each one run on the agent's loop.

Design:
- `HealthChecker` is one asyncio task per checked task: wait `delay_s`, then check every
  `interval_s`, each check bounded by `timeout_s`, and hand each result to the actor's
  callback. What a result means (grace period, consecutive failures, the kill) is decided
  in `HealthState`, which is pure and unit-tested.
- A command check runs `/bin/sh -c` in the task's sandbox, in its own session, and its
  whole group is SIGKILLed when it times out. HTTP is a bare `GET` over asyncio streams
  (2xx and 3xx are healthy), TCP an accepted connection, both to 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mesoslite.model import HealthCheckSpec

logger = logging.getLogger(__name__)

ResultCallback = Callable[[bool, str], None]


@dataclass(slots=True)
class HealthState:
    """The meaning of a task's check results so far (Mesos's rules).

    Failures within `grace_period_s` of the task's start do not count until one check has
    passed; `consecutive_failures` counted failures in a row mean the task must be killed.
    """

    spec: HealthCheckSpec
    started_at: float
    healthy: bool | None = None
    failures: int = 0
    ever_passed: bool = False

    def record(self, ok: bool, now: float) -> tuple[bool, bool]:
        """Apply one result; returns (health changed and should be reported, kill now)."""
        if ok:
            self.failures = 0
            self.ever_passed = True
            changed = self.healthy is not True
            self.healthy = True
            return changed, False
        if not self.ever_passed and now - self.started_at < self.spec.grace_period_s:
            return False, False
        self.failures += 1
        changed = self.healthy is not False
        self.healthy = False
        return changed, self.failures >= self.spec.consecutive_failures


class HealthChecker:
    """Runs one task's checks until `stop()`. See the module docstring."""

    def __init__(self, spec: HealthCheckSpec, sandbox: Path, on_result: ResultCallback) -> None:
        self.spec = spec
        self.sandbox = sandbox
        self.on_result = on_result
        self._task = asyncio.get_running_loop().create_task(self._run(), name="health-check")

    def stop(self) -> None:
        self._task.cancel()

    async def _run(self) -> None:
        await asyncio.sleep(self.spec.delay_s)
        while True:
            try:
                ok, detail = await asyncio.wait_for(self._check(), self.spec.timeout_s)
            except TimeoutError:
                ok, detail = False, f"no answer within {self.spec.timeout_s:g}s"
            except OSError as e:
                ok, detail = False, e.strerror or str(e)
            self.on_result(ok, detail)
            await asyncio.sleep(self.spec.interval_s)

    async def _check(self) -> tuple[bool, str]:
        if self.spec.kind == "command":
            return await self._command()
        if self.spec.kind == "http":
            return await self._http()
        return await self._tcp()

    async def _command(self) -> tuple[bool, str]:
        proc = await asyncio.create_subprocess_exec(
            "/bin/sh",
            "-c",
            self.spec.command,
            cwd=self.sandbox if self.sandbox.is_dir() else None,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            code = await proc.wait()
        finally:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
        return code == 0, f"command exited with status {code}"

    async def _http(self) -> tuple[bool, str]:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.spec.port)
        try:
            host = f"127.0.0.1:{self.spec.port}"
            writer.write(f"GET {self.spec.path} HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
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

    async def _tcp(self) -> tuple[bool, str]:
        _, writer = await asyncio.open_connection("127.0.0.1", self.spec.port)
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True, "connected"
