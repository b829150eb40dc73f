"""`RegistryMirror`: a standby master's copy of the ZooKeeper registry, kept current (#15).

A standby reads the registry once, then follows it while it waits in the election: a data
watch on the head (which every write sets) says that something changed, and the write
history (`PATH/log`, whose records name the objects each write changed) says what, so it
reads only those objects. Once elected, `ZooKeeperRegistryStore.load()` makes the mirror the
leader's registry with one transaction, the claim, instead of reading everything.

Safety does not rest on the watch. The claim sets the head only at the version the mirror
is at, so if the mirror missed a write (a watch not yet delivered, its ZooKeeper server
behind the leader's, the old leader's last write racing the election), the claim fails and
the store reads the registry cold, as a master without a mirror does. Where the history
cannot say what changed (trimmed past the mirror's version, a record's key list cut short,
a layout-1 registry), the mirror reads everything again, or gives up until the next try.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass
from typing import Any

from mesoslite.master.registry.base import KINDS, META, ObjectKey, RegistrySnapshot
from mesoslite.master.registry.bounded import BoundedCalls
from mesoslite.master.registry.codec import decode_objects, with_object
from mesoslite.master.registry.layout import object_path, read_objects

logger = logging.getLogger(__name__)

# Writes that come close together are followed together (at most 1/SETTLE_S reads a second).
SETTLE_S = 0.05
# Read again even without a watch: watches go with a session that expired.
POLL_S = 2.0
# More changed objects than this: decode the whole registry again rather than one by one.
MAX_INCREMENTAL = 32
# History records read beyond the ones needed, for writes that came after the head was read.
HISTORY_SLACK = 8
# A history record cuts each key label to this length (`ZooKeeperRegistryStore._record`).
LABEL_MAX = 64


@dataclass(frozen=True, slots=True)
class MirrorView:
    """The registry as of head version `version` (valid only if the head is still there)."""

    version: int
    snapshot: RegistrySnapshot


class RegistryMirror:
    """Follows the registry at `path` through `client` until `stop()`; see the module doc.

    Args:
        path: the registry's head (`PATH/registry`); `log_path` its history, `legacy_path`
            where a layout-1 registry is set aside while migrated.
        client: a started kazoo client (the election's).
        timeout_s: the longest one catch-up waits for ZooKeeper.
    """

    def __init__(
        self, path: str, log_path: str, legacy_path: str, client: Any, timeout_s: float
    ) -> None:
        self.path, self.log_path, self.legacy_path = path, log_path, legacy_path
        self.client = client
        self.zk = BoundedCalls(client, timeout_s)
        self.version = -1  # the head version `objects` are at; -1: not read (or unusable)
        self.objects: dict[ObjectKey, bytes] = {}
        self.snapshot = RegistrySnapshot()
        self.full_reads = 0
        self.partial_reads = 0
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._stopping = False
        self._done: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def view(self) -> MirrorView | None:
        return MirrorView(self.version, self.snapshot) if self.version >= 0 else None

    async def run(self) -> None:
        """Follow the registry until `stop()` (or cancelled)."""
        self._loop = asyncio.get_running_loop()
        self._done = asyncio.Event()
        try:
            while not self._stopping:
                self._wake.clear()  # a change from here on wakes the next round
                try:
                    await asyncio.to_thread(self.catch_up)
                except Exception as e:  # ZooKeeper away, a malformed record: next round reads all
                    self.version = -1
                    logger.debug("standby registry mirror not current: %r", e)
                if self._stopping:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), POLL_S)
                with contextlib.suppress(TimeoutError):  # `stop()` ends the pause at once
                    await asyncio.wait_for(self._stop.wait(), SETTLE_S)
        finally:
            self._done.set()

    async def stop(self) -> MirrorView | None:
        """Stop following (after the catch-up in flight, if any) and return the view."""
        self._stopping = True
        self._wake.set()
        self._stop.set()
        if self._done is not None:
            await self._done.wait()
        return self.view()

    # ------------------------------------------------------------------ in a thread

    def catch_up(self) -> None:
        """Bring the mirror to the head's current version (blocking)."""
        deadline = self.zk.deadline()
        data, stat = self.zk.wait(
            self.client.get_async(self.path, watch=self._watch), deadline, "get the head"
        )
        if data:  # layout 1: the elected master migrates it, cold
            self.version = -1
            return
        head = int(stat.version)
        if head == self.version:
            return
        keys = self._changed_keys(head, deadline) if self.version >= 0 else None
        if keys is None or len(keys) > MAX_INCREMENTAL:
            self._read_all(head, deadline)
        else:
            self._read_some(keys, head, deadline)

    def _read_all(self, head: int, deadline: float) -> None:
        objects = read_objects(self.zk, self.path, deadline)
        if (META, "") not in objects or self.zk.exists(self.legacy_path, deadline):
            self.version = -1  # not written out as objects yet: the elected master does it
            return
        self.snapshot = decode_objects(objects.items())
        self.objects, self.version = objects, head
        self.full_reads += 1

    def _read_some(self, keys: set[ObjectKey], head: int, deadline: float) -> None:
        from kazoo.exceptions import NoNodeError

        order = sorted(keys)
        results = [self.client.get_async(object_path(self.path, k)) for k in order]
        values = self.zk.wait_all(results, deadline, "read changed objects", (NoNodeError,))
        snap = self.snapshot
        for key, value in zip(order, values, strict=True):
            data = None if isinstance(value, Exception) else bytes(value[0] or b"")
            snap = with_object(snap, key, data)
            if data is None:
                self.objects.pop(key, None)
            else:
                self.objects[key] = data
        self.snapshot, self.version = snap, head
        self.partial_reads += 1

    def _changed_keys(self, head: int, deadline: float) -> set[ObjectKey] | None:
        """The objects written since `self.version` up to `head`, from the history; None
        if it cannot tell (a record missing or cut short)."""
        from kazoo.exceptions import NoNodeError

        log = self.log_path
        names = sorted(self.zk.children(log, deadline))
        recent = names[-(head - self.version + HISTORY_SLACK):]
        results = [self.client.get_async(f"{log}/{n}") for n in recent]
        records: dict[int, dict[str, Any]] = {}
        for v in self.zk.wait_all(results, deadline, "read the history", (NoNodeError,)):
            if not isinstance(v, Exception):
                record = json.loads(bytes(v[0]).decode())
                records[int(record.get("version", -1))] = record
        keys: set[ObjectKey] = set()
        for version in range(self.version + 1, head + 1):
            record = records.get(version)
            if record is None or len(record.get("keys", ())) != record.get("nkeys"):
                return None
            for label in record["keys"]:
                key = _key_of(str(label))
                if key is None:
                    return None
                keys.add(key)
        return keys

    # ------------------------------------------------------------------ kazoo's threads

    def _watch(self, event: Any) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wake.set)


def _key_of(label: str) -> ObjectKey | None:
    """The object a history label (`kind/key`) names; None if it may be cut short or is not
    an object (`registry-v1`)."""
    if len(label) >= LABEL_MAX:
        return None
    kind, _, name = label.partition("/")
    if kind == META:
        return (META, "")
    return (kind, name) if kind in KINDS else None
