"""Acceptance: 3 masters in ZooKeeper, 2 agents, a framework running 300 short tasks; the
leader is SIGKILLed mid-run and a standby takes over with nothing lost (issue #5)."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from mesoslite.scheduler_api import FrameworkInfo, SchedulerDriver, TaskState
from mesoslite.testing import assert_eventually_async
from mesoslite.testing.ha_cluster import HACluster

from .ha_support import LedgerFramework


async def test_sigkill_of_the_leader_mid_run_loses_no_task_and_no_update(
    zk_url: str, tmp_path: Path
) -> None:
    ha = HACluster(
        tmp_path / "ha", zk_url, masters=3, agents=2, session_timeout_s=2.0,
        agent_args=("--reconnect-backoff-max-s", "0.5"),
    )
    with ha:
        old = ha.wait_for_leader()
        fw = LedgerFramework(300, tmp_path / "ledger", sleep_s=0.3)
        info = FrameworkInfo(name="failover-300", failover_timeout_s=60)
        async with SchedulerDriver(
            fw, info, master=zk_url, reconnect_backoff_max_s=0.5
        ) as driver:
            await assert_eventually_async(lambda: len(fw.finished) >= 60, timeout_s=60)
            ha.kill_master(old, signal.SIGKILL)
            new = await asyncio.to_thread(ha.wait_for_leader, 30.0, other_than=old)
            assert new != old
            await asyncio.wait_for(fw.done.wait(), 120)
            fid = driver.framework_id
        # The framework re-subscribed with its id, to the new leader.
        assert len(set(fw.subscriptions)) == 1 and len(fw.subscriptions) >= 2, fw.subscriptions
        assert fw.masters[-1] == ha.addresses[new]
        # Both agents re-registered with the new leader.
        await asyncio.to_thread(ha.wait_for_agents, 2, 20.0)
        # Every logical task finished; every task id reached one terminal state only.
        assert fw.finished == set(range(300))
        several = {t: s for t, s in fw.terminal.items() if len(s) > 1}
        assert not several, several
        # No task ran twice: the ledger has each started task id once.
        counts = fw.ledger_counts()
        assert [t for t, n in counts.items() if n > 1] == []
        # No update lost: every task that ran has its FINISHED update at the framework.
        finished_ids = {t for t, s in fw.terminal.items() if TaskState.FINISHED in s}
        assert set(counts) == finished_ids
        assert fid == fw.subscriptions[0]
