"""Jobs survive a master failover: the new leader's jobs framework reads the jobs from the
ZooKeeper registry, adopts their running tasks and carries on (issue #7 on top of #5)."""

from __future__ import annotations

import signal
from pathlib import Path

from mesoslite.cli._client import BlockingOperatorClient
from mesoslite.jobs.model import JobState, JobView
from mesoslite.testing import assert_eventually
from mesoslite.testing.ha_cluster import HACluster


def view(zk_url: str, name: str) -> JobView:
    with BlockingOperatorClient(zk_url) as c:
        return c.job_status(name)


def test_a_service_and_a_batch_job_carry_on_across_a_leader_failover(
    zk_url: str, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger"
    ha = HACluster(
        tmp_path / "ha", zk_url, masters=2, agents=2, session_timeout_s=2.0,
        agent_args=("--reconnect-backoff-max-s", "0.5"),
    )
    with ha:
        old = ha.wait_for_leader()
        with BlockingOperatorClient(zk_url) as c:
            c.submit_job("""
name: svc
type: service
command: sleep 600
resources: {cpus: 0.1, mem: 16}
instances: 2
""")
            c.submit_job(f"""
name: batch
type: batch
command: 'echo $MESOSLITE_JOB_INSTANCE.$MESOSLITE_JOB_ATTEMPT >> {ledger}; sleep 5'
resources: {{cpus: 0.1, mem: 16}}
instances: 2
""")

        def healthy() -> JobView:
            v = view(zk_url, "svc")
            assert v.state == JobState.HEALTHY, (v.state, v.message)
            return v

        before = {i.task_id for i in assert_eventually(healthy, timeout_s=30).instances}
        assert_eventually(lambda: view(zk_url, "batch").state == JobState.RUNNING)
        ha.kill_master(old, signal.SIGKILL)
        ha.wait_for_leader(30.0, other_than=old)

        def succeeded() -> JobView:
            v = view(zk_url, "batch")
            assert v.state == JobState.SUCCEEDED, (v.state, v.message)
            return v

        batch = assert_eventually(succeeded, timeout_s=60)
        assert all(i.attempt == 1 for i in batch.instances)
        assert sorted(ledger.read_text().split()) == ["0.1", "1.1"]
        after = {i.task_id for i in assert_eventually(healthy, timeout_s=30).instances}
        assert after == before
