"""The registry as a record per object: ops name what they change, writes are diffs,
oversized objects are refused, and the first SQLite format is migrated (issue 11)."""

from __future__ import annotations

import json
import secrets
import sqlite3
from pathlib import Path

import pytest

from mesoslite.allocator.base import Quota
from mesoslite.errors import ValidationError
from mesoslite.ids import AgentId, FrameworkId
from mesoslite.master.registry.base import (
    AddFramework,
    AdmitAgent,
    MarkAgentGone,
    PutJob,
    RegistryOp,
    RegistrySnapshot,
    RemoveAgent,
    RemoveFramework,
    RemoveJob,
    SetJobsFrameworkId,
    SetQuota,
    SetReservation,
    SetRoleWeight,
)
from mesoslite.master.registry.codec import (
    MAX_OBJECT_BYTES,
    all_keys,
    decode_objects,
    diff,
    encode_object,
    plan_write,
)
from mesoslite.master.registry.sqlite import SqliteRegistryStore
from mesoslite.model import AgentInfo, FrameworkInfo
from mesoslite.resources import parse_resources as R


def agent(n: int) -> AgentInfo:
    return AgentInfo(id=AgentId(f"ag-{n}"), hostname=f"h{n}", resources=R("cpus:2;mem:512"),
                     attributes={"rack": "r1"})


FW = FrameworkInfo(id=FrameworkId("fw-1"), name="f", role="eng/ml", labels={"k": "v"})

OPS: list[RegistryOp] = [
    AdmitAgent(agent(1)), AdmitAgent(agent(2)), AddFramework(FW),
    SetRoleWeight("eng/ml", 2.0), SetQuota("eng/ml", Quota(R("cpus:1"), R("cpus:4"))),
    SetQuota("ops", Quota(R("cpus:1"), None)),
    SetReservation(AgentId("ag-1"), "eng/ml", R("cpus:1")),
    SetReservation(AgentId("ag-2"), "ops", R("mem:64")), PutJob("a", '{"x": 1}'), PutJob("b", "{}"),
    SetJobsFrameworkId("fw-jobs"), MarkAgentGone(AgentId("ag-2")), RemoveJob("b"),
    SetRoleWeight("eng/ml", 1.0), SetQuota("ops", Quota(R(""), None)), RemoveAgent(AgentId("ag-9")),
    SetReservation(AgentId("ag-1"), "eng/ml", R("")), RemoveFramework(FrameworkId("fw-1")),
    PutJob("a", '{"x": 2}'),
]


def test_each_op_names_every_object_it_changes() -> None:
    # Diffing only `op.keys()` must find every record that a diff of all objects finds:
    # otherwise a store would silently not write a change.
    snap = RegistrySnapshot()
    for op in OPS:
        after = op.apply(snap)
        everything = diff(snap, after, [*all_keys(snap), *all_keys(after)])
        assert diff(snap, after, op.keys()) == everything, type(op).__name__
        snap = after


def test_the_records_of_a_snapshot_decode_to_the_same_snapshot() -> None:
    snap = RegistrySnapshot()
    for op in OPS[:12]:
        snap = op.apply(snap)
    records = [(k, encode_object(snap, k)) for k in all_keys(snap)]
    assert decode_objects((k, d) for k, d in records if d is not None) == snap


def test_a_write_of_one_job_changes_only_that_jobs_record() -> None:
    snap, _ = plan_write(RegistrySnapshot(), OPS[:11])
    after, changes = plan_write(snap, [PutJob("a", '{"x": 3}'), AdmitAgent(agent(1))])
    assert changes == {("jobs", "a"): b'{"x": 3}'}  # agent 1 is unchanged: not written
    assert after.jobs["a"] == '{"x": 3}'


def test_an_object_over_the_limit_is_refused_naming_it() -> None:
    with pytest.raises(ValidationError, match=r"registry\.roles\['rrrr.*per object") as e:
        plan_write(RegistrySnapshot(), [SetRoleWeight("r" * MAX_OBJECT_BYTES, 2.0)])
    assert len(str(e.value)) < 300  # names the object without echoing it whole


async def test_sqlite_writes_only_the_rows_that_changed(tmp_path: Path) -> None:
    store = SqliteRegistryStore(tmp_path / "r.sqlite")
    await store.apply(OPS[:11])
    statements: list[str] = []
    assert store._conn is not None  # noqa: SLF001
    store._conn.set_trace_callback(statements.append)  # noqa: SLF001
    await store.apply([PutJob("a", '{"x": 3}'), AdmitAgent(agent(1))])
    writes = [s for s in statements if s.startswith(("INSERT", "DELETE"))]
    assert len(writes) == 1 and "objects VALUES ('jobs', 'a', " in writes[0], writes
    await store.close()


