"""The `Contender` protocol: how a master learns that it leads, pauses, or lost leadership.

A contender reports `LeadershipChange`s in order on `changes()`:

- `ELECTED`: this master leads; recover from the registry, then serve.
- `SUSPENDED`: contact with the election service is lost; stop acting as leader at once
  (another master may be elected once our session expires).
- `RESUMED`: contact came back within the session; lead again.
- `DEPOSED`: leadership is over for good (session expired, or never regained in time);
  the master exits so that a supervisor restarts it as a standby, as Mesos's master does.

`leader_address` is the leader as last seen ('' while unknown), for standbys' redirects.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol


class Change(enum.Enum):
    ELECTED = "elected"
    SUSPENDED = "suspended"
    RESUMED = "resumed"
    DEPOSED = "deposed"


@dataclass(frozen=True, slots=True)
class LeadershipChange:
    change: Change
    reason: str = ""


class Contender(Protocol):
    """One master's place in the election. See the module docstring."""

    @property
    def leader_address(self) -> str: ...

    @property
    def epoch(self) -> int:
        """A number that grows with every term (the leader's sequence in ZooKeeper)."""
        ...

    async def start(self) -> None:
        """Join the election; returns at once, the rest happens in the background."""
        ...

    async def next_change(self) -> LeadershipChange: ...

    async def close(self) -> None: ...
