"""`mesoslite local &` from a shell script: background jobs start with SIGINT ignored."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import psutil

from tests.e2e.conftest import MESOSLITE, stop_local


def test_sigint_stops_mesoslite_local_even_when_started_with_sigint_ignored(
    tmp_path: Path,
) -> None:
    # Regression: `kill -INT` did nothing to `mesoslite local` started by `sh` with `&`.
    out = tmp_path / "local.out"
    with out.open("w") as sink:
        proc = subprocess.Popen(
            [
                str(MESOSLITE),
                "local",
                "--agents",
                "1",
                "--port",
                "0",
                "--work-dir",
                str(tmp_path / "local"),
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),  # noqa: PLW1509
        )
    try:
        deadline = time.monotonic() + 60
        while "Ctrl-C stops" not in out.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, out.read_text()
            time.sleep(0.05)
        children = psutil.Process(proc.pid).children(recursive=True)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        stop_local(proc)
    _, alive = psutil.wait_procs(children, timeout=5)
    assert not alive