async def test_sqlite_refuses_an_oversized_object_and_changes_nothing(tmp_path: Path) -> None:
    store = SqliteRegistryStore(tmp_path / "r.sqlite")
    await store.apply([PutJob("a", "{}")])
    with pytest.raises(ValidationError, match=r"registry\.jobs\['big'\]"):
        big = secrets.token_hex(2 * MAX_OBJECT_BYTES)  # hex: compresses to half at best
        await store.apply([PutJob("b", "{}"), PutJob("big", big)])
    await store.close()
    assert (await SqliteRegistryStore(tmp_path / "r.sqlite").load()).jobs == {"a": "{}"}


async def test_sqlite_store_reads_what_it_wrote(tmp_path: Path) -> None:
    store = SqliteRegistryStore(tmp_path / "r.sqlite")
    await store.apply(OPS)
    await store.close()
    expected = RegistrySnapshot()
    for op in OPS:
        expected = op.apply(expected)
    assert await SqliteRegistryStore(tmp_path / "r.sqlite").load() == expected


async def test_a_first_format_sqlite_file_is_migrated_on_load(tmp_path: Path) -> None:
    # The format before issue 11: table `entries(kind, id, doc)` with these kinds.
    path = tmp_path / "registry.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE entries (kind TEXT NOT NULL, id TEXT NOT NULL, doc TEXT NOT NULL,"
                 " PRIMARY KEY (kind, id))")
    a1 = {"id": "ag-1", "hostname": "h1", "resources": "cpus:2;mem:512",
          "attributes": {"rack": "r1"}, "version": "", "address": "", "reserved": {}}
    rows = [
        ("agent", "ag-1", json.dumps(a1)),
        ("framework", "fw-1", json.dumps({"id": "fw-1", "name": "f", "role": "eng/ml"})),
        ("role_weight", "eng/ml", json.dumps({"weight": 2.0})),
        ("quota", "eng/ml", json.dumps({"guarantee": "cpus:1", "limit": "cpus:4"})),
        ("reservation", "ag-1", json.dumps({"eng/ml": "cpus:1"})),
        ("gone", "ag-2", "{}"),
        ("job", "a", '{"x": 1}'),
        ("jobs_framework", "", "fw-jobs"),
        ("role_weight", "r" * MAX_OBJECT_BYTES, json.dumps({"weight": 3.0})),  # dropped
    ]
    conn.executemany("INSERT INTO entries VALUES (?, ?, ?)", rows)
    conn.commit()
    conn.close()

    snap = await SqliteRegistryStore(path).load()
    assert snap.agents[AgentId("ag-1")].attributes == {"rack": "r1"}
    assert snap.frameworks[FrameworkId("fw-1")].role == "eng/ml"
    assert snap.role_weights == {"eng/ml": 2.0}  # not the role too large to keep
    assert snap.quotas == {"eng/ml": Quota(R("cpus:1"), R("cpus:4"))}
    assert snap.reservations == {AgentId("ag-1"): {"eng/ml": R("cpus:1")}}
    assert snap.gone_agents == {AgentId("ag-2")}
    assert snap.jobs == {"a": '{"x": 1}'} and snap.jobs_framework_id == "fw-jobs"
    conn = sqlite3.connect(path)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    kinds = {r[0] for r in conn.execute("SELECT DISTINCT kind FROM objects")}
    conn.close()
    assert tables == {"objects"}
    assert kinds == {"agents", "frameworks", "roles", "reservations", "gone", "jobs", "meta"}
    assert await SqliteRegistryStore(path).load() == snap  # and it reads the same again


def test_a_large_job_document_is_stored_compressed_and_reads_back_the_same() -> None:
    doc = json.dumps({"instances": [{"index": i, "state": "SUCCEEDED"} for i in range(3000)]})
    snap = PutJob("big", doc).apply(RegistrySnapshot())
    record = encode_object(snap, ("jobs", "big"))
    assert record is not None and len(record) < len(doc) / 5
    small = PutJob("x", "x" * 100).apply(snap)  # a plain document is never taken for zlib
    assert decode_objects([(("jobs", "big"), record), (("jobs", "x"), b"x" * 100)]) == small
