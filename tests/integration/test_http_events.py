"""`/events` (the web UI's live view) on the master's injected clock: a state event at once,
then one per interval only while the cluster changes, and a keep-alive after
`KEEPALIVE_EVERY` quiet intervals. The master's actor runs on a `VirtualClock` over an
in-memory registry; the HTTP server and its client are real (loopback, port 0)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from mesoslite.allocator.loader import load_allocator
from mesoslite.clock import VirtualClock
from mesoslite.master.actor import Connection, MasterActor
from mesoslite.master.build import JobsRunner
from mesoslite.master.config import MasterConfig
from mesoslite.master.http.events import KEEPALIVE_EVERY, SSE_INTERVAL_S
from mesoslite.master.http.server import MasterHttpServer
from mesoslite.master.http.state_json import StateSource
from mesoslite.master.leadership import Leadership
from mesoslite.master.registry.base import RegistryOp, RegistrySnapshot
from mesoslite.master.state import MasterState
from mesoslite.model import AgentInfo, MasterInfo
from mesoslite.resources import parse_resources

# How long the test waits in real time to be sure that no event came.
QUIET_WAIT_S = 0.3


class MemoryRegistry:
    def __init__(self) -> None:
        self.snap = RegistrySnapshot()

    async def load(self) -> RegistrySnapshot:
        return self.snap

    async def apply(self, ops: list[RegistryOp]) -> None:
        for op in ops:
            self.snap = op.apply(self.snap)

    async def close(self) -> None:
        pass


class Events:
    """The client side of one `/events` stream: parsed `state` documents, as they come."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response

    async def next(self, timeout_s: float = 5.0) -> dict[str, Any]:
        async def read() -> dict[str, Any]:
            data = ""
            while True:
                line = (await self.response.content.readline()).decode().rstrip("\n")
                if line.startswith("data: "):
                    data = line[len("data: "):]
                elif line == "" and data:
                    return json.loads(data)  # type: ignore[no-any-return]
        return await asyncio.wait_for(read(), timeout_s)

    async def none_within(self, seconds: float = QUIET_WAIT_S) -> bool:
        try:
            await self.next(timeout_s=seconds)
        except TimeoutError:
            return True
        return False


@pytest.fixture
async def served() -> AsyncIterator[tuple[MasterActor, VirtualClock, str]]:
    clock = VirtualClock()
    state = MasterState(allocator=load_allocator("drf"), offer_timeout_s=30,
                        agent_reregister_timeout_s=10, agent_ping_timeout_s=3600,
                        max_agent_ping_timeouts=3, seed=1)
    actor = MasterActor(state, MemoryRegistry(), clock, allocation_interval_s=3600,
                        heartbeat_interval_s=3600, agent_ping_interval_s=3600)
    await actor.start()
    leadership = Leadership("master-test", address="127.0.0.1:1", leading=True)
    info = MasterInfo(id="master-test", address="127.0.0.1:1", version="t", started_at=0.0)
    source = StateSource(actor, info, leadership, JobsRunner(actor, MasterConfig(jobs=False)))
    http = MasterHttpServer(source, "127.0.0.1", 0)
    await http.start()
    try:
        yield actor, clock, f"http://127.0.0.1:{http.port}"
    finally:
        await http.stop()
        await actor.stop()


async def test_events_are_sent_at_once_then_only_when_something_changed_and_as_keepalive(
    served: tuple[MasterActor, VirtualClock, str],
) -> None:
    actor, clock, base = served
    async with aiohttp.ClientSession() as session, session.get(base + "/events") as response:
        assert response.headers["Content-Type"] == "text/event-stream"
        events = Events(response)
        first = await events.next()
        assert first["master"]["leading"] and first["agents"] == []

        # Nothing changed: a whole interval passes without an event.
        clock.advance(SSE_INTERVAL_S)
        assert await events.none_within()

        await actor.register_agent(
            AgentInfo(hostname="h1", resources=parse_resources("cpus:2;mem:512")), [],
            Connection(),
        )
        # Changed, but the next event waits for the interval's end on the master's clock.
        assert await events.none_within()
        clock.advance(SSE_INTERVAL_S)
        changed = await events.next()
        assert [a["hostname"] for a in changed["agents"]] == ["h1"]

        # Quiet again: nothing for KEEPALIVE_EVERY - 1 intervals, then the same state again.
        for _ in range(KEEPALIVE_EVERY - 1):
            clock.advance(SSE_INTERVAL_S)
            assert await events.none_within()
        clock.advance(SSE_INTERVAL_S)
        again = await events.next()
        assert again["agents"] == changed["agents"]
