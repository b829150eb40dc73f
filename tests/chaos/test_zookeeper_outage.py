"""Chaos, short: ZooKeeper SIGKILLed for 10 s while long batch tasks run (issue 11, item 3's
scenario in small; `bench/ha_jobs.py --zk-outage` runs the 60 s one). Every session expires:
the leader must step down, a new one be elected when ZooKeeper is back, agents find it, and
no instance may succeed twice nor any stale task be left running."""

from __future__ import annotations

import pytest

from mesoslite.jobs.model import InstanceState, JobState
from mesoslite.testing.chaos import (
    FaultInjector,
    Ledger,
    check_invariants,
    client_call,
    submit,
    wait_for_job,
)
from mesoslite.testing.eventually import assert_eventually
from mesoslite.testing.zookeeper import ZooKeeperCluster
from tests.chaos.conftest import Clusters


@pytest.mark.timeout(180)
def test_zookeeper_sigkill_for_10s_with_long_tasks_runs_nothing_twice(
    clusters: Clusters, zk: ZooKeeperCluster, ledger: Ledger
) -> None:
    with clusters(masters=3, agents=2) as ha:
        faults = FaultInjector(ha, zk)
        submit(ha, ledger.batch_spec("outage", instances=8, body="sleep 20"))

        def all_running() -> bool:
            view = client_call(ha, lambda c: c.job_status("outage"))
            return all(i.state == InstanceState.RUNNING for i in view.instances)

        assert_eventually(all_running, timeout_s=30, message="every instance running")
        faults.zk_outage(10.0)
        ha.wait_for_leader(30.0)
        view = wait_for_job(ha, "outage", timeout_s=90)
        assert view.state == JobState.SUCCEEDED, view.message
        assert check_invariants(ha, ledger, ["outage"]) == []
        assert faults.counts["zookeeper_SIGKILL"] == 1
