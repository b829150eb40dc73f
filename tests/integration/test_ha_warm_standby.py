"""A standby keeps the ZooKeeper registry warm (issue 15): it follows the leader's writes while
it waits, its view after election equals a cold read, and a view that missed a write is
never claimed (the claim fences it and the store reads cold). Real ZooKeeper throughout."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kazoo.client import KazooClient

from mesoslite.allocator.base import Quota
from mesoslite.discovery import ZkUrl, parse_zk_url
from mesoslite.errors import RegistryError
from mesoslite.ids import AgentId, FrameworkId
from mesoslite.master.registry import standby
from mesoslite.master.registry.base import (
    AddFramework,
    AdmitAgent,
    MarkAgentGone,
    PutJob,
    RegistryOp,
    RegistrySnapshot,
    RemoveAgent,
    RemoveJob,
    SetJobsFrameworkId,
    SetQuota,
    SetReservation,
    SetRoleWeight,
)
from mesoslite.master.registry.zookeeper import ZooKeeperRegistryStore, read_history
from mesoslite.model import AgentInfo, FrameworkInfo
from mesoslite.resources import parse_resources
from mesoslite.testing import assert_eventually_async
from mesoslite.testing.ha_cluster import HACluster
from mesoslite.testing.zookeeper import ZooKeeperCluster


@dataclass
class Session:
    client: Any
    node_path: str
    epoch: int


@pytest.fixture
def zk(zookeeper: ZooKeeperCluster) -> Iterator[tuple[KazooClient, ZkUrl]]:
    url = parse_zk_url(zookeeper.chroot_url())
    client = KazooClient(hosts=zookeeper.hosts)
    client.start(timeout=10)
    yield client, url
    client.stop()
    client.close()


def contender(client: KazooClient, url: ZkUrl) -> Session:
    path = client.create(f"{url.election_path}/master-", b"{}", ephemeral=True, sequence=True,
                         makepath=True)
    return Session(client, path, int(path.rsplit("-", 1)[1]))


def store(client: KazooClient, url: ZkUrl, name: str) -> ZooKeeperRegistryStore:
    return ZooKeeperRegistryStore(contender(client, url), url, writer={"id": name},
                                  on_fenced=lambda r: None)


def agent(n: int) -> AgentInfo:
    return AgentInfo(id=AgentId(f"ag-{n}"), hostname=f"h{n}", resources=parse_resources("cpus:1"))


async def cold_read(client: KazooClient, url: ZkUrl) -> RegistrySnapshot:
    """What a master without a mirror reads (it claims too, so a fresh store each time)."""
    return await store(client, url, "cold-reader").load()


async def head_version(client: KazooClient, url: ZkUrl) -> int:
    _, stat = await asyncio.to_thread(client.get, f"{url.path}/registry")
    return int(stat.version)


async def caught_up(standby_store: ZooKeeperRegistryStore, client: KazooClient,
                    url: ZkUrl) -> standby.RegistryMirror:
    async def current() -> bool:
        mirror = standby_store._mirror  # noqa: SLF001
        return mirror is not None and mirror.version == await head_version(client, url)

    await assert_eventually_async(current, timeout_s=10)
    mirror = standby_store._mirror  # noqa: SLF001
    assert mirror is not None
    return mirror


BATCHES: list[list[RegistryOp]] = [
    [AdmitAgent(agent(1)), AdmitAgent(agent(2)), SetRoleWeight("eng/ml", 2.5)],
    [SetQuota("eng/ml", Quota(guarantee=parse_resources("cpus:1"))), PutJob("nightly", "{}")],
    [AddFramework(FrameworkInfo(name="fw", id=FrameworkId("fw-1"))), SetJobsFrameworkId("fw-j")],
    [SetReservation(AgentId("ag-1"), "eng/ml", parse_resources("cpus:0.5")), RemoveJob("nightly")],
    [MarkAgentGone(AgentId("ag-2")), RemoveAgent(AgentId("ag-1")), SetRoleWeight("eng/ml", 1.0)],
    [PutJob("x" * 70, "{}")],  # a key whose history label is cut short: read in full
    [PutJob(f"many-{i}", "{}") for i in range(40)],  # more than MAX_INCREMENTAL objects
]


async def test_a_standby_follows_the_writes_made_while_it_waits_and_its_claim_equals_a_cold_read(
    zk: tuple[KazooClient, ZkUrl],
) -> None:
    client, url = zk
    leader = store(client, url, "leader")
    await leader.load()
    await leader.apply([AdmitAgent(agent(0))])
    waiting = store(client, url, "standby")
    warm = asyncio.create_task(waiting.keep_warm())
    try:
        mirror = await caught_up(waiting, client, url)
        assert mirror.full_reads == 1 and set(mirror.snapshot.agents) == {"ag-0"}
        for ops in BATCHES:
            await leader.apply(ops)
            mirror = await caught_up(waiting, client, url)
            assert mirror.snapshot == await asyncio.to_thread(cold_snapshot, client, url)
        # Most writes were followed object by object; the two in BATCHES' tail were not.
        assert mirror.partial_reads >= 3 and mirror.full_reads >= 3
        expected = mirror.snapshot
        client.delete(leader.session.node_path)  # the leader's session expired
        assert await waiting.load() == expected
        assert waiting.loaded_from == "warm"
        with pytest.raises(RegistryError, match="another master"):
            await leader.apply([AdmitAgent(agent(9))])
        assert await cold_read(client, url) == expected
    finally:
        warm.cancel()
        await asyncio.gather(warm, return_exceptions=True)


def cold_snapshot(client: KazooClient, url: ZkUrl) -> RegistrySnapshot:
    """The registry decoded from every object, without claiming it (blocking)."""
    from mesoslite.master.registry.bounded import BoundedCalls
    from mesoslite.master.registry.codec import decode_objects
    from mesoslite.master.registry.layout import read_objects

    zk = BoundedCalls(client, 10.0)
    return decode_objects(read_objects(zk, f"{url.path}/registry", zk.deadline()).items())


async def test_a_standby_that_missed_a_write_claims_nothing_stale_and_reads_cold(
    zk: tuple[KazooClient, ZkUrl],
) -> None:
    client, url = zk
    leader = store(client, url, "leader")
    await leader.load()
    await leader.apply([AdmitAgent(agent(1))])
    waiting = store(client, url, "standby")
    warm = asyncio.create_task(waiting.keep_warm())
    await caught_up(waiting, client, url)
    # As if the watch had not been delivered yet: the mirror stops following...
    warm.cancel()
    await asyncio.gather(warm, return_exceptions=True)
    # ...and the old leader writes once more before its session goes.
    await leader.apply([RemoveAgent(AgentId("ag-1")), AdmitAgent(agent(2))])
    client.delete(leader.session.node_path)
    snap = await waiting.load()
    assert waiting.loaded_from == "cold"  # the claim at the stale version was refused
    assert set(snap.agents) == {"ag-2"}
    history = await asyncio.to_thread(read_history, client, url)
    assert [(h["writer"], h["ops"]) for h in history][-2:] == [
        ("leader", "RemoveAgent,AdmitAgent"), ("standby", "elected"),
    ]


async def test_a_write_that_changes_nothing_writes_nothing(
    zk: tuple[KazooClient, ZkUrl],
) -> None:
    client, url = zk
    leader = store(client, url, "leader")
    await leader.load()
    info = FrameworkInfo(name="fw", id=FrameworkId("fw-1"))
    await leader.apply([AddFramework(info)])
    before = await head_version(client, url)
    await leader.apply([AddFramework(info)])  # re-subscribed as it was
    assert await head_version(client, url) == before
    await leader.apply([AddFramework(FrameworkInfo(name="fw2", id=FrameworkId("fw-1")))])
    assert await head_version(client, url) == before + 1


def test_a_killed_leaders_successor_claims_the_registry_it_kept_warm(
    zk_url: str, tmp_path: Path
) -> None:
    with HACluster(tmp_path / "ha", zk_url, masters=2, agents=1, session_timeout_s=2.0) as ha:
        old = ha.wait_for_leader()
        ha.wait_for_agents(1, 20.0)
        ha.kill_master(old, signal.SIGKILL)
        new = ha.wait_for_leader(30.0, other_than=old)
        ha.wait_for_agents(1, 20.0)
        log = (ha.work_dir / f"master-{new}.log").read_text()
    assert "registry claimed from=warm" in log, log[-3000:]
