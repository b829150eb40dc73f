"""Issue 11 item 6: a registry write that fails changes nothing in memory, for every command
of `MasterState` that writes; the caller gets UNAVAILABLE (INVALID_ARGUMENT when the store
refuses the request itself). `MasterActor` on a real loop and a virtual clock, over a store
whose writes fail on demand: a fault that cannot be made otherwise."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from mesoslite.allocator.loader import load_allocator
from mesoslite.clock import VirtualClock
from mesoslite.errors import RegistryError, UnavailableError
from mesoslite.ids import AgentId, FrameworkId, TaskId
from mesoslite.master import records as rec
from mesoslite.master.actor import Connection, MasterActor
from mesoslite.master.events import KillOnAgent, LaunchOnAgent, ShutdownFrameworkOnAgent
from mesoslite.master.registry.base import RegistryOp, RegistrySnapshot, SetRoleWeight
from mesoslite.master.state import MasterState
from mesoslite.model import AgentInfo, FrameworkInfo, Offer
from mesoslite.resources import parse_resources

from .conftest import task

R = parse_resources


class FlakyRegistry:
    """An in-memory store whose `apply` raises `fail` while it is set."""

    def __init__(self) -> None:
        self.snap = RegistrySnapshot()
        self.fail: Exception | None = None

    async def load(self) -> RegistrySnapshot:
        return self.snap

    async def apply(self, ops: list[RegistryOp]) -> None:
        await asyncio.sleep(0)
        if self.fail is not None:
            raise self.fail
        for op in ops:
            self.snap = op.apply(self.snap)

    async def close(self) -> None:
        pass


@dataclass
class Master:
    actor: MasterActor
    store: FlakyRegistry
    clock: VirtualClock

    @property
    def state(self) -> MasterState:
        return self.actor.state

    @property
    def now(self) -> float:
        return self.clock.now()

    async def agent(self, hostname: str = "h1") -> tuple[AgentId, Connection]:
        conn = Connection()
        info = AgentInfo(hostname=hostname, resources=R("cpus:4;mem:1024"))
        return await self.actor.register_agent(info, [], conn), conn

    async def framework(self, failover_timeout_s: float = 60.0) -> FrameworkId:
        info = FrameworkInfo(name="fw", role="eng", failover_timeout_s=failover_timeout_s)
        return await self.actor.subscribe(info, Connection())

    def offer(self, fid: FrameworkId) -> Offer:
        """The framework's outstanding offer (an allocation pass may have made it already)."""
        self.state.allocate(self.now)
        return next(o for o in self.state.offers if o.framework_id == fid)

    def fail(self) -> None:
        self.store.fail = RegistryError("registry write failed: disk I/O error")


@pytest.fixture
async def m() -> AsyncIterator[Master]:
    clock = VirtualClock()
    state = MasterState(
        allocator=load_allocator("drf"), offer_timeout_s=30, agent_reregister_timeout_s=10
    )
    store = FlakyRegistry()
    actor = MasterActor(
        state,
        store,
        clock,
        allocation_interval_s=3600,
        heartbeat_interval_s=3600,
        agent_ping_interval_s=3600,
        tick_interval_s=3600,  # the tests tick themselves
    )
    await actor.start()
    try:
        yield Master(actor, store, clock)
    finally:
        await actor.stop()


def fingerprint(s: MasterState) -> object:
    """What a failed write must leave as it was."""
    return (
        sorted(
            (a.id, a.status, a.info, str(a.used), sorted(a.tasks), a.disconnected_at)
            for a in s.agents.values()
        ),
        sorted(
            (
                f.id,
                f.status,
                f.info,
                str(f.used),
                sorted(f.tasks),
                f.disconnected_at,
                sorted(f.filters.items()),
            )
            for f in s.frameworks.values()
        ),
        sorted((k, r.state) for k, r in s.completed_tasks.items()),
        sorted(s.completed_frameworks),
        dict(s.roles.weights),
        dict(s.roles.quotas),
        {a: dict(r) for a, r in s.dynamic_reservations.items()},
        sorted(s.gone_agents),
        # (Not what is offered: the offers of a failed accept are used up, as in Mesos.)
        sorted((r.role, r.weight, r.quota) for r in s.role_statuses()),
    )


def sent(conn: Connection) -> list[object]:
    out = []
    while not conn.queue.empty():
        out.append(conn.queue.get_nowait())
    return out


