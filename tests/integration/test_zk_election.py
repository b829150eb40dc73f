"""Election in ZooKeeper with real masters: standbys redirect, bad or unreachable ZooKeeper,
and a leader cut off from ZooKeeper stops leading before another starts (issue #5)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from kazoo.client import KazooClient

from mesoslite._proto.v1 import operator_pb2, operator_pb2_grpc
from mesoslite.cli._client import BlockingOperatorClient
from mesoslite.discovery import lookup_leader, parse_zk_url
from mesoslite.master.registry.zookeeper import read_history
from mesoslite.testing import assert_eventually, free_port
from mesoslite.testing._daemon import Daemon
from mesoslite.testing.ha_cluster import HACluster
from mesoslite.testing.zookeeper import ZooKeeperCluster, ZooKeeperProxy


def get_master(address: str) -> operator_pb2.GetMasterResponse:
    with grpc.insecure_channel(address) as ch:
        return operator_pb2_grpc.OperatorStub(ch).GetMaster(
            operator_pb2.GetMasterRequest(), timeout=5
        )


def test_a_standby_answers_unavailable_with_the_leaders_address_and_clients_follow(
    zk_url: str, tmp_path: Path
) -> None:
    with HACluster(tmp_path / "ha", zk_url, masters=2, agents=0) as ha:
        leader = ha.wait_for_leader()
        standby = 1 - leader

        def refusal() -> str:
            with pytest.raises(grpc.RpcError) as e:
                get_master(ha.addresses[standby])
            assert e.value.code() == grpc.StatusCode.UNAVAILABLE
            return str(e.value.details())

        # (A standby that has just joined may not have read the election yet.)
        assert_eventually(
            lambda: refusal().endswith(f"leader is {ha.addresses[leader]}"), timeout_s=10
        )
        # The CLI's client follows the redirect; zk:// finds the leader directly.
        with BlockingOperatorClient(ha.addresses[standby]) as c:
            assert c.master_address() == ha.addresses[leader]
        with BlockingOperatorClient(zk_url) as c:
            assert c.master_address() == ha.addresses[leader]
        assert lookup_leader(zk_url) == ha.addresses[leader]


def test_a_malformed_zk_url_is_rejected_at_start_with_the_reason(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "mesoslite.master.main", "--zk", "zk://127.0.0.1:2181",
         "--work-dir", str(tmp_path), "--port", "0"],
        capture_output=True, text=True, timeout=30,
    )
    assert out.returncode == 2
    assert "--zk" in out.stderr and "needs a path" in out.stderr


def test_unreachable_zookeeper_is_reported_and_retried_while_standing_by(
    tmp_path: Path,
) -> None:
    port = free_port()
    log = tmp_path / "master.log"
    d = Daemon(
        "master",
        [sys.executable, "-m", "mesoslite.master.main", "--zk", f"zk://127.0.0.1:{port}/m",
         "--port", str(free_port()), "--work-dir", str(tmp_path / "m"),
         "--zk-session-timeout-s", "1"],
        log, {},
    )
    import os

    d.env = dict(os.environ)
    d.start()
    try:
        assert_eventually(lambda: log.read_text().count("cannot reach ZooKeeper") >= 2,
                          timeout_s=20)
        assert d.alive
        assert "is it running and is --zk right?" in log.read_text()
    finally:
        d.stop()


def test_a_leader_cut_off_from_zookeeper_stops_leading_before_another_starts(
    zookeeper: ZooKeeperCluster, tmp_path: Path
) -> None:
    url = zookeeper.chroot_url()
    path = parse_zk_url(url).path
    proxies = [ZooKeeperProxy([zookeeper.hosts]) for _ in range(3)]
    try:
        ha = HACluster(
            tmp_path / "ha", url, masters=3, agents=1, session_timeout_s=2.0,
            master_zk_urls=[p.url(path) for p in proxies],
            agent_args=("--reconnect-backoff-max-s", "0.5"),
        )
        with ha:
            old = ha.wait_for_leader()
            proxies[old].cut()
            samples: list[tuple[float, list[int]]] = []
            deadline = time.monotonic() + 20
            new = None
            while time.monotonic() < deadline:
                leaders = ha.leaders()
                samples.append((time.monotonic(), leaders))
                if leaders and leaders[0] != old:
                    new = leaders[0]
                    break
                time.sleep(0.01)
            assert new is not None, "no other master took over"
            assert all(len(ls) <= 1 for _, ls in samples), samples
            # The old leader stepped down (SUSPENDED) before the new one was elected...
            stepped_down = next(t for t, ls in samples if old not in ls)
            assert stepped_down < samples[-1][0]
            # ...and, its session gone, it exits so that a supervisor restarts it.
            assert ha.masters[old].wait(10.0)
            assert ha.masters[old].returncode == 1
            assert "no longer leading" in ha.masters[old].log_tail(20)
            ha.wait_for_agents(1, 20.0)
        # The registry's history: each term's writes come after the previous term's.
        client = KazooClient(hosts=zookeeper.hosts)
        client.start(timeout=10)
        try:
            history = read_history(client, parse_zk_url(url))
        finally:
            client.stop()
            client.close()
        writers = [(h["writer"], h["epoch"]) for h in history]
        terms = [w for i, w in enumerate(writers) if i == 0 or writers[i - 1] != w]
        assert len(terms) == len(set(terms)), f"two leaders' writes interleave: {writers}"
        assert [e for _, e in terms] == sorted(e for _, e in terms)
        assert len(terms) >= 2
        versions = [h["version"] for h in history]
        assert versions == sorted(versions) and len(set(versions)) == len(versions)
    finally:
        for p in proxies:
            p.close()


def test_a_killed_leader_is_replaced_and_the_agents_follow(zk_url: str, tmp_path: Path) -> None:
    with HACluster(tmp_path / "ha", zk_url, masters=3, agents=2, session_timeout_s=2.0,
                   agent_args=("--reconnect-backoff-max-s", "0.5")) as ha:
        old = ha.wait_for_leader()
        ha.kill_master(old, signal.SIGKILL)
        ha.wait_for_leader(20.0, other_than=old)
        ha.wait_for_agents(2, 20.0)


async def test_an_agent_and_a_framework_given_only_a_standby_follow_its_redirect_to_the_leader(
    zk_url: str, tmp_path: Path
) -> None:
    import asyncio
    import os

    from mesoslite.scheduler_api import FrameworkInfo, SchedulerDriver

    with HACluster(tmp_path / "ha", zk_url, masters=2, agents=0) as ha:
        leader = ha.wait_for_leader()
        standby = ha.addresses[1 - leader]

        def refuses_with_leader() -> bool:
            try:
                get_master(standby)
            except grpc.RpcError as e:
                return str(e.details()).endswith(f"leader is {ha.addresses[leader]}")
            return False

        assert_eventually(refuses_with_leader, timeout_s=10)
        # The agent knows only the standby: registering means it followed the redirect.
        agent = Daemon(
            "agent",
            [sys.executable, "-m", "mesoslite.agent.main", "--master",
             standby, "--work-dir", str(tmp_path / "agent"),
             "--resources", "cpus:1;mem:256;disk:100;ports:[40000-40009]"],
            tmp_path / "agent.log", dict(os.environ),
        )
        agent.start()
        try:
            await asyncio.to_thread(ha.wait_for_agents, 1, 30.0)
            # The framework gets the standby alone.
            async with SchedulerDriver(object(), FrameworkInfo(name="redirected"),
                                       master=standby) as d:
                await d.wait_subscribed(20)
                assert d.master_info is not None
                assert d.master_info.address == ha.addresses[leader]
        finally:
            agent.stop()
