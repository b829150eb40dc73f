"""`mesoslite local --ha`: ZooKeeper, 3 masters and agents; the CLI finds the leader through
zk://, follows a failover, and a killed leader is started again as a standby (#5)."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from pathlib import Path

import psutil

from mesoslite.testing.pytest_plugin import require_zookeeper
from tests.e2e.conftest import MESOSLITE, stop_local


def wait_for(out: Path, proc: subprocess.Popen[bytes], pattern: str, timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    while not re.search(pattern, out.read_text()):
        assert proc.poll() is None and time.monotonic() < deadline, out.read_text()
        time.sleep(0.05)
    return out.read_text()


def test_local_ha_runs_commands_through_zookeeper_and_survives_killing_the_leader(
    tmp_path: Path,
) -> None:
    require_zookeeper()
    out = tmp_path / "local.out"
    with out.open("w") as sink:
        proc = subprocess.Popen(
            [str(MESOSLITE), "local", "--ha", "--agents", "1", "--work-dir",
             str(tmp_path / "local")],
            stdout=sink, stderr=subprocess.STDOUT,
        )
    children: list[psutil.Process] = []
    try:
        text = wait_for(out, proc, "Ctrl-C stops", 90)
        url = re.search(r"export MESOSLITE_MASTER=(\S+)", text).group(1)  # type: ignore[union-attr]
        leader = int(re.search(r"master (\d) leads", text).group(1))  # type: ignore[union-attr]
        pids = {int(m.group(1)): int(m.group(2))
                for m in re.finditer(r"master (\d)\s+\S+\s+(\d+)", text)}
        children = psutil.Process(proc.pid).children(recursive=True)
        run = [str(MESOSLITE), "--master", url, "run", "--", "echo", "hello"]
        first = subprocess.run(run, capture_output=True, text=True, timeout=60)
        assert first.returncode == 0 and first.stdout.strip() == "hello", first.stderr
        psutil.Process(pids[leader]).kill()
        wait_for(out, proc, f"master {leader} was killed by SIGKILL; starting it again", 30)
        second = subprocess.run(run, capture_output=True, text=True, timeout=60)
        assert second.returncode == 0 and second.stdout.strip() == "hello", second.stderr
        listed = subprocess.run([str(MESOSLITE), "--master", url, "agent", "list", "--json"],
                                capture_output=True, text=True, timeout=30)
        assert listed.returncode == 0, listed.stderr
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
    finally:
        stop_local(proc)
    _, alive = psutil.wait_procs(children, timeout=10)
    assert not alive
