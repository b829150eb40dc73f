"""Chaos, short: an agent in a network namespace of its own is partitioned from everything
while it runs batch tasks (issue 11). Shorter than the ping and re-register timeouts, nothing
is replaced; longer, the instances start elsewhere and the originals must be killed when the
agent returns, so that none succeeds twice. Needs root and iproute2 (skipped otherwise)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from mesoslite.jobs.model import InstanceState, JobState
from mesoslite.testing.chaos import (
    ChaosCluster,
    FaultInjector,
    Ledger,
    NetnsAgent,
    check_invariants,
    client_call,
    first_attempt_lingers,
    netns_available,
    submit,
    wait_for_job,
    wait_for_no_tasks,
)
from mesoslite.testing.eventually import assert_eventually
from tests.chaos.conftest import FAST_AGENT_ARGS, FAST_PING_ARGS, Clusters

INSTANCES = 6
LINGER_S = 30.0


@pytest.fixture
def netns_agent(tmp_path: Path) -> Iterator[NetnsAgent]:
    why = netns_available()
    if why:
        pytest.skip(f"no network namespaces for the partition scenarios: {why}")
    name = f"mlc{uuid.uuid4().hex[:6]}"
    agent = NetnsAgent(name, tmp_path / "netns-agent", subnet=NetnsAgent.random_subnet(),
                       masters=[], marker="", resources="cpus:4;mem:4096;disk:1000;"
                       "ports:[41000-41999]", agent_args=FAST_AGENT_ARGS)
    try:
        agent.create()
        yield agent
    finally:
        agent.close()


def partitioned_cluster(
    clusters: Clusters, agent: NetnsAgent, ledger: Ledger, name: str, body: str
) -> ChaosCluster:
    """A cluster whose only agent, at first, is `agent`, running a batch of long tasks; then
    a second agent (outside) where replacements can go."""
    ha = clusters(agents=0, master_args=FAST_PING_ARGS, advertise_host=agent.host_ip)
    ha.start()
    # The agent's argv is only final now that the masters' ports and marker are known.
    marker_env = {**agent.daemon.env, "MESOSLITE_LOCAL_CLUSTER": ha.marker}
    agent.daemon.env = marker_env
    i = agent.daemon.argv.index("--master")
    agent.daemon.argv[i + 1] = ",".join(ha.advertised)
    ha.add_netns_agent(agent)
    ha.wait_for_agents(1)
    submit(ha, ledger.batch_spec(name, instances=INSTANCES, body=body))

    def all_running() -> bool:
        view = client_call(ha, lambda c: c.job_status(name))
        return all(i.state == InstanceState.RUNNING for i in view.instances)

    assert_eventually(all_running, timeout_s=30, message=f"every instance of {name} running")
    ha.add_agent()
    ha.wait_for_agents(2)
    return ha


def tasks_of(ledger: Ledger, job: str) -> int:
    return sum(r.job == job for r in ledger.records().values())


def test_a_partition_shorter_than_the_timeouts_replaces_nothing(
    clusters: Clusters, netns_agent: NetnsAgent, ledger: Ledger
) -> None:
    ha = partitioned_cluster(clusters, netns_agent, ledger, "short", "sleep 8")
    FaultInjector(ha).partition(netns_agent, 1.0)
    view = wait_for_job(ha, "short", timeout_s=60)
    assert view.state == JobState.SUCCEEDED, view.message
    assert check_invariants(ha, ledger, ["short"]) == []
    assert tasks_of(ledger, "short") == INSTANCES


def test_a_partition_longer_than_the_timeouts_runs_nothing_twice(
    clusters: Clusters, netns_agent: NetnsAgent, ledger: Ledger
) -> None:
    # Originals outlast the partition (they must be killed when it heals); replacements
    # end in a second.
    body = first_attempt_lingers(LINGER_S)
    ha = partitioned_cluster(clusters, netns_agent, ledger, "long", body)
    FaultInjector(ha).partition(netns_agent, 7.0)
    view = wait_for_job(ha, "long", timeout_s=60)
    assert view.state == JobState.SUCCEEDED, view.message
    wait_for_no_tasks(ha, "long", timeout_s=LINGER_S + 5)
    assert check_invariants(ha, ledger, ["long"]) == []
    assert tasks_of(ledger, "long") > INSTANCES, "the partition replaced no task"
