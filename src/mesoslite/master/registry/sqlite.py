"""The standalone registry: SQLite in the master's work dir, written off the event loop."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

from mesoslite.allocator.base import Quota
from mesoslite.errors import RegistryError
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
from mesoslite.model import AgentInfo, FrameworkInfo
from mesoslite.resources import Resources, format_resources, parse_resources

SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    doc TEXT NOT NULL,
    PRIMARY KEY (kind, id)
);
"""


def role_op_to_doc(op: SetRoleWeight | SetQuota) -> tuple[str, dict[str, Any]]:
    if isinstance(op, SetRoleWeight):
        return "role_weight", {"weight": op.weight}
    limit = op.quota.limit
    return "quota", {
        "guarantee": format_resources(op.quota.guarantee),
        "limit": None if limit is None else format_resources(limit),
    }


def role_op_from_doc(kind: str, role: str, doc: dict[str, Any]) -> SetRoleWeight | SetQuota:
    if kind == "role_weight":
        return SetRoleWeight(role, float(doc["weight"]))
    guarantee = parse_resources(doc["guarantee"]) if doc["guarantee"] else Resources.empty()
    limit = None
    if doc["limit"] is not None:
        limit = parse_resources(doc["limit"]) if doc["limit"] else Resources.empty()
    return SetQuota(role, Quota(guarantee, limit))


def agent_to_doc(info: AgentInfo) -> dict[str, Any]:
    return {
        "id": info.id,
        "hostname": info.hostname,
        "resources": format_resources(info.resources),
        "attributes": dict(info.attributes),
        "version": info.version,
        "address": info.address,
        "reserved": {role: format_resources(r) for role, r in info.reserved.items()},
    }


def agent_from_doc(doc: dict[str, Any]) -> AgentInfo:
    return AgentInfo(
        id=AgentId(doc["id"]),
        hostname=doc["hostname"],
        resources=parse_resources(doc["resources"]),
        attributes=doc.get("attributes", {}),
        version=doc.get("version", ""),
        address=doc.get("address", ""),
        reserved={role: parse_resources(r) for role, r in doc.get("reserved", {}).items()},
    )


def framework_to_doc(info: FrameworkInfo) -> dict[str, Any]:
    return {
        "id": info.id,
        "name": info.name,
        "role": info.role,
        "roles": list(info.roles),
        "user": info.user,
        "failover_timeout_s": info.failover_timeout_s,
        "hostname": info.hostname,
        "principal": info.principal,
        "labels": dict(info.labels),
    }


def framework_from_doc(doc: dict[str, Any]) -> FrameworkInfo:
    return FrameworkInfo(
        id=FrameworkId(doc["id"]),
        name=doc["name"],
        role=doc.get("role", "*"),
        roles=tuple(doc.get("roles", ())),  # docs before several roles have none
        user=doc.get("user", ""),
        failover_timeout_s=float(doc.get("failover_timeout_s", 0.0)),
        hostname=doc.get("hostname", ""),
        principal=doc.get("principal", ""),
        labels=doc.get("labels", {}),
    )


