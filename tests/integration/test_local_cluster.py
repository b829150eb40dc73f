"""`LocalCluster` itself: real daemons start, report, restart and are all stopped."""

from __future__ import annotations

import signal
import socket
from pathlib import Path

import psutil
import pytest

from mesoslite.testing import LocalCluster, LocalClusterError, assert_eventually, free_port


def statuses(cluster: LocalCluster) -> dict[str, str]:
    with cluster.client() as c:
        return {a.id: a.status for a in c.agents()}


def test_cluster_starts_a_master_and_two_active_agents_with_their_own_ports(
    cluster: LocalCluster,
) -> None:
    active = cluster.wait_for_agents(2, timeout_s=5)
    assert sorted(a.id for a in active) == sorted(cluster.agent_ids)
    by_id = {a.id: a for a in active}
    ports = [str(by_id[i].total).split("ports:")[1] for i in cluster.agent_ids]
    assert ports == ["[31000-31999]", "[32000-32999]"]
    assert all(by_id[i].total.scalar("cpus") == 4 for i in cluster.agent_ids)
    assert len(cluster.agent_pids) == 2 and all(map(psutil.pid_exists, cluster.agent_pids))
    assert cluster.master_log.exists() and all(p.exists() for p in cluster.agent_logs)


def test_a_killed_agent_goes_disconnected_and_comes_back_with_its_id(
    cluster: LocalCluster,
) -> None:
    first = cluster.agent_ids[0]
    cluster.kill_agent(0, signal.SIGKILL)
    assert_eventually(lambda: statuses(cluster)[first] != "active", timeout_s=15)
    cluster.start_agent(0)
    assert cluster.agent_ids[0] == first
    assert_eventually(lambda: statuses(cluster)[first] == "active", timeout_s=15)


def test_a_restarted_master_keeps_its_address_and_the_agents_come_back(
    cluster: LocalCluster,
) -> None:
    address, ids = cluster.master_address, sorted(cluster.agent_ids)
    old_pid = cluster.master_pid
    cluster.restart_master()
    assert cluster.master_address == address and cluster.master_pid != old_pid
    assert_eventually(
        lambda: sorted(i for i, s in statuses(cluster).items() if s == "active") == ids,
        timeout_s=30,
    )


def test_stop_ends_every_daemon(tmp_path: Path) -> None:
    c = LocalCluster(tmp_path, agents=2).start()
    procs = [psutil.Process(p) for p in [c.master_pid, *c.agent_pids] if p is not None]
    c.stop()
    assert not [p for p in procs if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    c.stop()  # a second stop is harmless


def test_a_master_that_cannot_start_is_named_with_the_end_of_its_log(tmp_path: Path) -> None:
    c = LocalCluster(tmp_path, agents=1, master_args=("--allocator", "no-such-allocator"))
    with pytest.raises(LocalClusterError) as info:
        c.start()
    text = str(info.value)
    assert "master (pid" in text and "exited with code" in text
    assert "no-such-allocator" in text
    assert c.dead_daemons() and "master" in c.dead_daemons()[0]


def test_a_port_in_use_fails_the_start_and_says_so(tmp_path: Path) -> None:
    port = free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
        s.listen()
        c = LocalCluster(tmp_path, agents=0, port=port)
        with pytest.raises(LocalClusterError, match="cannot listen on 127.0.0.1"):
            c.start()


async def test_the_async_operator_client_answers_like_the_blocking_one(
    cluster: LocalCluster,
) -> None:
    from mesoslite.cli._client import OperatorClient
    from mesoslite.errors import NotFoundError

    async with OperatorClient(cluster.master_address) as client:
        assert await client.master_address() == cluster.master_address
        assert sorted(a.id for a in await client.agents()) == sorted(cluster.agent_ids)
        # Only the built-in jobs framework, idle (suppressed).
        (jobs,) = await client.frameworks(include_completed=True)
        assert (jobs.name, jobs.suppressed) == ("mesoslite-jobs", True)
        assert await client.tasks() == []
        with pytest.raises(NotFoundError, match="task 'nope' is not known"):
            await client.read_file("nope", "stdout", 0, 10)
