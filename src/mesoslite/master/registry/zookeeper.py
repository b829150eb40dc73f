"""The HA registry in ZooKeeper: a znode per object, written in fenced transactions.

Layout (under the cluster's path `PATH`):
- `PATH/registry`: the head. Empty; its version is the registry's version.
- `PATH/registry/{agents,frameworks,roles,reservations,gone,jobs}/<key>`: one znode per
  object, holding its record (`mesoslite.master.registry.codec`; keys are %-quoted).
- `PATH/registry/meta`: the jobs framework id and the layout version. It is written last
  when a layout is created, so its presence means the layout is complete.
- `PATH/log/w-<seq>`: the write history (who, epoch, version, op kinds and object keys,
  never contents; at most `MAX_RECORD_BYTES` each, the newest `HISTORY_KEEP` kept).

A write folds its ops with `op.apply` and writes, in one transaction, only the objects
whose records changed. The transaction
  1. checks that this master's election znode still exists (its session is alive),
  2. sets the head only if its version is the one this master last read or wrote,
  3. creates, sets or deletes the changed objects' znodes,
  4. appends a history record.
A deposed leader's write fails at 1 or 2, so it can never overwrite its successor. An
object over `MAX_OBJECT_BYTES` is refused before anything is written; a write larger than
`MAX_TX_BYTES` is split into several transactions, each fenced the same way (a failure
between them leaves the write in doubt, see below).

- `load()` (on election) reads every object and claims the registry with a write of its
  own (an `elected` record), so a late write of the previous leader fails from then on.
  A standby that ran `keep_warm()` has followed the registry while it waited
  (`registry.standby`): its `load()` is the claim alone, made at the version it followed,
  and falls back to the full read if the registry moved on meanwhile (#15).
  A layout-1 registry (the whole snapshot as JSON in `PATH/registry`) is first copied to
  `PATH/registry-v1`, written out as objects, and `registry-v1` is deleted by the claim.
- A write refused by 1 or 2 calls `on_fenced(reason)`: this master must stop. A write that
  fails otherwise raises `RegistryError` and leaves the store in doubt: before the next
  write it reads the registry again and, if the newest history record is its own, carries
  on from there; if another master's, it is fenced.
- A write that changes no object (a framework re-subscribing as it was) writes nothing.
- Every call is bounded (`BoundedCalls`): no `load`, write, resync or trim waits past
  `timeout_s` (default: the election's session timeout) for ZooKeeper.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from mesoslite.discovery import ZkUrl
from mesoslite.errors import RegistryError
from mesoslite.master.registry.base import (
    KINDS,
    META,
    ObjectKey,
    RegistryOp,
    RegistrySnapshot,
)
from mesoslite.master.registry.bounded import BoundedCalls
from mesoslite.master.registry.codec import (
    Changes,
    decode_objects,
    describe_ops,
    encode_object,
    migrate,
    plan_write,
    snapshot_from_doc,
    snapshot_to_doc,
)
from mesoslite.master.registry.layout import object_path, read_objects
from mesoslite.master.registry.standby import MirrorView, RegistryMirror

logger = logging.getLogger(__name__)

__all__ = [
    "ZooKeeperRegistryStore", "read_history", "snapshot_from_doc", "snapshot_to_doc",
]

HISTORY_KEEP = 500
MAX_RECORD_BYTES = 1024
# So the history holds at most HISTORY_KEEP * MAX_RECORD_BYTES (512 KB) whatever is written.
TRIM_EVERY = 100
CLAIM_ATTEMPTS = 5
# A transaction is one ZooKeeper request: well under jute.maxbuffer (1 MB), and no larger
# than one object, which bounds ZooKeeper's memory (see `codec.MAX_OBJECT_BYTES`).
MAX_TX_BYTES = 256 * 1024
MAX_TX_OPS = 1000
DEFAULT_TIMEOUT_S = 10.0


class ElectionSession(Protocol):
    """What the store needs from the election (`ZooKeeperContender`), read at `load()`."""

    @property
    def client(self) -> Any: ...

    @property
    def node_path(self) -> str: ...

    @property
    def epoch(self) -> int: ...


@dataclass(frozen=True, slots=True)
class _Write:
    path: str
    data: bytes | None  # None: delete
    exists: bool
    label: str  # `kind/key`, for the history

    @property
    def size(self) -> int:
        return len(self.path) + len(self.data or b"") + 64


class ZooKeeperRegistryStore:
    """`Registry` in ZooKeeper; see the module docstring.

    Args:
        session: the election this master won: its kazoo client, its znode (writes require
            that it exists) and its epoch (recorded in the history).
        url: the cluster's ZooKeeper path.
        writer: who writes (`{"id": ..., "address": ...}`), recorded in the history.
        on_fenced: called (on the loop) when a write shows another master has taken over.
        timeout_s: the longest any registry operation waits for ZooKeeper; by default the
            session's `session_timeout_s`, else 10 s.
    """

    def __init__(
        self,
        session: ElectionSession,
        url: ZkUrl,
        *,
        writer: dict[str, Any],
        on_fenced: Callable[[str], None],
        timeout_s: float | None = None,
    ) -> None:
        self.session = session
        self.client: Any = None
        self.url = url
        self.writer = writer
        self.fence_path = ""
        self.epoch = 0
        self.on_fenced = on_fenced
        self.timeout_s = float(
            timeout_s or getattr(session, "session_timeout_s", None) or DEFAULT_TIMEOUT_S
        )
        self.path = f"{url.path}/registry"
        self.log_path = f"{url.path}/log"
        self.legacy_path = f"{url.path}/registry-v1"
        self._zk: BoundedCalls | None = None
        self._snapshot = RegistrySnapshot()
        self._version = -1
        self._in_doubt = False
        self._writes = 0
        self._mirror: RegistryMirror | None = None
        self._loading = False  # `keep_warm` starts no mirror once `load` began
        self._trim: asyncio.Future[None] | None = None
        # How the last `load()` went: "warm" (claim only) or "cold" (read, then claim).
        self.loaded_from = ""

    async def keep_warm(self) -> None:
        """Follow the registry while this master is a standby, so that `load()` is a claim
        (`registry.standby`). Returns when `load()` begins; cancel it to stop earlier."""
        while self.session.client is None:  # the election has not connected yet
            if self._loading:
                return
            await asyncio.sleep(0.05)
        if self._loading:
            return
        self._mirror = RegistryMirror(
            self.path, self.log_path, self.legacy_path, self.session.client, self.timeout_s
        )
        await self._mirror.run()

    async def load(self) -> RegistrySnapshot:
        self._loading = True
        self.client = self.session.client
        self.fence_path = self.session.node_path
        self.epoch = self.session.epoch
        self._zk = BoundedCalls(self.client, self.timeout_s)
        started = time.monotonic()
        mirror, self._mirror = self._mirror, None
        view = await mirror.stop() if mirror is not None else None
        snap = await self._claim_or_read(view)
        logger.info(
            "registry claimed from=%s version=%d in %.0f ms", self.loaded_from, self._version,
            (time.monotonic() - started) * 1000,
        )
        self._trim = asyncio.ensure_future(
            asyncio.to_thread(self._trim_history, self.zk.deadline(), True)
        )
        return snap

    async def _claim_or_read(self, view: MirrorView | None) -> RegistrySnapshot:
        if view is not None:
            try:
                snap = await asyncio.to_thread(self._claim, view)
                self.loaded_from = "warm"
                return snap
            except _Conflict as e:
                logger.info("registry moved on since this standby followed it (%s): reading it", e)
        for _ in range(CLAIM_ATTEMPTS):
            try:
                snap = await asyncio.to_thread(self._load)
                self.loaded_from = "cold"
                return snap
            except _Conflict as e:
                # The previous leader was still writing as we read: read again.
                logger.warning("registry changed while claiming it: %s; reading again", e)
        raise RegistryError(f"cannot claim the registry at {self.path}: it keeps changing")

    async def apply(self, ops: list[RegistryOp]) -> None:
        try:
            await asyncio.to_thread(self._apply, ops)
        except _Conflict as e:
            self.on_fenced(str(e))
            raise RegistryError(f"registry write refused, another master leads: {e}") from None

    async def close(self) -> None:
        # The client belongs to the contender; only our own background trim is waited for.
        if self._trim is not None:
            await asyncio.gather(self._trim, return_exceptions=True)

    async def history(self) -> list[dict[str, Any]]:
        """The write history, oldest first (for tests and operators)."""
        return await asyncio.to_thread(read_history, self.client, self.url)

    # ------------------------------------------------------------------ in a thread

    @property
    def zk(self) -> BoundedCalls:
        if self._zk is None:
            raise RegistryError("the registry is not loaded")
        return self._zk

    def _load(self) -> RegistrySnapshot:
        deadline = self.zk.deadline()
        paths = [self.path, self.log_path, *(f"{self.path}/{k}" for k in KINDS)]
        self.zk.ensure(paths, deadline)
        head, stat = self.zk.get(self.path, deadline)
        self._version = int(stat.version)
        if head:
            self._set_legacy_aside(head, deadline)
        objects = read_objects(self.zk, self.path, deadline)
        try:
            snap = decode_objects(objects.items())
        except (ValueError, KeyError, TypeError) as e:
            raise RegistryError(f"registry {self.path} is malformed: {e}") from None
        legacy = self.zk.exists(self.legacy_path, deadline)
        changes: Changes = {}
        if (META, "") not in objects:
            # A new or layout-1 registry: its objects are written by the claim itself.
            snap, changes = self._migration(snap, deadline)
        extra = [_Write(self.legacy_path, None, True, "registry-v1")] if legacy else []
        self._commit_changes(changes, lambda k: k in objects, "elected", deadline, extra)
        self._snapshot, self._in_doubt = snap, False
        return snap

    def _claim(self, view: MirrorView) -> RegistrySnapshot:
        """Claim the registry as the standby's mirror saw it: the transaction sets the head
        only at the mirror's version, so a mirror that missed a write raises `_Conflict`."""
        self._version = view.version
        self._commit([], {"ops": "elected"}, self.zk.deadline())
        self._snapshot, self._in_doubt = view.snapshot, False
        return view.snapshot

    def _apply(self, ops: list[RegistryOp]) -> None:
        deadline = self.zk.deadline()
        if self._in_doubt:
            self._resync(deadline)
        before = self._snapshot
        after, changes = plan_write(before, ops)  # refuses an oversized object: nothing written
        if not changes:  # nothing to make durable (e.g. a re-subscription as it was, #15)
            self._snapshot = after
            return

        def exists(key: ObjectKey) -> bool:
            return encode_object(before, key) is not None

        self._commit_changes(changes, exists, describe_ops(ops), deadline)
        self._snapshot = after
        self._writes += 1
        if self._writes % TRIM_EVERY == 0:
            self._trim_history(deadline, quiet=True)

    def object_path(self, key: ObjectKey) -> str:
        return object_path(self.path, key)

    # -------------------------------------------------------------- the layout-1 registry

    def _set_legacy_aside(self, head: bytes, deadline: float) -> None:
        """Copy a layout-1 snapshot from the head to `registry-v1` and empty the head."""
        try:
            json.loads(head.decode())
        except ValueError as e:
            raise RegistryError(f"registry {self.path} is malformed: {e}") from None
        exists = self.zk.exists(self.legacy_path, deadline)
        write = _Write(self.legacy_path, head, exists, "registry-v1")
        logger.warning("registry in layout 1 found (%d bytes); migrating it", len(head))
        self._commit([write], {"ops": "set-aside-layout-1"}, deadline)

    def _migration(
        self, current: RegistrySnapshot, deadline: float
    ) -> tuple[RegistrySnapshot, Changes]:
        """The layout-1 snapshot (or an empty one) and the objects that write it, `meta`
        last: a migration cut short leaves no `meta` and is done again."""
        from kazoo.exceptions import NoNodeError

        try:
            data, _ = self.zk.wait(
                self.client.get_async(self.legacy_path), deadline, "read registry-v1",
                (NoNodeError,),
            )
            target = snapshot_from_doc(json.loads(bytes(data).decode()))
        except NoNodeError:
            target = RegistrySnapshot()
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise RegistryError(f"registry {self.legacy_path} is malformed: {e}") from None
        target, changes, dropped = migrate(current, target)
        for reason in dropped:
            logger.error("registry object not migrated: %s", reason)
        changes[(META, "")] = encode_object(target, (META, ""))  # absent so far: written last
        if len(changes) > 1:
            logger.info("registry written out as objects count=%d", len(changes))
        return target, changes

    # ---------------------------------------------------------------------- writing

    def _commit_changes(
        self, changes: Changes, exists: Callable[[ObjectKey], bool], ops: str,
        deadline: float, extra: Iterable[_Write] = (),
    ) -> None:
        writes = [
            _Write(self.object_path(k), d, exists(k), f"{k[0]}/{k[1]}")
            for k, d in changes.items()
        ]
        chunks = _chunks([*writes, *extra])
        for i, chunk in enumerate(chunks):
            record: dict[str, Any] = {"ops": ops}
            if len(chunks) > 1:
                record["part"] = f"{i + 1}/{len(chunks)}"
            try:
                self._commit(chunk, record, deadline)
            except RegistryError:
                if i > 0:
                    self._in_doubt = True  # a part is written: read it all back first
                raise

    def _commit(self, writes: list[_Write], record: dict[str, Any], deadline: float) -> None:
        from kazoo.exceptions import BadVersionError, NoNodeError, RolledBackError

        tx = self.client.transaction()
        tx.check(self.fence_path, 0)
        tx.set_data(self.path, b"", self._version)
        for w in writes:
            if w.data is None:
                tx.delete(w.path)
            elif w.exists:
                tx.set_data(w.path, w.data)
            else:
                tx.create(w.path, w.data)
        tx.create(f"{self.log_path}/w-", self._record(record, writes), sequence=True)
        try:
            results = self.zk.commit(tx, deadline, "registry write")
        except RegistryError:
            self._in_doubt = True
            raise
        failures = [r for r in results if isinstance(r, Exception)]
        if failures:
            if isinstance(results[0], NoNodeError):
                raise _Conflict(f"our election znode {self.fence_path} is gone")
            if isinstance(results[1], BadVersionError):
                raise _Conflict(
                    f"registry version is no longer {self._version}: another master wrote it"
                )
            labels = ["election znode", "head", *(w.label for w in writes), "history"]
            bad = next(
                (lbl, r) for lbl, r in zip(labels, results, strict=True)
                if isinstance(r, Exception) and not isinstance(r, RolledBackError)
            )
            raise RegistryError(f"registry write failed at {bad[0]}: {bad[1]!r}")
        self._version = int(results[1].version)

    def _record(self, record: dict[str, Any], writes: list[_Write]) -> bytes:
        """The history record: who wrote what kinds of op to which objects, never contents,
        at most `MAX_RECORD_BYTES` (the object list is cut short to fit)."""
        doc = {
            "writer": self.writer.get("id", ""), "address": self.writer.get("address", ""),
            "epoch": self.epoch, "version": self._version + 1, "time": time.time(),
            **record, "nkeys": len(writes), "keys": [],
        }
        doc["ops"] = str(doc["ops"])[:200]
        data = json.dumps(doc).encode()
        for w in writes:
            label = w.label[:64]
            if len(data) + len(label) + 4 > MAX_RECORD_BYTES:
                break
            doc["keys"].append(label)
            data = json.dumps(doc).encode()
        return data

    def _resync(self, deadline: float) -> None:
        """After a write in doubt: take the registry as it is if we were its last writer."""
        _, stat = self.zk.get(self.path, deadline)
        objects = read_objects(self.zk, self.path, deadline)
        left = max(0.001, deadline - time.monotonic())
        history = read_history(self.client, self.url, last=1, timeout_s=left)
        last = history[-1] if history else {}
        if last.get("writer") != self.writer.get("id", "") or last.get("epoch") != self.epoch:
            raise _Conflict(
                f"the registry was last written by {last.get('writer') or 'nobody'} "
                f"(epoch {last.get('epoch')}), not by this master"
            )
        try:
            snap = decode_objects(objects.items())
        except (ValueError, KeyError, TypeError) as e:
            raise RegistryError(f"registry {self.path} is malformed: {e}") from None
        logger.warning("registry write was in doubt; carrying on from version=%d", stat.version)
        self._snapshot, self._version, self._in_doubt = snap, int(stat.version), False

    def _trim_history(self, deadline: float, quiet: bool = False) -> None:
        """Delete the oldest records beyond `HISTORY_KEEP`, in bounded transactions; with
        `quiet`, a failure is logged (the next trim catches up) rather than raised."""
        try:
            names = sorted(self.zk.children(self.log_path, deadline))
            old = names[: max(0, len(names) - HISTORY_KEEP)]
            for i in range(0, len(old), MAX_TX_OPS):
                tx = self.client.transaction()
                for name in old[i:i + MAX_TX_OPS]:
                    tx.delete(f"{self.log_path}/{name}")
                self.zk.commit(tx, deadline, "trim the registry history")
        except RegistryError as e:
            if not quiet:
                raise
            logger.warning("registry history not trimmed: %s", e)


