"""One daemon subprocess and its log file, for the local clusters; and two small helpers.

A daemon is signalled only through its own `Popen`, that is by the PID it was started with
and only while it has not been reaped, so a recycled PID is never hit. Each daemon leads its
own session: a Ctrl-C in the terminal reaches `mesoslite local` alone, which then stops
the daemons in order (agents first, so that they kill their tasks, then the master).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

# How long a daemon has to exit after SIGTERM before it gets SIGKILL.
DEFAULT_STOP_GRACE_S = 5.0


class Daemon:
    """A `mesoslite-*` process started with `argv`, writing stdout and stderr to `log_path`."""

    def __init__(
        self, name: str, argv: Sequence[str], log_path: Path, env: Mapping[str, str]
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = dict(env)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        if self.alive:
            raise RuntimeError(f"{self.name} is already running (pid {self.pid})")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            banner = f"---- {time.strftime('%H:%M:%S')} starting: {' '.join(self.argv)}\n"
            log.write(banner.encode())
            log.flush()
            self.proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,
            )

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return self.proc.poll() if self.proc is not None else None

    def send(self, sig: int) -> None:
        """Send `sig` if the process is still ours to signal (started and not reaped)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)

    def wait(self, timeout_s: float) -> bool:
        """True once the process has exited (and is reaped) within `timeout_s`."""
        if self.proc is None:
            return True
        try:
            self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return False
        return True

    def stop(self, sig: int = signal.SIGTERM, grace_s: float = DEFAULT_STOP_GRACE_S) -> None:
        """Send `sig`, then SIGKILL if it has not exited after `grace_s`; wait for it."""
        self.send(sig)
        if not self.wait(grace_s):
            self.send(signal.SIGKILL)
            self.wait(30.0)

    def describe_exit(self) -> str:
        """`exited with code 2` or `was killed by SIGKILL`."""
        code = self.returncode
        if code is None:
            return "is running"
        if code < 0:
            try:
                return f"was killed by {signal.Signals(-code).name}"
            except ValueError:
                return f"was killed by signal {-code}"
        return f"exited with code {code}"

    def log_tail(self, lines: int = 30) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - 64 * 1024))
                text = f.read().decode(errors="replace")
        except OSError as e:
            return f"(cannot read {self.log_path}: {e.strerror})"
        return "\n".join(text.splitlines()[-lines:])


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that nothing listens on right now (another process may take it later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def read_json(path: Path) -> dict[str, object]:
    """The JSON object in `path`, or {} if it is missing, partly written or not an object."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}
