"""Status updates the agent owes the master: kept, ordered per task, resent until acknowledged.

Design:
- Each task has a `StatusUpdateStream`: its unacknowledged updates, oldest first. Every
  update gets a fresh 16-byte uuid when it is added; the framework's acknowledgement comes
  back through the master (`MasterMessage.acknowledge`) naming that uuid.
- Updates are pipelined: the agent sends each one as soon as it exists, without waiting for
  the previous one's acknowledgement (Mesos waits; our stream to the master is ordered
  already, so waiting would only add a round trip per update). So RUNNING and FINISHED of a
  short task can travel in one message.
- Acknowledgements are cumulative within a stream: acknowledging an update also drops the
  older ones of the same task. The framework has seen a newer state, so resending an older
  one could only make it go back in time.
- Resending is per stream and always the whole stream, in order: when a stream's oldest
  update has waited `retry_s` since it was last sent (or made, if it waited unsent), every
  update of the stream goes again.
  Resending only the due one could deliver RUNNING after FINISHED.
- Resend at once everything (or one framework's streams) on re-registration and on the
  master's `reconcile`.
- Pure bookkeeping: no I/O, no clock of its own (`now` is an argument), no asyncio, so it is
  unit-tested directly. The actor writes each update to disk (`checkpoint.py`) before it
  sends it, and after a restart puts the unacknowledged ones back with `restore`, uuids and
  order unchanged.
"""

from __future__ import annotations

import uuid as uuidlib
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field, replace

from mesoslite.ids import FrameworkId, TaskId
from mesoslite.model import TaskStatus

TaskKey = tuple[FrameworkId, TaskId]


def new_update_uuid() -> bytes:
    """A fresh 16-byte id for one update."""
    return uuidlib.uuid4().bytes


@dataclass(slots=True)
class StatusUpdateStream:
    """The unacknowledged updates of one task, oldest first."""

    key: TaskKey
    updates: list[TaskStatus] = field(default_factory=list)
    # When the stream is to be sent again if it is still not acknowledged.
    due_at: float = 0.0

    def acknowledge(self, update_uuid: bytes) -> int:
        """Drop the update with this uuid and every older one; returns how many were dropped."""
        for i, st in enumerate(self.updates):
            if st.uuid == update_uuid:
                del self.updates[: i + 1]
                return i + 1
        return 0


class StatusUpdateManager:
    """Every task's `StatusUpdateStream`. See the module docstring for the rules."""

    def __init__(self, retry_s: float) -> None:
        self.retry_s = retry_s
        self._streams: dict[TaskKey, StatusUpdateStream] = {}
        self._pending = 0

    @property
    def pending_count(self) -> int:
        """Updates not acknowledged yet, over all tasks (reported in pongs)."""
        return self._pending

    def __iter__(self) -> Iterator[TaskKey]:
        return iter(self._streams)

    def add(self, status: TaskStatus, now: float) -> TaskStatus:
        """Keep `status` with a fresh uuid until acknowledged; returns the update to send now."""
        update = replace(status, uuid=new_update_uuid())
        key = (status.framework_id, status.task_id)
        stream = self._streams.get(key)
        if stream is None:
            stream = self._streams[key] = StatusUpdateStream(key)
        if not stream.updates:
            # The clock starts with the oldest unacknowledged update.
            stream.due_at = now + self.retry_s
        stream.updates.append(update)
        self._pending += 1
        return update

    def restore(self, update: TaskStatus, now: float) -> None:
        """Put back an update read from disk after a restart, keeping its uuid."""
        key = (update.framework_id, update.task_id)
        stream = self._streams.get(key)
        if stream is None:
            stream = self._streams[key] = StatusUpdateStream(key)
        if not stream.updates:
            stream.due_at = now + self.retry_s
        stream.updates.append(update)
        self._pending += 1

    def acknowledge(self, framework_id: FrameworkId, task_id: TaskId, update_uuid: bytes) -> bool:
        """Apply one acknowledgement; False if it matched nothing (e.g. a duplicate)."""
        key = (framework_id, task_id)
        stream = self._streams.get(key)
        if stream is None:
            return False
        dropped = stream.acknowledge(update_uuid)
        self._pending -= dropped
        if not stream.updates:
            del self._streams[key]
        return dropped > 0

    def sent(self, updates: Collection[TaskStatus], now: float) -> None:
        """These updates went out for the first time at `now`: their streams are not due
        before `now + retry_s`."""
        for st in updates:
            stream = self._streams.get((st.framework_id, st.task_id))
            if stream is not None:
                stream.due_at = max(stream.due_at, now + self.retry_s)

    def has_pending(self, key: TaskKey) -> bool:
        return key in self._streams

    def due(self, now: float) -> list[TaskStatus]:
        """The updates of every stream due for a resend, each stream whole and in order.

        Their clock restarts: they are due again `retry_s` from `now`.
        """
        out: list[TaskStatus] = []
        for stream in self._streams.values():
            if stream.due_at <= now:
                out.extend(stream.updates)
                stream.due_at = now + self.retry_s
        return out

    def resend_all(
        self, now: float, framework_ids: Collection[FrameworkId] | None = None
    ) -> list[TaskStatus]:
        """Every unacknowledged update (of these frameworks, if given), stream by stream."""
        out: list[TaskStatus] = []
        for (fid, _), stream in self._streams.items():
            if framework_ids and fid not in framework_ids:
                continue
            out.extend(stream.updates)
            stream.due_at = now + self.retry_s
        return out

    def pending_of(self, key: TaskKey) -> list[TaskStatus]:
        stream = self._streams.get(key)
        return list(stream.updates) if stream else []
