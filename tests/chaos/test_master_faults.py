"""Chaos, short: the leading master SIGKILLed mid-batch, and batch after batch in HA mode
(issue 11). Invariants are checked from the tasks' own ledger after every scenario."""

from __future__ import annotations

import time

from mesoslite.jobs.model import JobState
from mesoslite.testing.chaos import (
    FaultInjector,
    Ledger,
    check_invariants,
    submit,
    wait_for_job,
)
from tests.chaos.conftest import Clusters


def test_leader_sigkill_mid_batch_runs_every_instance_once(
    clusters: Clusters, ledger: Ledger
) -> None:
    with clusters(masters=3, agents=2) as ha:
        faults = FaultInjector(ha)
        submit(ha, ledger.batch_spec("mid", instances=40, body="sleep 0.5"))
        deadline = time.monotonic() + 30
        while sum(r.succeeded for r in ledger.records().values()) < 5:
            assert time.monotonic() < deadline, "no instance ended within 30s"
            time.sleep(0.1)
        faults.kill_leader()
        view = wait_for_job(ha, "mid", timeout_s=60)
        assert view.state == JobState.SUCCEEDED, view.message
        assert check_invariants(ha, ledger, ["mid"]) == []
        assert faults.counts["leader_SIGKILL"] == 1


def test_batch_jobs_in_a_row_in_ha_mode_all_succeed(clusters: Clusters, ledger: Ledger) -> None:
    # Short form of "20 x 300 in a row" (bench/ha_jobs.py): 4 x 100. Each ended job stays in
    # the registry; today's single-znode registry grows ~50 KB per job of this size.
    with clusters(masters=3, agents=2) as ha:
        names = [f"row-{n}" for n in range(4)]
        for name in names:
            submit(ha, ledger.batch_spec(name, instances=100))
            view = wait_for_job(ha, name, timeout_s=60)
            assert view.state == JobState.SUCCEEDED, (name, view.message)
        assert check_invariants(ha, ledger, names) == []
        assert sum(r.succeeded for r in ledger.records().values()) == 4 * 100 + 3
