"""The standalone contender: the only master, elected as soon as it starts, never deposed."""

from __future__ import annotations

import asyncio

from mesoslite.master.election.base import Change, LeadershipChange


class StandaloneContender:
    def __init__(self, address: str) -> None:
        self._address = address
        self._changes: asyncio.Queue[LeadershipChange] = asyncio.Queue()

    @property
    def leader_address(self) -> str:
        return self._address

    @property
    def epoch(self) -> int:
        return 0

    async def start(self) -> None:
        self._changes.put_nowait(LeadershipChange(Change.ELECTED, "standalone"))

    async def next_change(self) -> LeadershipChange:
        return await self._changes.get()

    async def close(self) -> None:
        return None