async def test_a_failed_role_weight_write_leaves_no_role_behind(m: Master) -> None:
    before = fingerprint(m.state)
    m.fail()
    with pytest.raises(UnavailableError, match="disk I/O error"):
        await m.actor.run(lambda now: m.state.set_role_weight("eng/ml", 2.0))
    assert fingerprint(m.state) == before
    assert [r.role for r in m.state.role_statuses()] == []
    m.store.fail = None
    await m.actor.run(lambda now: m.state.set_role_weight("eng/ml", 2.0))
    assert m.state.roles.weights == {"eng/ml": 2.0} == dict(m.store.snap.role_weights)


async def test_a_failed_weight_change_keeps_the_weight_before(m: Master) -> None:
    await m.actor.run(lambda now: m.state.set_role_weight("eng", 2.0))
    m.fail()
    with pytest.raises(UnavailableError):
        await m.actor.run(lambda now: m.state.set_role_weight("eng", 1.0))
    assert m.state.roles.weights == {"eng": 2.0}


async def test_a_failed_quota_write_keeps_the_quota_before(m: Master) -> None:
    await m.actor.run(lambda now: m.state.set_quota("eng", R("cpus:1"), R("cpus:2")))
    before = fingerprint(m.state)
    m.fail()
    with pytest.raises(UnavailableError):
        await m.actor.run(lambda now: m.state.set_quota("eng", R("cpus:2"), None))
    with pytest.raises(UnavailableError):
        await m.actor.run(lambda now: m.state.set_quota("ops", R("cpus:1"), None))
    assert fingerprint(m.state) == before


async def test_a_failed_reserve_launches_nothing_and_reserves_nothing(m: Master) -> None:
    agent, agent_conn = await m.agent()
    fid = await m.framework()
    offer = m.offer(fid)
    sent(agent_conn)
    before = fingerprint(m.state)
    m.fail()
    with pytest.raises(UnavailableError):
        await m.actor.run(
            lambda now: m.state.accept(fid, [offer.id], [task("t1")], 0.0, now, reserve=R("cpus:2"))
        )
    assert fingerprint(m.state) == before
    assert not [e for e in sent(agent_conn) if isinstance(e, LaunchOnAgent)]
    # The offer's resources are free again: offered whole, unreserved.
    again = m.offer(fid)
    assert again.resources == R("cpus:4;mem:1024")


async def test_a_failed_unreserve_keeps_the_reservation(m: Master) -> None:
    agent, _ = await m.agent()
    fid = await m.framework()
    await m.actor.run(
        lambda now: m.state.accept(fid, [m.offer(fid).id], [], 0.0, now, reserve=R("cpus:2"))
    )
    assert m.state.dynamic_reservations == {agent: {"eng": R("cpus:2")}}
    before = fingerprint(m.state)
    m.fail()
    offer = m.offer(fid)
    with pytest.raises(UnavailableError):
        await m.actor.run(
            lambda now: m.state.accept(fid, [offer.id], [], 0.0, now, unreserve=R("cpus:2"))
        )
    assert fingerprint(m.state) == before


async def test_an_agent_whose_admission_failed_is_not_known(m: Master) -> None:
    m.fail()
    with pytest.raises(UnavailableError):
        await m.agent()
    assert m.state.agents == {} and m.actor.agents == {}
    assert m.state.allocate(m.now) == []


async def test_a_failed_reregistration_leaves_the_agent_disconnected(m: Master) -> None:
    agent, conn = await m.agent()
    m.actor.agent_stream_closed(agent, conn)
    before = fingerprint(m.state)
    m.fail()
    info = AgentInfo(hostname="h1", resources=R("cpus:8;mem:2048"), id=agent)
    with pytest.raises(UnavailableError):
        await m.actor.register_agent(info, [], Connection())
    assert fingerprint(m.state) == before
    assert m.state.agents[agent].status == rec.AGENT_DISCONNECTED
    assert agent not in m.actor.agents


async def test_a_framework_whose_subscription_failed_is_not_known(m: Master) -> None:
    await m.agent()
    m.fail()
    with pytest.raises(UnavailableError):
        await m.framework()
    assert m.state.frameworks == {} and m.actor.frameworks == {}


