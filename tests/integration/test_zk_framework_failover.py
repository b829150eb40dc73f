"""On an HA cluster: a framework process killed and restarted with its id keeps its tasks
within its failover timeout, even across a master failover; past it, its tasks are killed.
And one member of a 3-server ZooKeeper ensemble killed: the cluster keeps working (#5)."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from mesoslite.cli._client import BlockingOperatorClient
from mesoslite.errors import NotFoundError
from mesoslite.scheduler_api import (
    FrameworkId,
    FrameworkInfo,
    SchedulerDriver,
    TaskId,
    TaskState,
)
from mesoslite.testing import assert_eventually, assert_eventually_async
from mesoslite.testing.ha_cluster import HACluster
from mesoslite.testing.zookeeper import ZooKeeperCluster

from .frameworks import UpdateRecorder
from .ha_support import LedgerFramework

HERE = Path(__file__).resolve().parent
AGENT_ARGS = ("--reconnect-backoff-max-s", "0.5")


def start_sleeper(master: str, failover_timeout_s: float) -> tuple[subprocess.Popen[str], str]:
    """The framework as a process of its own; returns it and its framework id once the
    task runs."""
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "ha_support.py"), master, str(failover_timeout_s)],
        stdout=subprocess.PIPE, text=True, cwd=HERE,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        fid, state = line.split()
        if state == "TASK_RUNNING":
            return proc, fid
    proc.kill()
    raise AssertionError(f"the framework exited ({proc.wait()}) before its task ran")


def sleeper_state(master: str) -> str:
    with BlockingOperatorClient(master) as c:
        tasks = [t for t in c.tasks(include_completed=True) if t.id == "sleeper"]
    return tasks[-1].state if tasks else ""


async def test_a_restarted_framework_keeps_its_tasks_across_a_master_failover(
    zk_url: str, tmp_path: Path
) -> None:
    with HACluster(tmp_path / "ha", zk_url, masters=3, agents=1, agent_args=AGENT_ARGS) as ha:
        proc, fid = await asyncio.to_thread(start_sleeper, zk_url, 60.0)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        old = ha.wait_for_leader()
        ha.kill_master(old, signal.SIGKILL)
        await asyncio.to_thread(ha.wait_for_leader, 20.0, other_than=old)
        rec = UpdateRecorder()
        info = FrameworkInfo(id=FrameworkId(fid), name="sleeper", failover_timeout_s=60)
        async with SchedulerDriver(rec, info, master=zk_url, reconnect_backoff_max_s=0.5) as d:
            await d.wait_subscribed(30)
            assert d.framework_id == fid

            async def running() -> bool:
                await d.reconcile([(TaskId("sleeper"), "")])
                await asyncio.sleep(0.2)
                return any(u.state == TaskState.RUNNING for u in rec.updates)

            await assert_eventually_async(running, timeout_s=30)
            await d.teardown()
        await assert_eventually_async(
            lambda: sleeper_state(zk_url) == "TASK_KILLED", timeout_s=20
        )


async def test_a_framework_gone_past_its_failover_timeout_has_its_tasks_killed(
    zk_url: str, tmp_path: Path
) -> None:
    with HACluster(tmp_path / "ha", zk_url, masters=3, agents=1, agent_args=AGENT_ARGS):
        proc, fid = await asyncio.to_thread(start_sleeper, zk_url, 2.0)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        await asyncio.to_thread(
            assert_eventually, lambda: sleeper_state(zk_url) == "TASK_KILLED", timeout_s=30
        )
        info = FrameworkInfo(id=FrameworkId(fid), name="sleeper", failover_timeout_s=2)
        driver = SchedulerDriver(UpdateRecorder(), info, master=zk_url)
        await driver.start()
        with pytest.raises(NotFoundError):
            await asyncio.wait_for(driver.join(), 30)
        await driver.stop()


async def test_one_member_of_a_zookeeper_ensemble_killed_the_cluster_keeps_working(
    zk_ensemble: ZooKeeperCluster, tmp_path: Path
) -> None:
    url = zk_ensemble.chroot_url()
    with HACluster(tmp_path / "ha", url, masters=3, agents=2, session_timeout_s=5.0,
                   agent_args=AGENT_ARGS) as ha:
        fw = LedgerFramework(200, tmp_path / "ledger", sleep_s=0.3)
        info = FrameworkInfo(name="ensemble", failover_timeout_s=60)
        async with SchedulerDriver(fw, info, master=url, reconnect_backoff_max_s=0.5):
            await assert_eventually_async(lambda: len(fw.finished) >= 40, timeout_s=60)
            zk_leader = next(i for i in range(3) if zk_ensemble.mode(i) == "leader")
            zk_ensemble.kill(zk_leader)
            try:
                await asyncio.wait_for(fw.done.wait(), 60)
            except TimeoutError:
                raise AssertionError(fw.describe()) from None
        assert fw.finished == set(range(200))
        assert [t for t, n in fw.ledger_counts().items() if n > 1] == []
        assert ha.wait_for_leader(20.0) is not None
        await asyncio.to_thread(ha.wait_for_agents, 2, 20.0)
