"""Fixtures for running the CLI as a user does: a real cluster (`cluster`, with its logs in
failed tests' reports) and the installed `mesoslite` script."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mesoslite.testing.pytest_plugin import cluster, pytest_runtest_makereport

__all__ = ["cluster", "mesoslite", "pytest_runtest_makereport"]

# The console script of the venv running the tests, as a user would type it.
MESOSLITE = Path(sys.executable).parent / "mesoslite"


CliRunner = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def mesoslite() -> CliRunner:
    """`mesoslite(*args, master=None)`: run the CLI, return the completed process (text)."""

    def run(*args: str, master: str | None = None, timeout_s: float = 30.0
            ) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if k != "MESOSLITE_MASTER"}
        if master is not None:
            env["MESOSLITE_MASTER"] = master
        return subprocess.run(
            [str(MESOSLITE), *args], env=env, capture_output=True, text=True, timeout=timeout_s
        )

    return run


def stop_local(proc: subprocess.Popen[Any]) -> None:
    """End a `mesoslite local` that a test started, leaving none of its daemons behind.

    SIGINT first (it stops its daemons itself); if that does not end it, SIGKILL it and then
    every process it had started (they run in their own sessions, so killing the parent alone
    would leave them), each by its PID.
    """
    if proc.poll() is not None:
        return
    import psutil

    try:
        family = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        family = []
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        try:
            family = psutil.Process(proc.pid).children(recursive=True) or family
        except psutil.NoSuchProcess:
            pass
        proc.kill()
        proc.wait()
    for child in family:
        with contextlib.suppress(psutil.Error):
            child.kill()


def free_port_pair() -> int:
    """A port P with P+1 free too (the HTTP port by convention is the gRPC port + 1)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return int(port)
    raise AssertionError("no two free ports in a row")