def _chunks(writes: list[_Write]) -> list[list[_Write]]:
    """Writes grouped into transactions of at most `MAX_TX_BYTES` and `MAX_TX_OPS`."""
    chunks: list[list[_Write]] = [[]]
    size = 0
    for w in writes:
        if chunks[-1] and (size + w.size > MAX_TX_BYTES or len(chunks[-1]) >= MAX_TX_OPS):
            chunks.append([])
            size = 0
        chunks[-1].append(w)
        size += w.size
    return chunks


class _Conflict(Exception):
    """Another master has taken the registry over (or our session is gone)."""


def read_history(
    client: Any, url: ZkUrl, last: int = 0, timeout_s: float = DEFAULT_TIMEOUT_S
) -> list[dict[str, Any]]:
    """Blocking, at most about `timeout_s`: the registry's write history under `url`, oldest
    first (the `last` newest records only, if given)."""
    from kazoo.exceptions import NoNodeError

    zk = BoundedCalls(client, timeout_s)
    deadline = zk.deadline()
    log_path = f"{url.path}/log"
    try:
        names = sorted(zk.wait(
            client.get_children_async(log_path), deadline, "list the history", (NoNodeError,)
        ))
    except NoNodeError:
        return []
    if last:
        names = names[-last:]
    results = [client.get_async(f"{log_path}/{n}") for n in names]
    out = []
    for name, v in zip(names, zk.wait_all(results, deadline, "read the history", (NoNodeError,)),
                       strict=True):
        if isinstance(v, Exception):
            continue
        data, stat = v
        record = json.loads(data.decode())
        record["seq"] = name
        record["ctime"] = stat.ctime / 1000.0
        out.append(record)
    return out
