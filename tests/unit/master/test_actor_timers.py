"""Issue 12 item 3: every timer of `MasterActor` runs on the injected clock. The actor runs on
a `VirtualClock` over an in-memory registry, with no sockets: offers expire after
`offer_timeout_s`, a silent agent is marked unreachable after its missed pings, allocation
passes coalesce over `ALLOCATION_BATCH_S`, heartbeats and pings follow their intervals, a
disconnected framework is removed at its failover timeout and an agent recovered from the
registry that does not come back within its window is unreachable, and a file read the
agent does not answer times out."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from mesoslite.allocator.loader import load_allocator
from mesoslite.clock import VirtualClock
from mesoslite.errors import DeadlineExceededError
from mesoslite.ids import AgentId, FrameworkId, TaskId
from mesoslite.master import records as rec
from mesoslite.master.actor import (
    CLOSE,
    HEARTBEAT,
    PING,
    Connection,
    MasterActor,
    ReadFileRequest,
)
from mesoslite.master.constants import ALLOCATION_BATCH_S, READ_FILE_TIMEOUT_S, TICK_INTERVAL_S
from mesoslite.master.events import FailureEvent, OffersEvent, RescindEvent, UpdateEvent
from mesoslite.master.registry.base import AdmitAgent, RegistryOp, RegistrySnapshot
from mesoslite.master.state import MasterState
from mesoslite.model import AgentInfo, FrameworkInfo, TaskState
from mesoslite.resources import parse_resources

from .conftest import task

R = parse_resources
OFFER_TIMEOUT_S = 30.0
PING_INTERVAL_S = 1.0
PING_TIMEOUT_S = 1.0
MAX_PING_TIMEOUTS = 3
HEARTBEAT_S = 5.0
REREGISTER_S = 10.0


class MemoryRegistry:
    """The registry, in memory (what the actor's timers do does not depend on the store)."""

    def __init__(self, snap: RegistrySnapshot | None = None) -> None:
        self.snap = snap or RegistrySnapshot()

    async def load(self) -> RegistrySnapshot:
        return self.snap

    async def apply(self, ops: list[RegistryOp]) -> None:
        for op in ops:
            self.snap = op.apply(self.snap)

    async def close(self) -> None:
        pass


@dataclass
class Master:
    actor: MasterActor
    clock: VirtualClock
    passes: list[float]

    async def agent(self, hostname: str = "h1") -> tuple[AgentId, Connection]:
        conn = Connection()
        info = AgentInfo(hostname=hostname, resources=R("cpus:4;mem:1024"))
        return await self.actor.register_agent(info, [], conn), conn

    async def framework(self, failover_timeout_s: float = 60.0) -> tuple[FrameworkId, Connection]:
        conn = Connection()
        info = FrameworkInfo(name="fw", failover_timeout_s=failover_timeout_s)
        return await self.actor.subscribe(info, conn), conn

    async def advance(self, seconds: float) -> None:
        """Move virtual time on, then let what the timers started (registry writes) finish."""
        self.clock.advance(seconds)
        for _ in range(3):
            await asyncio.sleep(0)


async def make_master(snap: RegistrySnapshot | None = None) -> Master:
    clock = VirtualClock()
    state = MasterState(
        allocator=load_allocator("drf"),
        offer_timeout_s=OFFER_TIMEOUT_S,
        agent_reregister_timeout_s=REREGISTER_S,
        agent_ping_timeout_s=PING_TIMEOUT_S,
        max_agent_ping_timeouts=MAX_PING_TIMEOUTS,
        seed=1,
    )
    passes: list[float] = []
    allocate = state.allocate

    def counted(now: float) -> Any:
        passes.append(now)
        return allocate(now)

    state.allocate = counted  # type: ignore[method-assign]  # count the passes
    actor = MasterActor(
        state, MemoryRegistry(snap), clock,
        allocation_interval_s=3600, heartbeat_interval_s=HEARTBEAT_S,
        agent_ping_interval_s=PING_INTERVAL_S,
    )
    await actor.start()
    return Master(actor, clock, passes)


@pytest.fixture
async def m() -> AsyncIterator[Master]:
    master = await make_master()
    try:
        yield master
    finally:
        await master.actor.stop()


def sent(conn: Connection) -> list[Any]:
    items = []
    while not conn.queue.empty():
        items.append(conn.queue.get_nowait())
    return items


def of_type(items: list[Any], kind: type[Any]) -> list[Any]:
    return [i for i in items if isinstance(i, kind)]


async def test_allocation_passes_coalesce_over_the_batching_window(m: Master) -> None:
    _, fw_conn = await m.framework()
    for host in ("h1", "h2", "h3"):
        await m.agent(host)
    # Four events asked for a pass; none runs before the window has passed on the clock.
    assert m.passes == []
    await m.advance(ALLOCATION_BATCH_S / 2)
    assert m.passes == []
    await m.advance(ALLOCATION_BATCH_S / 2)
    assert len(m.passes) == 1
    [offers] = of_type(sent(fw_conn), OffersEvent)
    assert sorted(o.hostname for o in offers.offers) == ["h1", "h2", "h3"]
    await m.advance(ALLOCATION_BATCH_S * 10)
    assert len(m.passes) == 1  # nothing asked again


async def test_an_offer_is_rescinded_after_the_offer_timeout_and_made_again(m: Master) -> None:
    m.actor.state.books.agents.silence_limit_s = 0  # the agent's pings are not the point
    await m.agent()
    _, fw_conn = await m.framework()
    await m.advance(ALLOCATION_BATCH_S)
    [made] = of_type(sent(fw_conn), OffersEvent)
    [offer] = made.offers
    await m.advance(OFFER_TIMEOUT_S - ALLOCATION_BATCH_S - TICK_INTERVAL_S)
    assert of_type(sent(fw_conn), RescindEvent) == []
    await m.advance(2 * TICK_INTERVAL_S + 2 * ALLOCATION_BATCH_S)
    items = sent(fw_conn)
    assert [e.offer_id for e in of_type(items, RescindEvent)] == [offer.id]
    # Its resources went back to the pool, and a pass soon after offered them again.
    [again] = of_type(items, OffersEvent)
    assert [o.resources for o in again.offers] == [offer.resources]
    assert again.offers[0].id != offer.id


async def test_an_agent_that_misses_its_pings_is_unreachable_and_its_tasks_too(
    m: Master,
) -> None:
    agent_id, agent_conn = await m.agent()
    fid, fw_conn = await m.framework()
    await m.advance(ALLOCATION_BATCH_S)
    [offer] = of_type(sent(fw_conn), OffersEvent)[0].offers
    await m.actor.run(lambda now: m.actor.state.accept(fid, [offer.id], [task("t1")], 0, now))
    silence_s = PING_TIMEOUT_S * MAX_PING_TIMEOUTS
    # Answering its pings keeps the agent active however long it runs.
    for _ in range(5):
        await m.advance(PING_INTERVAL_S)
        assert PING in sent(agent_conn)
        m.actor.agent_message(agent_id, pending_updates=0)
    assert m.actor.state.agents[agent_id].status == rec.AGENT_ACTIVE
    sent(fw_conn)
    await m.advance(silence_s - TICK_INTERVAL_S)
    assert m.actor.state.agents[agent_id].status == rec.AGENT_ACTIVE
    await m.advance(2 * TICK_INTERVAL_S)
    assert m.actor.state.agents[agent_id].status == rec.AGENT_UNREACHABLE
    assert sent(agent_conn)[-1] is CLOSE  # its stream is closed: it must register again
    items = sent(fw_conn)
    [update] = of_type(items, UpdateEvent)
    assert [(s.task_id, s.state) for s in update.statuses] == [("t1", TaskState.UNREACHABLE)]
    assert of_type(items, FailureEvent) == [FailureEvent(agent_id, "agent unreachable")]


async def test_frameworks_get_heartbeats_and_agents_pings_at_their_intervals(m: Master) -> None:
    _, agent_conn = await m.agent()
    _, fw_conn = await m.framework()
    sent(agent_conn)
    sent(fw_conn)
    await m.advance(HEARTBEAT_S - 0.01)
    assert HEARTBEAT not in sent(fw_conn)
    await m.advance(0.02)
    assert sent(fw_conn).count(HEARTBEAT) == 1
    m.actor.agent_message(AgentId("nobody"))  # a message of an unknown agent changes nothing
    await m.advance(HEARTBEAT_S * 2)
    assert sent(fw_conn).count(HEARTBEAT) == 2


async def test_a_paused_master_runs_no_timer_work_and_resumes_with_fresh_windows(
    m: Master,
) -> None:
    fid, fw_conn = await m.framework(failover_timeout_s=2.0)
    m.actor.framework_stream_closed(fid, fw_conn)
    m.actor.pause()
    await m.advance(10.0)
    assert fid in m.actor.state.frameworks  # no tick while paused
    m.actor.resume()
    await m.advance(2.0 - TICK_INTERVAL_S)
    assert fid in m.actor.state.frameworks  # the window restarted at resume
    await m.advance(3 * TICK_INTERVAL_S)
    assert fid not in m.actor.state.frameworks
    assert fid in m.actor.state.completed_frameworks


async def test_a_recovered_agent_that_does_not_return_in_its_window_is_unreachable() -> None:
    info = AgentInfo(id=AgentId("ag-old"), hostname="h1", resources=R("cpus:1;mem:64"))
    snap = AdmitAgent(info).apply(RegistrySnapshot())
    master = await make_master(snap)
    try:
        agents = master.actor.state.agents
        assert agents[info.id].status == rec.AGENT_DISCONNECTED
        await master.advance(REREGISTER_S - TICK_INTERVAL_S)
        assert agents[info.id].status == rec.AGENT_DISCONNECTED
        await master.advance(3 * TICK_INTERVAL_S)
        assert agents[info.id].status == rec.AGENT_UNREACHABLE
    finally:
        await master.actor.stop()


async def test_a_file_read_the_agent_does_not_answer_times_out_on_the_clock(m: Master) -> None:
    m.actor.state.books.agents.silence_limit_s = 0  # the agent's pings are not the point
    agent_id, agent_conn = await m.agent()
    fid, fw_conn = await m.framework()
    await m.advance(ALLOCATION_BATCH_S)
    [offer] = of_type(sent(fw_conn), OffersEvent)[0].offers
    await m.actor.run(lambda now: m.actor.state.accept(fid, [offer.id], [task("t1")], 0, now))
    reading = asyncio.create_task(m.actor.read_file(TaskId("t1"), fid, "stdout", 0, 10))
    await m.advance(0)  # the read is sent and its timer set
    await m.advance(READ_FILE_TIMEOUT_S - 0.01)
    assert not reading.done()
    assert of_type(sent(agent_conn), ReadFileRequest)
    await m.advance(0.02)
    with pytest.raises(DeadlineExceededError, match="did not answer a file read in 5s"):
        await asyncio.wait_for(reading, 1.0)


async def test_stop_cancels_every_timer(m: Master) -> None:
    _, fw_conn = await m.framework()
    await m.actor.stop()
    sent(fw_conn)
    m.clock.advance(HEARTBEAT_S * 3)
    assert m.passes == [] and sent(fw_conn) == []
