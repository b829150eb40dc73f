"""The standalone registry: SQLite in the master's work dir, a row per object.

Table `objects(kind, key, doc)` holds the same records as the ZooKeeper layout
(`mesoslite.master.registry.codec`). An `apply` folds its ops with `op.apply`, then writes
only the rows whose records changed, in one transaction, off the event loop. A file in
the first format (table `entries`, kinds `agent`, `role_weight`, `quota`, ...) is read and
rewritten in this one on `load()`, in one transaction.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from pathlib import Path

from mesoslite.errors import RegistryError
from mesoslite.ids import AgentId
from mesoslite.master.registry.base import (
    META,
    AddFramework,
    AdmitAgent,
    MarkAgentGone,
    PutJob,
    RegistryOp,
    RegistrySnapshot,
    SetJobsFrameworkId,
    SetReservation,
)
from mesoslite.master.registry.codec import (
    Changes,
    agent_from_doc,
    agent_to_doc,
    decode_objects,
    encode_object,
    framework_from_doc,
    framework_to_doc,
    migrate,
    plan_write,
    role_op_from_doc,
    role_op_to_doc,
)
from mesoslite.resources import parse_resources

# The records' JSON lives in `codec`; these names stay importable from here.
logger = logging.getLogger(__name__)

__all__ = [
    "SqliteRegistryStore", "agent_from_doc", "agent_to_doc", "framework_from_doc",
    "framework_to_doc", "role_op_from_doc", "role_op_to_doc",
]

SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    doc BLOB NOT NULL,
    PRIMARY KEY (kind, key)
);
"""


def _load_legacy(conn: sqlite3.Connection) -> RegistrySnapshot:
    """Read the first format: table `entries(kind, id, doc)`, replayed through the ops."""
    snap = RegistrySnapshot()
    for kind, _id, doc in conn.execute("SELECT kind, id, doc FROM entries"):
        # Job documents and the jobs framework id were kept as plain text.
        data = doc if kind in ("job", "jobs_framework") else json.loads(doc)
        if kind == "agent":
            snap = AdmitAgent(agent_from_doc(data)).apply(snap)
        elif kind == "framework":
            snap = AddFramework(framework_from_doc(data)).apply(snap)
        elif kind in ("role_weight", "quota"):
            snap = role_op_from_doc(kind, _id, data).apply(snap)
        elif kind == "gone":
            snap = MarkAgentGone(AgentId(_id)).apply(snap)
        elif kind == "job":
            snap = PutJob(_id, data).apply(snap)
        elif kind == "jobs_framework":
            snap = SetJobsFrameworkId(data).apply(snap)
        elif kind == "reservation":
            for role, res in data.items():
                snap = SetReservation(AgentId(_id), role, parse_resources(res)).apply(snap)
    return snap


def _write(conn: sqlite3.Connection, changes: Changes) -> None:
    for (kind, key), data in changes.items():
        if data is None:
            conn.execute("DELETE FROM objects WHERE kind=? AND key=?", (kind, key))
        else:
            conn.execute("INSERT OR REPLACE INTO objects VALUES (?, ?, ?)", (kind, key, data))


class SqliteRegistryStore:
    """`Registry` backed by one SQLite file; each `apply` is one transaction."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._conn: sqlite3.Connection | None = None
        self._snapshot: RegistrySnapshot | None = None

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
        try:
            self._migrate(conn)
            rows = conn.execute("SELECT kind, key, doc FROM objects").fetchall()
        except sqlite3.Error as e:
            raise RegistryError(f"cannot read registry {self._path}: {e}") from None
        try:
            snap = decode_objects(((kind, key), bytes(doc)) for kind, key, doc in rows)
        except (ValueError, KeyError, TypeError) as e:
            raise RegistryError(f"registry {self._path} is malformed: {e}") from None
        self._snapshot = snap
        return snap

    def _migrate(self, conn: sqlite3.Connection) -> None:
        """Rewrite a first-format file (`entries`) as rows per object, in one transaction."""
        legacy = "SELECT 1 FROM sqlite_master WHERE type='table' AND name='entries'"
        if conn.execute(legacy).fetchone() is None:
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            snap = _load_legacy(conn)
            current = decode_objects(
                ((k, key), bytes(d)) for k, key, d in conn.execute("SELECT * FROM objects")
            )
            snap, changes, dropped = migrate(current, snap)
            for reason in dropped:
                logger.error("registry object not migrated: %s", reason)
            changes[(META, "")] = encode_object(snap, (META, ""))
            _write(conn, changes)
            conn.execute("DROP TABLE entries")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _apply(self, ops: list[RegistryOp]) -> None:
        snap = self._snapshot if self._snapshot is not None else self._load()
        after, changes = plan_write(snap, ops)  # may refuse an object: nothing written
        conn = self._open()
        try:
            conn.execute("BEGIN")
            _write(conn, changes)
            conn.execute("COMMIT")
        except sqlite3.Error as e:
            conn.execute("ROLLBACK")
            raise RegistryError(f"registry write failed: {e}") from None
        self._snapshot = after

    async def load(self) -> RegistrySnapshot:
        return await asyncio.to_thread(self._load)

    async def apply(self, ops: list[RegistryOp]) -> None:
        await asyncio.to_thread(self._apply, ops)

    async def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