async def test_a_failed_resubscription_leaves_the_framework_as_it_was(m: Master) -> None:
    fid = await m.framework()
    m.actor.framework_stream_closed(fid, m.actor.frameworks[fid])
    before = fingerprint(m.state)
    m.fail()
    info = FrameworkInfo(name="renamed", roles=("eng", "ops"), failover_timeout_s=60, id=fid)
    with pytest.raises(UnavailableError):
        await m.actor.subscribe(info, Connection())
    assert fingerprint(m.state) == before
    assert m.state.frameworks[fid].status == rec.FRAMEWORK_DISCONNECTED


async def test_a_failed_teardown_keeps_the_framework_and_its_tasks(m: Master) -> None:
    agent, agent_conn = await m.agent()
    fid = await m.framework()
    await m.actor.run(lambda now: m.state.accept(fid, [m.offer(fid).id], [task("t1")], 0, now))
    sent(agent_conn)
    before = fingerprint(m.state)
    m.fail()
    with pytest.raises(UnavailableError):
        await m.actor.run(lambda now: m.state.teardown(fid, now))
    assert fingerprint(m.state) == before
    assert m.state.frameworks[fid].connected and fid in m.actor.frameworks
    assert not [e for e in sent(agent_conn) if isinstance(e, ShutdownFrameworkOnAgent)]


async def test_a_framework_past_its_failover_timeout_is_removed_once_the_write_succeeds(
    m: Master,
) -> None:
    agent, agent_conn = await m.agent()
    fid = await m.framework(failover_timeout_s=5)
    await m.actor.run(lambda now: m.state.accept(fid, [m.offer(fid).id], [task("t1")], 0, now))
    m.actor.framework_stream_closed(fid, m.actor.frameworks[fid])
    sent(agent_conn)
    before = fingerprint(m.state)
    m.clock.advance(6)
    m.fail()
    with pytest.raises(UnavailableError):
        await m.actor.run(lambda now: m.state.tick(now))
    assert fingerprint(m.state) == before
    assert not [e for e in sent(agent_conn) if isinstance(e, ShutdownFrameworkOnAgent)]
    m.store.fail = None  # the next tick writes the removal again
    await m.actor.run(lambda now: m.state.tick(now))
    assert fid not in m.state.frameworks and fid not in m.store.snap.frameworks
    assert ShutdownFrameworkOnAgent(agent, fid) in sent(agent_conn)


async def test_a_failed_mark_gone_keeps_the_agent_and_its_tasks(m: Master) -> None:
    agent, agent_conn = await m.agent()
    fid = await m.framework()
    await m.actor.run(lambda now: m.state.accept(fid, [m.offer(fid).id], [task("t1")], 0, now))
    sent(agent_conn)
    before = fingerprint(m.state)
    m.fail()
    with pytest.raises(UnavailableError):
        await m.actor.run(lambda now: m.state.mark_agent_gone(agent, now))
    assert fingerprint(m.state) == before
    assert agent in m.actor.agents and not sent(agent_conn)
    # Still the agent it was: its task can be killed.
    await m.actor.run(lambda _now: m.state.kill_task(fid, TaskId("t1"), 0.0))
    assert sent(agent_conn) == [KillOnAgent(agent, fid, TaskId("t1"), 0.0)]


async def test_an_object_too_big_for_the_store_is_invalid_argument_and_spoils_no_other_write(
    m: Master,
) -> None:
    class TooBig(RegistryError):
        status = "INVALID_ARGUMENT"

    # A valid name (validation passes); the store is what refuses it.
    big = "big-role"

    async def apply(ops: list[RegistryOp]) -> None:
        await asyncio.sleep(0)
        if any(isinstance(op, SetRoleWeight) and op.role == big for op in ops):
            raise TooBig(f"registry entry for role {big[:8]}... is over the store's limit")
        for op in ops:
            m.store.snap = op.apply(m.store.snap)

    m.store.apply = apply  # type: ignore[method-assign]
    results = await asyncio.gather(
        m.actor.run(lambda now: m.state.set_role_weight(big, 2.0)),
        m.actor.run(lambda now: m.state.set_role_weight("ok", 3.0)),
        return_exceptions=True,
    )
    assert isinstance(results[0], TooBig) and results[0].status == "INVALID_ARGUMENT"
    assert results[1] is None
    assert m.state.roles.weights == {"ok": 3.0} == dict(m.store.snap.role_weights)
