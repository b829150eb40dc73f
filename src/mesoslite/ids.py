"""Typed identifiers and their generators."""

from __future__ import annotations

import uuid
from typing import NewType

FrameworkId = NewType("FrameworkId", str)
AgentId = NewType("AgentId", str)
OfferId = NewType("OfferId", str)
TaskId = NewType("TaskId", str)


def new_id(prefix: str) -> str:
    """A fresh identifier such as `fw-3f2a9c1e4b7d`: short enough to type, unique enough."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


class IdSequence:
    """Cheap unique ids for one master run: a random run prefix plus a counter.

    Offers are created by the thousand per second; uuid4 for each would be wasted work.
    """

    __slots__ = ("_prefix", "_next")

    def __init__(self, kind: str, run: str | None = None) -> None:
        self._prefix = f"{kind}-{run or uuid.uuid4().hex[:8]}-"
        self._next = 0

    def __call__(self) -> str:
        self._next += 1
        return f"{self._prefix}{self._next}"
