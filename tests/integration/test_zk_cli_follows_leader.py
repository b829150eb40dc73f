"""The `mesoslite` CLI with `--master zk://...` finds the new leader after a failover: run
right after the leader is SIGKILLed (ZooKeeper still names it until its session expires),
the command waits for the new leader and carries out its change there (issue 11, item 4;
issue 12, item 6: the CLI follows the leader the way the agent and the SDK do)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from mesoslite.cli._client import BlockingOperatorClient
from mesoslite.testing.ha_cluster import HACluster

SESSION_TIMEOUT_S = 2.0


def cli(*args: str, timeout_s: float = 60.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mesoslite.cli", *args],
        capture_output=True, text=True, timeout=timeout_s, stdin=subprocess.DEVNULL,
    )


def test_the_cli_reaches_the_new_leader_right_after_a_failover(
    zk_url: str, tmp_path: Path
) -> None:
    ha = HACluster(
        tmp_path / "ha", zk_url, masters=2, agents=0, session_timeout_s=SESSION_TIMEOUT_S
    )
    with ha:
        old = ha.wait_for_leader()
        before = cli("--master", zk_url, "role", "set-weight", "before", "2")
        assert before.returncode == 0, before.stderr
        ha.kill_master(old, signal.SIGKILL)
        killed = time.monotonic()
        done = cli("--master", zk_url, "role", "set-weight", "after-failover", "3")
        took = time.monotonic() - killed
        assert done.returncode == 0, (done.stdout, done.stderr)
        new = ha.wait_for_leader(10.0, other_than=old)
        with BlockingOperatorClient(ha.addresses[new], timeout_s=5.0) as c:
            weights = {r.role: r.weight for r in c.roles()}
        assert weights.get("after-failover") == 3.0, weights
        # Its old session must expire before ZooKeeper names the new leader; after that the
        # CLI needs about a second, not another lookup cycle.
        assert took < SESSION_TIMEOUT_S + 8.0, took
    print(f"CLI done {took:.2f}s after the leader was killed")
