"""`MasterActor` on a real loop with a real SQLite registry (slowed down where it matters)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from mesoslite.allocator.loader import load_allocator
from mesoslite.clock import SystemClock
from mesoslite.master.actor import Connection, MasterActor
from mesoslite.master.events import OffersEvent
from mesoslite.master.registry.base import RegistryOp, RegistrySnapshot
from mesoslite.master.registry.sqlite import SqliteRegistryStore
from mesoslite.master.state import MasterState
from mesoslite.model import AgentInfo, FrameworkInfo
from mesoslite.resources import parse_resources


class SlowRegistry:
    """The SQLite store, with each write taking 50 ms (as a first write on a cold disk does)."""

    def __init__(self, path: Path) -> None:
        self.store = SqliteRegistryStore(path)

    async def load(self) -> RegistrySnapshot:
        return await self.store.load()

    async def apply(self, ops: list[RegistryOp]) -> None:
        await asyncio.sleep(0.05)
        await self.store.apply(ops)

    async def close(self) -> None:
        await self.store.close()


async def test_offers_made_while_a_subscription_is_persisted_reach_the_framework(
    tmp_path: Path,
) -> None:
    # Regression: the stream used to be attached only after the registry write, so an
    # allocation pass in between sent the offers nowhere and they sat until the offer timeout.
    state = MasterState(allocator=load_allocator("drf"), offer_timeout_s=30,
                        agent_reregister_timeout_s=10)
    actor = MasterActor(state, SlowRegistry(tmp_path / "r.sqlite"), SystemClock(),
                        allocation_interval_s=3600, heartbeat_interval_s=3600,
                        agent_ping_interval_s=3600)
    await actor.start()
    try:
        info = AgentInfo(hostname="h", resources=parse_resources("cpus:2;mem:512"))
        await actor.register_agent(info, [], Connection())
        conn = Connection()
        await actor.subscribe(FrameworkInfo(name="fw"), conn)
        event = await asyncio.wait_for(conn.queue.get(), 2)
        assert isinstance(event, OffersEvent) and len(event.offers) == 1
    finally:
        await actor.stop()
