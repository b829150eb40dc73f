"""What the agent sends the master, as value types; `master_link.py` turns them into protobuf."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from mesoslite.model import TaskStatus


@dataclass(frozen=True, slots=True)
class StatusUpdatesOut:
    statuses: tuple[TaskStatus, ...]


@dataclass(frozen=True, slots=True)
class PongOut:
    seq: int
    pending_updates: int


@dataclass(frozen=True, slots=True)
class FileChunkOut:
    request_id: int
    data: bytes = b""
    size: int = 0
    error: str = ""


@dataclass(frozen=True, slots=True)
class FileDataOut:
    """New bytes of a followed file, or (`eof`) its end; see `agent/follow.py`."""

    follow_id: int
    offset: int
    data: bytes = b""
    eof: bool = False


Outgoing = StatusUpdatesOut | PongOut | FileChunkOut | FileDataOut


class MasterSender(Protocol):
    """The way to the master (`MasterLink`): `send` returns False when not registered."""

    def send(self, item: Outgoing) -> bool: ...
