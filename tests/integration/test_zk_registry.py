"""The ZooKeeper registry against a real server: a znode per object, fenced transactions,
migration from the single-znode layout, and calls bounded in time (issue 11)."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kazoo.client import KazooClient

from mesoslite.allocator.base import Quota
from mesoslite.discovery import ZkUrl, parse_zk_url
from mesoslite.errors import RegistryError, ValidationError
from mesoslite.ids import AgentId
from mesoslite.master.registry import zookeeper as registry_zk
from mesoslite.master.registry.base import (
    AdmitAgent,
    MarkAgentGone,
    PutJob,
    RegistrySnapshot,
    RemoveAgent,
    RemoveJob,
    SetJobsFrameworkId,
    SetQuota,
    SetReservation,
    SetRoleWeight,
)
from mesoslite.master.registry.codec import MAX_OBJECT_BYTES, encode_object, snapshot_to_doc
from mesoslite.master.registry.zookeeper import (
    CLAIM_ATTEMPTS,
    MAX_RECORD_BYTES,
    ZooKeeperRegistryStore,
    read_history,
)
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


def noise(n: int) -> str:
    """`n` characters that compress little (job documents over 1 KB are stored zlib'd)."""
    return base64.b64encode(secrets.token_bytes(n)).decode()[:n]


def stats(client: KazooClient, url: ZkUrl) -> dict[str, tuple[int, int]]:
    """(mzxid, version) of every object znode of the registry, by `kind/name`."""
    out = {}
    base = f"{url.path}/registry"
    for kind in client.get_children(base):
        names = client.get_children(f"{base}/{kind}") if kind != "meta" else [""]
        for name in names:
            stat = client.exists(f"{base}/{kind}/{name}".rstrip("/"))
            out[f"{kind}/{name}".rstrip("/")] = (stat.mzxid, stat.version)
    return out


async def test_a_write_of_one_job_changes_only_that_jobs_znode(
    zk: tuple[KazooClient, ZkUrl],
) -> None:
    client, url = zk
    store = ZooKeeperRegistryStore(contender(client, url), url, writer={"id": "m"},
                                   on_fenced=lambda r: None)
    await store.load()
    await store.apply([AdmitAgent(agent(1)), PutJob("a", '{"n": 1}'), PutJob("b", '{"n": 1}'),
                       SetRoleWeight("eng/ml", 2.0), SetJobsFrameworkId("fw-j")])
    before = stats(client, url)
    assert set(before) == {"agents/ag-1", "jobs/a", "jobs/b", "roles/eng%2Fml", "meta"}
    await store.apply([PutJob("a", '{"n": 2}'), AdmitAgent(agent(1))])  # agent 1 unchanged
    after = stats(client, url)
    assert {k for k in before if before[k] != after[k]} == {"jobs/a"}
    assert after["jobs/a"][1] == before["jobs/a"][1] + 1
    data, _ = client.get(f"{url.path}/registry/jobs/a")
    assert data == b'{"n": 2}'
    await store.apply([RemoveJob("b")])
    assert set(stats(client, url)) == set(before) - {"jobs/b"}
    history = await asyncio.to_thread(read_history, client, url)
    assert [(h["ops"], h["keys"]) for h in history[-2:]] == [
        ("PutJob,AdmitAgent", ["jobs/a"]), ("RemoveJob", ["jobs/b"])]


async def test_an_oversized_object_is_refused_and_nothing_is_written(
    zk: tuple[KazooClient, ZkUrl],
) -> None:
    client, url = zk
    store = ZooKeeperRegistryStore(contender(client, url), url, writer={"id": "m"},
                                   on_fenced=lambda r: None)
    await store.load()
    await store.apply([PutJob("a", "{}")])
    head = client.exists(f"{url.path}/registry")
    history = await asyncio.to_thread(read_history, client, url)
    with pytest.raises(ValidationError, match=r"registry\.jobs\['big'\]: would be \d+ bytes"):
        await store.apply([PutJob("b", "{}"), PutJob("big", noise(2 * MAX_OBJECT_BYTES))])
    assert client.exists(f"{url.path}/registry").version == head.version
    assert client.get_children(f"{url.path}/registry/jobs") == ["a"]
    assert await asyncio.to_thread(read_history, client, url) == history
    await store.apply([PutJob("c", "{}")])  # and the store goes on writing
    assert sorted(client.get_children(f"{url.path}/registry/jobs")) == ["a", "c"]


async def test_a_write_larger_than_one_transaction_is_split_and_stays_fenced(
    zk: tuple[KazooClient, ZkUrl],
) -> None:
    client, url = zk
    store = ZooKeeperRegistryStore(contender(client, url), url, writer={"id": "m"},
                                   on_fenced=lambda r: None)
    await store.load()
    big = noise(int(MAX_OBJECT_BYTES * 1.2))
    record = len(encode_object(PutJob("j", big).apply(RegistrySnapshot()), ("jobs", "j")) or b"")
    assert 0.7 * MAX_OBJECT_BYTES < record < MAX_OBJECT_BYTES
    ops = [PutJob(f"j{i}", big) for i in range(5)] + [PutJob(f"s{i}", "{}") for i in range(300)]
    await store.apply(ops)  # 2.5 MB: over ZooKeeper's 1 MB request limit in one go
    history = await asyncio.to_thread(read_history, client, url)
    parts = [h for h in history if h["ops"] == "PutJob*305"]
    assert len(parts) >= 4 and parts[-1]["part"] == f"{len(parts)}/{len(parts)}"
    assert all(len(json.dumps(h)) <= MAX_RECORD_BYTES + 64 for h in history)  # kinds, keys
    assert sum(h["nkeys"] for h in parts) == 305
    again = ZooKeeperRegistryStore(contender(client, url), url, writer={"id": "n"},
                                   on_fenced=lambda r: None)
    assert (await again.load()).jobs == {op.name: op.doc for op in ops}
    fenced: list[str] = []
    store.on_fenced = fenced.append
    with pytest.raises(RegistryError, match="another master"):
        await store.apply([PutJob(f"j{i}", big + "z") for i in range(5)])
    assert fenced and (await again.load()).jobs["j0"] == big  # no part of it was written


async def test_a_single_znode_registry_is_migrated_to_a_znode_per_object(
    zk: tuple[KazooClient, ZkUrl],
) -> None:
    client, url = zk
    snap = RegistrySnapshot()
    for op in (AdmitAgent(agent(1)), AdmitAgent(agent(2)), SetRoleWeight("eng/ml", 3.0),
               SetQuota("eng", Quota(parse_resources("cpus:1"), None)), MarkAgentGone(
                   AgentId("ag-2")), SetReservation(AgentId("ag-1"), "eng", parse_resources(
                       "cpus:1")), SetJobsFrameworkId("fw-j"),
               *(PutJob(f"job-{i}", json.dumps({"i": i, "pad": "p" * 3000})) for i in range(200))):
        snap = op.apply(snap)
    legacy = json.dumps(snapshot_to_doc(snap), sort_keys=True).encode()
    assert len(legacy) > 600_000  # as the registries grew: a few jobs, near 1 MB
    client.create(f"{url.path}/registry", legacy, makepath=True)  # layout 1, as main wrote it
    store = ZooKeeperRegistryStore(contender(client, url), url, writer={"id": "m"},
                                   on_fenced=lambda r: None)
    assert await store.load() == snap
    data, _ = client.get(f"{url.path}/registry")
    assert data == b"" and client.exists(f"{url.path}/registry-v1") is None
    assert len(client.get_children(f"{url.path}/registry/jobs")) == 200
    assert client.exists(f"{url.path}/registry/gone/ag-2") is not None
    await store.apply([PutJob("job-0", "{}")])
    other = ZooKeeperRegistryStore(contender(client, url), url, writer={"id": "n"},
                                   on_fenced=lambda r: None)
    assert (await other.load()) == PutJob("job-0", "{}").apply(snap)
    ops = [h["ops"] for h in await asyncio.to_thread(read_history, client, url)]
    assert ops[0] == "set-aside-layout-1" and ops[-1] == "elected"


async def test_a_call_against_a_stopped_zookeeper_fails_within_the_timeout(
    tmp_path: Path,
) -> None:
    # Issue 11 item 5: a deposed leader sat in `_resync -> KazooClient.create` for minutes.
    with ZooKeeperCluster(tmp_path / "zk") as own:
        url = parse_zk_url(own.chroot_url())
        client = KazooClient(hosts=own.hosts, timeout=30)
        client.start(timeout=10)
        try:
            store = ZooKeeperRegistryStore(contender(client, url), url, writer={"id": "m"},
                                           on_fenced=lambda r: None, timeout_s=1.5)
            await store.load()
            await store.apply([AdmitAgent(agent(1))])
            own.stop()
            for what in ("write", "resync after the write in doubt"):
                started = time.monotonic()
                with pytest.raises(RegistryError, match="did not answer|failed"):
                    await store.apply([AdmitAgent(agent(2))])
                assert time.monotonic() - started < 4.0, what
                assert store._in_doubt  # noqa: SLF001
            started = time.monotonic()
            with pytest.raises(RegistryError):
                await store.load()
            assert time.monotonic() - started < 4.0 * CLAIM_ATTEMPTS
        finally:
            client.stop()
            client.close()


async def test_the_history_is_trimmed_by_count_and_each_record_is_small(
    zk: tuple[KazooClient, ZkUrl], monkeypatch: pytest.MonkeyPatch,
) -> None:
    client, url = zk
    monkeypatch.setattr(registry_zk, "HISTORY_KEEP", 5)
    monkeypatch.setattr(registry_zk, "TRIM_EVERY", 4)
    store = ZooKeeperRegistryStore(contender(client, url), url, writer={"id": "m"},
                                   on_fenced=lambda r: None)
    await store.load()
    for i in range(8):  # 1 elected + 8 writes; trimmed after the 4th and the 8th
        await store.apply([PutJob(f"job-{i}-{n}", "{}") for n in range(300)])
    history = await asyncio.to_thread(read_history, client, url)
    assert len(history) == 5
    assert [h["version"] for h in history] == list(range(5, 10))
    assert all(len(json.dumps(h)) <= MAX_RECORD_BYTES + 64 for h in history)
    assert history[-1]["ops"] == "PutJob*300" and history[-1]["nkeys"] == 300
    assert 0 < len(history[-1]["keys"]) < 300  # the keys are cut short, not the count


async def test_a_migration_cut_short_is_done_again_and_drops_what_is_too_large(
    zk: tuple[KazooClient, ZkUrl],
) -> None:
    client, url = zk
    snap = RegistrySnapshot()
    for op in (AdmitAgent(agent(1)), PutJob("a", '{"n": 1}'), SetJobsFrameworkId("fw-j")):
        snap = op.apply(snap)
    huge_role = SetRoleWeight("r" * (MAX_OBJECT_BYTES + 1), 2.0)  # as issue 11 item 6 made
    legacy = json.dumps(snapshot_to_doc(huge_role.apply(snap))).encode()
    # As a master that died mid-migration leaves it: layout 1 set aside, some objects
    # written (one stale), no `meta` yet.
    client.create(f"{url.path}/registry", b"", makepath=True)
    client.create(f"{url.path}/registry-v1", legacy)
    client.create(f"{url.path}/registry/jobs/a", b'{"n": 0}', makepath=True)
    stale = encode_object(AdmitAgent(agent(9)).apply(snap), ("agents", "ag-9"))
    client.create(f"{url.path}/registry/agents/ag-9", stale, makepath=True)
    store = ZooKeeperRegistryStore(contender(client, url), url, writer={"id": "m"},
                                   on_fenced=lambda r: None)
    assert await store.load() == snap  # less the role too large to keep (logged)
    assert client.get_children(f"{url.path}/registry/roles") == []
    assert client.get_children(f"{url.path}/registry/agents") == ["ag-1"]
    assert client.get(f"{url.path}/registry/jobs/a")[0] == b'{"n": 1}'
    assert client.exists(f"{url.path}/registry-v1") is None
