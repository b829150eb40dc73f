"""After a master failover, an agent that does not re-register within
`agent_reregister_timeout_s` is unreachable and its tasks TASK_UNREACHABLE (#5)."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from mesoslite.scheduler_api import FrameworkInfo, SchedulerDriver, TaskId, TaskState
from mesoslite.testing import assert_eventually_async
from mesoslite.testing.ha_cluster import HACluster

from .frameworks import UpdateRecorder as Recorder
from .ha_support import OneSleeper


class SleeperRecorder(OneSleeper, Recorder):
    def __init__(self) -> None:
        OneSleeper.__init__(self)
        Recorder.__init__(self)

    def on_update(self, driver: SchedulerDriver, status: object) -> None:
        Recorder.on_update(self, driver, status)  # type: ignore[arg-type]


async def test_an_agent_that_does_not_come_back_after_a_failover_is_unreachable(
    zk_url: str, tmp_path: Path
) -> None:
    ha = HACluster(
        tmp_path / "ha", zk_url, masters=2, agents=1,
        master_args=("--agent-reregister-timeout-s", "2"),
        agent_args=("--reconnect-backoff-max-s", "0.5"),
    )
    with ha:
        fw = SleeperRecorder()
        info = FrameworkInfo(name="unreachable", failover_timeout_s=60)
        async with SchedulerDriver(fw, info, master=zk_url, reconnect_backoff_max_s=0.5) as d:
            await assert_eventually_async(
                lambda: any(u.state == TaskState.RUNNING for u in fw.updates), timeout_s=30
            )
            agent_id = fw.updates[-1].agent_id
            ha.kill_agent(0, signal.SIGKILL)
            old = ha.wait_for_leader()
            ha.kill_master(old, signal.SIGKILL)
            await asyncio.to_thread(ha.wait_for_leader, 20.0, other_than=old)

            async def unreachable() -> bool:
                try:
                    await d.reconcile([(TaskId("sleeper"), agent_id)])
                except Exception:
                    return False
                await asyncio.sleep(0.2)
                return any(u.state == TaskState.UNREACHABLE for u in fw.updates)

            await assert_eventually_async(unreachable, timeout_s=30)
