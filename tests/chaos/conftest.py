"""Fixtures for the chaos suite: a ZooKeeper of each test's own (tests kill it), a factory of
`ChaosCluster`s with small ping and re-register timeouts, and a ledger of what tasks ran.
Daemon and ZooKeeper logs are added to the report of a failed test."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from mesoslite.testing.chaos import ChaosCluster, Ledger, task_processes
from mesoslite.testing.pytest_plugin import pytest_runtest_makereport, require_zookeeper
from mesoslite.testing.zookeeper import ZooKeeperCluster

__all__ = ["pytest_runtest_makereport"]

# For the agent-fault scenarios: an agent silent for 2 x 1 s is unreachable; a disconnected
# one has 3 s to come back. (Smaller than this, a loaded 2-core host trips it by itself.)
FAST_PING_ARGS = (
    "--agent-ping-interval-s", "0.5", "--agent-ping-timeout-s", "1",
    "--max-agent-ping-timeouts", "2", "--agent-reregister-timeout-s", "3",
)
FAST_AGENT_ARGS = ("--reconnect-backoff-max-s", "0.5", "--status-update-retry-s", "1")


@pytest.fixture
def zk(tmp_path: Path) -> Iterator[ZooKeeperCluster]:
    """A standalone ZooKeeper for this test alone (it may be SIGKILLed)."""
    require_zookeeper()
    with ZooKeeperCluster(tmp_path / "zk", size=1) as z:
        yield z


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    return Ledger(tmp_path / "ledger")


class Clusters:
    """Makes `ChaosCluster`s; stops them all at the end and checks no task process is left."""

    def __init__(self, root: Path, zk: ZooKeeperCluster) -> None:
        self.root = root
        self.zk = zk
        self.made: list[ChaosCluster] = []

    def __call__(self, *, masters: int = 3, agents: int = 2, **kw: Any) -> ChaosCluster:
        kw.setdefault("master_args", ("--offer-timeout-s", "5"))
        kw.setdefault("agent_args", FAST_AGENT_ARGS)
        ha = ChaosCluster(self.root / f"ha-{len(self.made)}", self.zk.chroot_url(),
                          masters=masters, agents=agents, session_timeout_s=2.0, **kw)
        self.made.append(ha)
        return ha

    def dump_logs(self, out: IO[str] | None = None, lines: int = 80) -> None:
        for ha in self.made:
            ha.dump_logs(out or sys.stderr, lines)


@pytest.fixture
def clusters(tmp_path: Path, zk: ZooKeeperCluster) -> Iterator[Clusters]:
    made = Clusters(tmp_path, zk)
    try:
        yield made
    finally:
        for ha in made.made:
            ha.stop()
    left = [p for ha in made.made for p in task_processes(ha.marker)]
    assert left == [], f"task processes left after the cluster stopped: {left}"
