"""The ZooKeeper registry against a real server: compare-and-set fences a deposed leader."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from kazoo.client import KazooClient

from mesoslite.discovery import ZkUrl, parse_zk_url
from mesoslite.errors import RegistryError
from mesoslite.ids import AgentId
from mesoslite.master.registry.base import AdmitAgent, RemoveAgent
from mesoslite.master.registry.zookeeper import ZooKeeperRegistryStore, read_history
from mesoslite.model import AgentInfo
from mesoslite.resources import parse_resources
from mesoslite.testing.zookeeper import ZooKeeperCluster


@dataclass
class Session:
    client: Any
    node_path: str
    epoch: int


def agent(n: int) -> AgentInfo:
    return AgentInfo(id=AgentId(f"ag-{n}"), hostname=f"h{n}", resources=parse_resources("cpus:1"))


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


async def test_a_deposed_leader_cannot_overwrite_its_successors_registry(
    zk: tuple[KazooClient, ZkUrl],
) -> None:
    client, url = zk
    fenced: list[str] = []
    old = ZooKeeperRegistryStore(contender(client, url), url, writer={"id": "old"},
                                 on_fenced=fenced.append)
    assert (await old.load()).agents == {}
    await old.apply([AdmitAgent(agent(1))])
    new = ZooKeeperRegistryStore(contender(client, url), url, writer={"id": "new"},
                                 on_fenced=lambda r: None)
    snap = await new.load()  # claims the registry
    assert set(snap.agents) == {"ag-1"}
    with pytest.raises(RegistryError, match="another master"):
        await old.apply([RemoveAgent(AgentId("ag-1")), AdmitAgent(agent(2))])
    assert fenced and "another master wrote it" in fenced[0]
    await new.apply([AdmitAgent(agent(3))])
    again = ZooKeeperRegistryStore(contender(client, url), url, writer={"id": "third"},
                                   on_fenced=lambda r: None)
    assert set((await again.load()).agents) == {"ag-1", "ag-3"}
    history = await asyncio.to_thread(read_history, client, url)
    assert [(h["writer"], h["ops"]) for h in history] == [
        ("old", "elected"), ("old", "AdmitAgent"), ("new", "elected"), ("new", "AdmitAgent"),
        ("third", "elected"),
    ]


async def test_a_write_after_our_election_znode_is_gone_is_refused(
    zk: tuple[KazooClient, ZkUrl],
) -> None:
    client, url = zk
    session = contender(client, url)
    fenced: list[str] = []
    store = ZooKeeperRegistryStore(session, url, writer={"id": "m"}, on_fenced=fenced.append)
    await store.load()
    client.delete(session.node_path)  # as when the session expires
    with pytest.raises(RegistryError):
        await store.apply([AdmitAgent(agent(1))])
    assert fenced and "election znode" in fenced[0]


async def test_a_write_in_doubt_is_resolved_by_reading_the_registry_again(
    zk: tuple[KazooClient, ZkUrl],
) -> None:
    client, url = zk
    store = ZooKeeperRegistryStore(contender(client, url), url, writer={"id": "m"},
                                   on_fenced=lambda r: None)
    await store.load()
    await store.apply([AdmitAgent(agent(1))])
    # As if the connection dropped during that commit: the store does not know whether it
    # applied, so it reads the registry again; its own record is the newest, so it goes on.
    store._in_doubt = True  # noqa: SLF001
    await store.apply([AdmitAgent(agent(2))])
    assert set((await store.load()).agents) == {"ag-1", "ag-2"}

    fenced: list[str] = []
    old = ZooKeeperRegistryStore(contender(client, url), url, writer={"id": "old"},
                                 on_fenced=fenced.append)
    await old.load()
    new = ZooKeeperRegistryStore(contender(client, url), url, writer={"id": "new"},
                                 on_fenced=lambda r: None)
    await new.load()
    old._in_doubt = True  # noqa: SLF001
    with pytest.raises(RegistryError):
        await old.apply([AdmitAgent(agent(3))])
    assert fenced and "last written by new" in fenced[0]
