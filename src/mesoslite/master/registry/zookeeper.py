"""The HA registry: the snapshot as one znode in ZooKeeper, written by compare-and-set.

Design:
- `PATH/registry` holds the whole `RegistrySnapshot` as JSON (the same contents as the
  SQLite store). Writes are the same command objects (`AdmitAgent`, ...) folded with
  `op.apply(snapshot)`; the new snapshot is written in one ZooKeeper transaction that
  1. checks that this master's election znode still exists (its session is alive),
  2. sets `PATH/registry` only if its version is the one this master last read or wrote,
  3. appends a record to the write history `PATH/log/w-<seq>`: who wrote (master id and
     election epoch), the registry version it produced, the ops, the time.
  A deposed leader's write fails at 1 or 2, so it can never overwrite its successor.
- `load()` is called once on election: it reads the snapshot and claims the registry with
  a write of its own (an `elected` record), so a late write of the previous leader fails
  from then on even before this master writes anything.
- A write refused by 1 or 2 calls `on_fenced(reason)`: this master is no longer the
  leader and must stop. A write that fails otherwise (connection loss) raises
  `RegistryError`, the snapshot in memory is unchanged, and the next write tries again.
- A write whose outcome is unknown (the connection dropped during the commit) leaves the
  store in doubt: before the next write it reads the registry again and, if the newest
  history record is its own, carries on from that version; if another master's, it is
  fenced. So a lost reply does not depose a healthy leader.
- The history keeps the last `HISTORY_KEEP` records (older ones are trimmed on election).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Protocol

from mesoslite.discovery import ZkUrl
from mesoslite.errors import RegistryError
from mesoslite.ids import AgentId
from mesoslite.master.registry.base import (
    MarkAgentGone,
    RegistryOp,
    RegistrySnapshot,
    SetQuota,
    SetReservation,
    SetRoleWeight,
)
from mesoslite.master.registry.sqlite import (
    agent_from_doc,
    agent_to_doc,
    framework_from_doc,
    framework_to_doc,
    role_op_from_doc,
    role_op_to_doc,
)
from mesoslite.resources import format_resources, parse_resources

logger = logging.getLogger(__name__)

HISTORY_KEEP = 1000
CLAIM_ATTEMPTS = 5
# ZooKeeper's default jute.maxbuffer: a znode holds at most about 1 MB.
MAX_REGISTRY_BYTES = 1024 * 1024 - 4096


def snapshot_to_doc(snap: RegistrySnapshot) -> dict[str, Any]:
    return {
        "agents": [agent_to_doc(a) for a in snap.agents.values()],
        "frameworks": [framework_to_doc(f) for f in snap.frameworks.values()],
        "role_weights": dict(snap.role_weights),
        "quotas": {role: role_op_to_doc(SetQuota(role, q))[1] for role, q in snap.quotas.items()},
        "reservations": {
            agent: {role: format_resources(r) for role, r in roles.items()}
            for agent, roles in snap.reservations.items()
        },
        "gone_agents": sorted(snap.gone_agents),
        "jobs": dict(snap.jobs),
        "jobs_framework_id": snap.jobs_framework_id,
    }


def snapshot_from_doc(doc: dict[str, Any]) -> RegistrySnapshot:
    agents = [agent_from_doc(a) for a in doc.get("agents", [])]
    frameworks = [framework_from_doc(f) for f in doc.get("frameworks", [])]
    snap = RegistrySnapshot(
        agents={a.id: a for a in agents}, frameworks={f.id: f for f in frameworks}
    )
    for role, weight in doc.get("role_weights", {}).items():
        snap = SetRoleWeight(role, float(weight)).apply(snap)
    for role, quota in doc.get("quotas", {}).items():
        snap = role_op_from_doc("quota", role, quota).apply(snap)
    for agent, roles in doc.get("reservations", {}).items():
        for role, res in roles.items():
            snap = SetReservation(AgentId(agent), role, parse_resources(res)).apply(snap)
    for agent in doc.get("gone_agents", []):
        snap = MarkAgentGone(AgentId(agent)).apply(snap)
    return replace(
        snap, jobs=dict(doc.get("jobs", {})), jobs_framework_id=doc.get("jobs_framework_id", "")
    )


class ElectionSession(Protocol):
    """What the store needs from the election (`ZooKeeperContender`), read at `load()`."""

    @property
    def client(self) -> Any: ...

    @property
    def node_path(self) -> str: ...

    @property
    def epoch(self) -> int: ...


class ZooKeeperRegistryStore:
    """`Registry` in ZooKeeper; see the module docstring.

    Args:
        session: the election this master won: its kazoo client, its znode (writes require
            that it exists) and its epoch (recorded in the history).
        url: the cluster's ZooKeeper path.
        writer: who writes (`{"id": ..., "address": ...}`), recorded in the history.
        on_fenced: called (on the loop) when a write shows another master has taken over.
    """

    def __init__(
        self,
        session: ElectionSession,
        url: ZkUrl,
        *,
        writer: dict[str, Any],
        on_fenced: Callable[[str], None],
    ) -> None:
        self.session = session
        self.client: Any = None
        self.url = url
        self.writer = writer
        self.fence_path = ""
        self.epoch = 0
        self.on_fenced = on_fenced
        self.path = f"{url.path}/registry"
        self.log_path = f"{url.path}/log"
        self._snapshot = RegistrySnapshot()
        self._version = -1
        self._in_doubt = False

    async def load(self) -> RegistrySnapshot:
        self.client = self.session.client
        self.fence_path = self.session.node_path
        self.epoch = self.session.epoch
        for _ in range(CLAIM_ATTEMPTS):
            snap, version = await asyncio.to_thread(self._read)
            self._snapshot, self._version = snap, version
            try:
                await asyncio.to_thread(self._write, snap, "elected")
            except _Conflict as e:
                # The previous leader was still writing as we read: read again.
                logger.warning("registry changed while claiming it: %s; reading again", e)
                continue
            await asyncio.to_thread(self._trim_history)
            return snap
        raise RegistryError(f"cannot claim the registry at {self.path}: it keeps changing")

    async def apply(self, ops: list[RegistryOp]) -> None:
        kinds = ",".join(type(op).__name__ for op in ops)
        try:
            if self._in_doubt:
                await asyncio.to_thread(self._resync)
            snap = self._snapshot
            for op in ops:
                snap = op.apply(snap)
            await asyncio.to_thread(self._write, snap, kinds)
        except _Conflict as e:
            self.on_fenced(str(e))
            raise RegistryError(f"registry write refused, another master leads: {e}") from None
        self._snapshot = snap

    async def close(self) -> None:
        return None  # the client belongs to the contender

    async def history(self) -> list[dict[str, Any]]:
        """The write history, oldest first (for tests and operators)."""
        return await asyncio.to_thread(read_history, self.client, self.url)

    # ------------------------------------------------------------------ in a thread

    def _read(self) -> tuple[RegistrySnapshot, int]:
        from kazoo.exceptions import NodeExistsError

        empty = json.dumps(snapshot_to_doc(RegistrySnapshot())).encode()
        try:
            self.client.create(self.path, empty, makepath=True)
        except NodeExistsError:
            pass
        self.client.ensure_path(self.log_path)
        data, stat = self.client.get(self.path)
        try:
            doc = json.loads(data.decode()) if data else {}
            snap = snapshot_from_doc(doc)
        except (ValueError, KeyError, TypeError) as e:
            raise RegistryError(f"registry {self.path} is malformed: {e}") from None
        return snap, int(stat.version)

    def _write(self, snap: RegistrySnapshot, ops: str) -> None:
        from kazoo.exceptions import BadVersionError, NoNodeError

        data = json.dumps(snapshot_to_doc(snap), sort_keys=True).encode()
        if len(data) > MAX_REGISTRY_BYTES:
            raise RegistryError(
                f"registry would be {len(data)} bytes, over ZooKeeper's {MAX_REGISTRY_BYTES}"
            )
        record = {
            "writer": self.writer.get("id", ""),
            "address": self.writer.get("address", ""),
            "epoch": self.epoch,
            "version": self._version + 1,
            "ops": ops,
            "time": time.time(),
        }
        tx = self.client.transaction()
        tx.check(self.fence_path, 0)
        tx.set_data(self.path, data, self._version)
        tx.create(f"{self.log_path}/w-", json.dumps(record).encode(), sequence=True)
        try:
            results = tx.commit()
        except Exception as e:
            self._in_doubt = True
            raise RegistryError(f"registry write failed: {type(e).__name__}: {e}") from None
        failures = [r for r in results if isinstance(r, Exception)]
        if failures:
            if isinstance(results[0], NoNodeError):
                raise _Conflict(f"our election znode {self.fence_path} is gone")
            if isinstance(results[1], BadVersionError):
                raise _Conflict(
                    f"registry version is no longer {self._version}: another master wrote it"
                )
            raise RegistryError(f"registry write failed: {failures[0]!r}")
        self._version = int(results[1].version)

    def _resync(self) -> None:
        """After a write in doubt: take the registry as it is if we were its last writer."""
        try:
            snap, version = self._read()
            history = read_history(self.client, self.url, last=1)
        except RegistryError:
            raise
        except Exception as e:
            raise RegistryError(f"registry read failed: {type(e).__name__}: {e}") from None
        last = history[-1] if history else {}
        if last.get("writer") != self.writer.get("id", "") or last.get("epoch") != self.epoch:
            raise _Conflict(
                f"the registry was last written by {last.get('writer') or 'nobody'} "
                f"(epoch {last.get('epoch')}), not by this master"
            )
        logger.warning("registry write was in doubt; carrying on from version=%d", version)
        self._snapshot, self._version, self._in_doubt = snap, version, False

    def _trim_history(self) -> None:
        from kazoo.exceptions import NoNodeError

        children = sorted(self.client.get_children(self.log_path))
        for name in children[: max(0, len(children) - HISTORY_KEEP)]:
            try:
                self.client.delete(f"{self.log_path}/{name}")
            except NoNodeError:
                pass


class _Conflict(Exception):
    """Another master has taken the registry over (or our session is gone)."""


def read_history(client: Any, url: ZkUrl, last: int = 0) -> list[dict[str, Any]]:
    """Blocking: the registry's write history under `url`, oldest first (the `last` newest
    records only, if given)."""
    from kazoo.exceptions import NoNodeError

    log_path = f"{url.path}/log"
    try:
        names = sorted(client.get_children(log_path))
    except NoNodeError:
        return []
    if last:
        names = names[-last:]
    out = []
    for name in names:
        try:
            data, stat = client.get(f"{log_path}/{name}")
        except NoNodeError:
            continue
        record = json.loads(data.decode())
        record["seq"] = name
        record["ctime"] = stat.ctime / 1000.0
        out.append(record)
    return out
