"""Chaos, short: an agent SIGKILLed, or SIGSTOPped, for longer than the master's ping
timeout while it runs batch tasks (issue 11). The master declares it unreachable and the
jobs framework starts the instances elsewhere; when the agent comes back, the tasks it still
runs must be killed, so that no instance succeeds twice."""

from __future__ import annotations

from mesoslite.jobs.model import InstanceState, JobState
from mesoslite.testing.chaos import (
    ChaosCluster,
    FaultInjector,
    Ledger,
    check_invariants,
    client_call,
    first_attempt_lingers,
    submit,
    wait_for_job,
    wait_for_no_tasks,
)
from mesoslite.testing.eventually import assert_eventually
from tests.chaos.conftest import FAST_PING_ARGS, Clusters

# Silent for 2 x 1 s: unreachable; 3 s more to re-register. Down for 6 s is past both.
DOWN_S = 6.0
LINGER_S = 30.0


def start_long_batch(ha: ChaosCluster, ledger: Ledger, name: str) -> None:
    # Originals outlast the fault (they must be killed when the agent is back); replacements
    # end in a second.
    submit(ha, ledger.batch_spec(name, instances=6, body=first_attempt_lingers(LINGER_S)))

    def all_running() -> bool:
        view = client_call(ha, lambda c: c.job_status(name))
        return all(i.state == InstanceState.RUNNING for i in view.instances)

    assert_eventually(all_running, timeout_s=30, message=f"every instance of {name} running")


def tasks_of(ledger: Ledger, job: str) -> int:
    return sum(r.job == job for r in ledger.records().values())


def test_agent_sigkill_past_the_ping_timeout_runs_nothing_twice(
    clusters: Clusters, ledger: Ledger
) -> None:
    with clusters(agents=2, master_args=FAST_PING_ARGS) as ha:
        faults = FaultInjector(ha)
        start_long_batch(ha, ledger, "killed")
        faults.kill_agent(faults.busiest_agent(), down_s=DOWN_S)
        view = wait_for_job(ha, "killed", timeout_s=60)
        assert view.state == JobState.SUCCEEDED, view.message
        wait_for_no_tasks(ha, "killed", timeout_s=LINGER_S + 5)
        assert check_invariants(ha, ledger, ["killed"]) == []
        assert tasks_of(ledger, "killed") > 6, "the fault replaced no task: it tested nothing"


def test_agent_sigstop_past_the_ping_timeout_runs_nothing_twice(
    clusters: Clusters, ledger: Ledger
) -> None:
    with clusters(agents=2, master_args=FAST_PING_ARGS) as ha:
        faults = FaultInjector(ha)
        start_long_batch(ha, ledger, "paused")
        faults.pause(ha.agents[faults.busiest_agent()], DOWN_S)
        view = wait_for_job(ha, "paused", timeout_s=60)
        assert view.state == JobState.SUCCEEDED, view.message
        wait_for_no_tasks(ha, "paused", timeout_s=LINGER_S + 5)
        assert check_invariants(ha, ledger, ["paused"]) == []
        assert tasks_of(ledger, "paused") > 6, "the fault replaced no task: it tested nothing"
