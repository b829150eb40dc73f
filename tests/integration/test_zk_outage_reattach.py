"""After a ZooKeeper outage, agents and frameworks find the leader again within seconds of
ZooKeeper's return, not after kazoo's default reconnect backoff (issue 11, item 4: agents
came back 82-226 s after ZooKeeper did).

ZooKeeper here is the test's own (with a tick long enough that the master's session outlives
the outage), stopped for `OUTAGE_S` and started again on the same port and data dir. The
default outage is short, to keep the suite fast; kazoo's default backoff needs a long one
to reach its gaps of tens of seconds, so the failure of the old code shows with
`MESOSLITE_TEST_ZK_OUTAGE_S=60` (bench/RESULTS.md has the run). The bounds themselves are
unit-tested in tests/unit/test_discovery.py.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from pathlib import Path

from mesoslite.scheduler_api import FrameworkId, FrameworkInfo, MasterInfo, SchedulerDriver
from mesoslite.testing import assert_eventually_async
from mesoslite.testing.ha_cluster import HACluster
from mesoslite.testing.pytest_plugin import require_zookeeper
from mesoslite.testing.zookeeper import ZooKeeperCluster

OUTAGE_S = float(os.environ.get("MESOSLITE_TEST_ZK_OUTAGE_S", "6"))
SESSION_TIMEOUT_S = OUTAGE_S + 15.0
# ZooKeeper grants sessions of at most 20 ticks.
TICK_MS = max(2000, math.ceil(SESSION_TIMEOUT_S * 1000 / 20))
# How soon after ZooKeeper serves again the agent and the framework must be back.
REATTACH_BOUND_S = 10.0


class Subscriptions:
    def __init__(self) -> None:
        self.count = 0

    def on_subscribed(self, driver: SchedulerDriver, fid: FrameworkId, m: MasterInfo) -> None:
        self.count += 1


def registrations(ha: HACluster) -> int:
    """How many times agent 0 has registered with a master (from its log)."""
    return ha.agents[0].log_path.read_text().count("registered with the master agent_id=")


async def test_an_agent_and_a_framework_reattach_within_seconds_of_zookeeper_returning(
    tmp_path: Path,
) -> None:
    require_zookeeper()
    with ZooKeeperCluster(tmp_path / "zk", size=1, tick_ms=TICK_MS) as zk:
        url = zk.url("/outage")
        ha = HACluster(
            tmp_path / "ha", url, masters=1, agents=1, session_timeout_s=SESSION_TIMEOUT_S,
            agent_args=("--reconnect-backoff-max-s", "30"),
        )
        with ha:
            fw = Subscriptions()
            info = FrameworkInfo(name="outage", failover_timeout_s=120)
            async with SchedulerDriver(
                fw, info, master=url, reconnect_backoff_max_s=30.0
            ) as driver:
                await driver.wait_subscribed(30)
                agent_before, fw_before = registrations(ha), fw.count
                assert agent_before >= 1
                await asyncio.to_thread(zk.stop)
                # The leader pauses (it lost ZooKeeper) and closes every stream.
                await assert_eventually_async(lambda: not driver.connected, timeout_s=10)
                await asyncio.sleep(OUTAGE_S)
                await asyncio.to_thread(zk.start)
                back = time.monotonic()
                await assert_eventually_async(
                    lambda: registrations(ha) > agent_before and fw.count > fw_before
                    and driver.connected,
                    timeout_s=REATTACH_BOUND_S,
                )
                took = time.monotonic() - back
            assert not ha.dead_daemons()
        print(f"agent and framework back {took:.2f}s after ZooKeeper")