class SqliteRegistryStore:
    """`Registry` backed by one SQLite file; each `apply` is one transaction."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._conn: sqlite3.Connection | None = None

    def _open(self) -> sqlite3.Connection:
        if self._conn is None:
            try:
                self._path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=FULL")
                conn.executescript(SCHEMA)
            except (OSError, sqlite3.Error) as e:
                raise RegistryError(f"cannot open registry {self._path}: {e}") from None
            self._conn = conn
        return self._conn

    def _load(self) -> RegistrySnapshot:
        conn = self._open()
        agents: dict[AgentId, AgentInfo] = {}
        frameworks: dict[FrameworkId, FrameworkInfo] = {}
        roles: list[
            SetRoleWeight | SetQuota | SetReservation | MarkAgentGone | PutJob
            | SetJobsFrameworkId
        ] = []
        for kind, _id, doc in conn.execute("SELECT kind, id, doc FROM entries"):
            # Job documents are the jobs framework's own JSON, kept as text.
            data = doc if kind in ("job", "jobs_framework") else json.loads(doc)
            if kind == "agent":
                info = agent_from_doc(data)
                agents[info.id] = info
            elif kind == "framework":
                fw = framework_from_doc(data)
                frameworks[fw.id] = fw
            elif kind in ("role_weight", "quota"):
                roles.append(role_op_from_doc(kind, _id, data))
            elif kind == "gone":
                roles.append(MarkAgentGone(AgentId(_id)))
            elif kind == "job":
                roles.append(PutJob(_id, data))
            elif kind == "jobs_framework":
                roles.append(SetJobsFrameworkId(data))
            elif kind == "reservation":
                for role, res in data.items():
                    roles.append(SetReservation(AgentId(_id), role, parse_resources(res)))
        snap = RegistrySnapshot(agents=agents, frameworks=frameworks)
        for op in roles:
            snap = op.apply(snap)
        return snap

    def _apply(self, ops: list[RegistryOp]) -> None:
        conn = self._open()
        try:
            conn.execute("BEGIN")
            for op in ops:
                if isinstance(op, AdmitAgent):
                    conn.execute(
                        "INSERT OR REPLACE INTO entries VALUES ('agent', ?, ?)",
                        (op.info.id, json.dumps(agent_to_doc(op.info))),
                    )
                elif isinstance(op, MarkAgentGone):
                    conn.execute(
                        "DELETE FROM entries WHERE kind IN ('agent', 'reservation') AND id=?",
                        (op.agent_id,),
                    )
                    conn.execute(
                        "INSERT OR REPLACE INTO entries VALUES ('gone', ?, '{}')", (op.agent_id,)
                    )
                elif isinstance(op, RemoveAgent):
                    conn.execute("DELETE FROM entries WHERE kind='agent' AND id=?", (op.agent_id,))
                elif isinstance(op, AddFramework):
                    conn.execute(
                        "INSERT OR REPLACE INTO entries VALUES ('framework', ?, ?)",
                        (op.info.id, json.dumps(framework_to_doc(op.info))),
                    )
                elif isinstance(op, RemoveFramework):
                    conn.execute(
                        "DELETE FROM entries WHERE kind='framework' AND id=?", (op.framework_id,)
                    )
                elif isinstance(op, SetReservation):
                    # One row per agent: {role: resources}, rewritten whole.
                    row = conn.execute(
                        "SELECT doc FROM entries WHERE kind='reservation' AND id=?",
                        (op.agent_id,),
                    ).fetchone()
                    doc = json.loads(row[0]) if row else {}
                    doc.pop(op.role, None)
                    if not op.resources.is_empty():
                        doc[op.role] = format_resources(op.resources)
                    conn.execute(
                        "DELETE FROM entries WHERE kind='reservation' AND id=?", (op.agent_id,)
                    )
                    if doc:
                        conn.execute(
                            "INSERT INTO entries VALUES ('reservation', ?, ?)",
                            (op.agent_id, json.dumps(doc)),
                        )
                elif isinstance(op, SetRoleWeight | SetQuota):
                    # Kept as the op itself: loading replays it through `apply`.
                    kind, doc = role_op_to_doc(op)
                    conn.execute("DELETE FROM entries WHERE kind=? AND id=?", (kind, op.role))
                    conn.execute(
                        "INSERT INTO entries VALUES (?, ?, ?)", (kind, op.role, json.dumps(doc))
                    )
                elif isinstance(op, PutJob):
                    conn.execute(
                        "INSERT OR REPLACE INTO entries VALUES ('job', ?, ?)", (op.name, op.doc)
                    )
                elif isinstance(op, RemoveJob):
                    conn.execute("DELETE FROM entries WHERE kind='job' AND id=?", (op.name,))
                elif isinstance(op, SetJobsFrameworkId):
                    conn.execute(
                        "INSERT OR REPLACE INTO entries VALUES ('jobs_framework', '', ?)",
                        (op.framework_id,),
                    )
            conn.execute("COMMIT")
        except sqlite3.Error as e:
            conn.execute("ROLLBACK")
            raise RegistryError(f"registry write failed: {e}") from None

    async def load(self) -> RegistrySnapshot:
        return await asyncio.to_thread(self._load)

    async def apply(self, ops: list[RegistryOp]) -> None:
        await asyncio.to_thread(self._apply, ops)

    async def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
