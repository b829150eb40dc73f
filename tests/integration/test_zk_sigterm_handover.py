"""SIGTERM of the leading master hands leadership over at once (issue #15, "Failover").

The session timeout is 30 s, so a standby that led only after the old session expired
would miss the 10 s deadline by far; it leads instead as soon as the old leader, first
thing in its orderly stop, deletes its election znode. A framework subscribed before gets
offers from the new leader, and nothing acknowledged is lost.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from mesoslite.cli._client import BlockingOperatorClient
from mesoslite.jobs.model import JobState
from mesoslite.scheduler_api import FrameworkInfo, SchedulerDriver
from mesoslite.testing import assert_eventually, assert_eventually_async
from mesoslite.testing.ha_cluster import HACluster

from .ha_support import LedgerFramework

SESSION_TIMEOUT_S = 30.0
HANDOVER_DEADLINE_S = 10.0


def submit_job(zk_url: str) -> None:
    with BlockingOperatorClient(zk_url) as c:
        c.submit_job("""
name: svc
type: service
command: sleep 600
resources: {cpus: 0.1, mem: 16}
instances: 1
""")


def job_state(zk_url: str) -> JobState:
    with BlockingOperatorClient(zk_url) as c:
        return c.job_status("svc").state


async def test_sigterm_of_the_leader_hands_over_well_before_the_session_timeout(
    zk_url: str, tmp_path: Path
) -> None:
    ha = HACluster(
        tmp_path / "ha", zk_url, masters=2, agents=1, session_timeout_s=SESSION_TIMEOUT_S,
        agent_args=("--reconnect-backoff-max-s", "0.5"),
    )
    with ha:
        old = ha.wait_for_leader()
        await asyncio.to_thread(submit_job, zk_url)  # acknowledged: it is in the registry
        fw = LedgerFramework(60, tmp_path / "ledger", sleep_s=0.3)
        info = FrameworkInfo(name="sigterm-handover", failover_timeout_s=120)
        # A decline sent to the old leader as it steps down is refused; that is expected
        # here and must not stop the driver.
        async with SchedulerDriver(
            fw, info, master=zk_url, reconnect_backoff_max_s=0.5, on_callback_error="log"
        ) as driver:
            await assert_eventually_async(lambda: len(fw.finished) >= 15, timeout_s=60)
            ha.masters[old].send(signal.SIGTERM)
            new = await asyncio.to_thread(
                ha.wait_for_leader, HANDOVER_DEADLINE_S, other_than=old
            )
            # The framework re-subscribes to the new leader, which offers it the rest.
            await asyncio.wait_for(fw.done.wait(), 90)
            fid = driver.framework_id
        assert ha.masters[old].wait(10.0) and ha.masters[old].returncode == 0, (
            ha.masters[old].describe_exit()
        )
        assert fw.masters[0] == ha.addresses[old] and fw.masters[-1] == ha.addresses[new]
        assert set(fw.subscriptions) == {fid}
        # Nothing lost or run twice: each logical task finished, each task id ran once.
        assert fw.finished == set(range(60))
        assert [t for t, n in fw.ledger_counts().items() if n > 1] == []
        # The job acknowledged before the SIGTERM is led by the new leader.
        assert_eventually(lambda: job_state(zk_url) == JobState.HEALTHY, timeout_s=30)
        # Leadership went first in the old leader's stop, before its slow steps.
        log = (ha.work_dir / f"master-{old}.log").read_text()
        assert "handed leadership over" in log, log[-2000:]
        assert log.index("handed leadership over") < log.index("master stopped")
