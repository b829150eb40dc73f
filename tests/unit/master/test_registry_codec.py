"""The ZooKeeper registry's JSON keeps every field of the snapshot (same contents as SQLite)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from mesoslite.ids import AgentId, FrameworkId
from mesoslite.master.registry.base import (
    AddFramework,
    AdmitAgent,
    MarkAgentGone,
    PutJob,
    RegistrySnapshot,
    RemoveAgent,
    RemoveJob,
    SetJobsFrameworkId,
)
from mesoslite.master.registry.sqlite import SqliteRegistryStore
from mesoslite.master.registry.zookeeper import snapshot_from_doc, snapshot_to_doc
from mesoslite.model import AgentInfo, FrameworkInfo
from mesoslite.resources import parse_resources


def test_zk_registry_doc_covers_every_snapshot_field() -> None:
    # A new field in RegistrySnapshot (quota, weights, ...) must be added to the codec.
    fields = {f.name for f in dataclasses.fields(RegistrySnapshot)}
    assert fields == set(snapshot_to_doc(RegistrySnapshot()))


def test_zk_registry_doc_round_trips_what_the_write_commands_built() -> None:
    agent = AgentInfo(
        id=AgentId("ag-1"), hostname="h1", resources=parse_resources("cpus:2;mem:512"),
        attributes={"rack": "r1"}, version="0.1.0", address="10.0.0.1:5051",
    )
    gone = AgentInfo(id=AgentId("ag-2"), hostname="h2", resources=parse_resources("cpus:1"))
    fw = FrameworkInfo(
        id=FrameworkId("fw-1"), name="f", role="eng", user="u", failover_timeout_s=30.0,
        labels={"k": "v"}, partition_aware=True,
    )
    snap = RegistrySnapshot()
    ops = (AdmitAgent(agent), AdmitAgent(gone), AddFramework(fw), RemoveAgent(gone.id),
           AdmitAgent(gone), MarkAgentGone(gone.id))
    for op in ops:
        snap = op.apply(snap)
    back = snapshot_from_doc(snapshot_to_doc(snap))
    assert back == snap
    assert back.gone_agents == {gone.id} and gone.id not in back.agents


def test_job_documents_round_trip_through_zookeeper_json() -> None:
    snap = RegistrySnapshot()
    for op in (PutJob("a", '{"x": 1}'), PutJob("b", "{}"), RemoveJob("b"),
               SetJobsFrameworkId("fw-jobs")):
        snap = op.apply(snap)
    back = snapshot_from_doc(snapshot_to_doc(snap))
    assert back == snap
    assert back.jobs == {"a": '{"x": 1}'} and back.jobs_framework_id == "fw-jobs"


async def test_job_documents_round_trip_through_sqlite(tmp_path: Path) -> None:
    store = SqliteRegistryStore(tmp_path / "r.sqlite")
    await store.apply([PutJob("a", '{"x": 1}'), PutJob("b", "{}"), SetJobsFrameworkId("fw-j")])
    await store.apply([RemoveJob("b"), PutJob("a", '{"x": 2}')])
    await store.close()
    snap = await SqliteRegistryStore(tmp_path / "r.sqlite").load()
    assert snap.jobs == {"a": '{"x": 2}'} and snap.jobs_framework_id == "fw-j"
