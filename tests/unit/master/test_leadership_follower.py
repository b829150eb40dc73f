"""The leadership loop (`LeadershipFollower`, issue 12 item 5) on a real `MasterActor` (virtual
clock, in-memory registry) and a contender whose changes the test plays: elected recovers
and starts leading once, suspended pauses and arms the watchdog, resumed leads again,
deposed stops the master with its reason. The real contenders are tested against ZooKeeper
in tests/integration/test_zk_*.py."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from mesoslite.allocator.loader import load_allocator
from mesoslite.clock import VirtualClock
from mesoslite.master import leadership as leadership_mod
from mesoslite.master.actor import MasterActor
from mesoslite.master.election.base import Change, LeadershipChange
from mesoslite.master.leadership import ExitWatchdog, Leadership, LeadershipFollower, Stopping
from mesoslite.master.registry.base import RegistrySnapshot
from mesoslite.master.state import MasterState

from .test_actor_timers import MemoryRegistry


class PlayedContender:
    """A contender whose changes come from `play`."""

    def __init__(self) -> None:
        self.changes: asyncio.Queue[LeadershipChange] = asyncio.Queue()
        self.leader_address = ""
        self.epoch = 7

    def play(self, change: Change, reason: str = "") -> None:
        self.changes.put_nowait(LeadershipChange(change, reason))

    async def start(self) -> None:
        pass

    async def next_change(self) -> LeadershipChange:
        return await self.changes.get()

    async def close(self) -> None:
        pass


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_the_follower_leads_pauses_resumes_and_stops_when_deposed() -> None:
    state = MasterState(
        allocator=load_allocator("drf"), offer_timeout_s=30, agent_reregister_timeout_s=10
    )
    actor = MasterActor(
        state, MemoryRegistry(), VirtualClock(), allocation_interval_s=1,
        heartbeat_interval_s=1, agent_ping_interval_s=1,
    )
    contender, leadership = PlayedContender(), Leadership("master-test")
    exits: list[int] = []
    watchdog, stopping = ExitWatchdog(exit=exits.append), Stopping()
    started: list[bool] = []
    changes: list[bool] = []

    async def start_leading() -> None:
        started.append(True)

    follower = LeadershipFollower(
        contender, leadership, actor, start_leading=start_leading,
        changed=lambda: changes.append(leadership.leading), watchdog=watchdog,
        stopping=stopping, session_timeout_s=10.0,
    )
    running = asyncio.create_task(follower.run())
    try:
        assert not leadership.leading
        contender.play(Change.ELECTED)
        await settle()
        assert leadership.leading and started == [True] and changes == [True]
        contender.play(Change.SUSPENDED, "lost contact with ZooKeeper")
        await settle()
        assert not leadership.leading and actor.paused and watchdog.armed
        assert leadership.reason == "lost contact with ZooKeeper"
        contender.play(Change.RESUMED)
        await settle()
        assert leadership.leading and not actor.paused and not watchdog.armed
        contender.play(Change.ELECTED)  # elected again: not started twice
        await settle()
        assert started == [True]
        contender.play(Change.DEPOSED, "another master leads")
        await asyncio.wait_for(running, 1.0)
        assert stopping.event.is_set() and stopping.lost == ["another master leads"]
        assert not leadership.leading and actor.paused and watchdog.armed
        assert changes == [True, False, True, True]  # no master.json rewrite when deposed
    finally:
        watchdog.disarm()
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        await actor.stop()
    assert exits == []


class WarmRegistry(MemoryRegistry):
    """Records what a standby's registry is asked: `keep_warm` until cancelled, then load."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    async def keep_warm(self) -> None:
        self.calls.append("keep_warm")
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.calls.append("cancelled")
            raise

    async def load(self) -> RegistrySnapshot:
        self.calls.append("load")
        return await super().load()


async def test_a_standby_keeps_warm_until_elected_then_recovers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A module only a leader would import, which nothing has imported yet.
    (tmp_path / "leader_only_probe.py").write_text("VALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "leader_only_probe", raising=False)
    monkeypatch.setattr(leadership_mod, "LEADER_ONLY_MODULES", ("leader_only_probe",))
    state = MasterState(
        allocator=load_allocator("drf"), offer_timeout_s=30, agent_reregister_timeout_s=10
    )
    registry = WarmRegistry()
    actor = MasterActor(
        state, registry, VirtualClock(), allocation_interval_s=1,
        heartbeat_interval_s=1, agent_ping_interval_s=1,
    )
    contender, leadership = PlayedContender(), Leadership("master-test")
    watchdog, stopping = ExitWatchdog(exit=lambda code: None), Stopping()

    async def start_leading() -> None:
        pass

    follower = LeadershipFollower(
        contender, leadership, actor, start_leading=start_leading, changed=lambda: None,
        watchdog=watchdog, stopping=stopping, session_timeout_s=10.0,
    )
    running = asyncio.create_task(follower.run())
    try:
        for _ in range(200):  # the import runs in a thread
            if "leader_only_probe" in sys.modules:
                break
            await asyncio.sleep(0.01)
        assert "leader_only_probe" in sys.modules
        assert registry.calls == ["keep_warm"] and not leadership.leading
        contender.play(Change.ELECTED)
        await settle()
        assert leadership.leading and registry.calls == ["keep_warm", "load"]
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        await actor.stop()
    assert registry.calls == ["keep_warm", "load", "cancelled"]


class ObservingContender(PlayedContender):
    """A contender whose watch has fired but which has not acted on it yet."""

    def __init__(self) -> None:
        super().__init__()
        self.elected = False
        self.observed = asyncio.Event()
        self.looked_again = 0

    def look_again(self) -> None:
        self.looked_again += 1

    async def settled(self, timeout_s: float) -> None:
        await asyncio.wait_for(self.observed.wait(), timeout_s)


async def test_a_call_that_beats_our_own_election_waits_for_it_instead_of_being_refused() -> None:
    # A client found this master in ZooKeeper as the old leader's znode went, before this
    # master's own watch made it leader (#15): the guard waits for the election to settle.
    state = MasterState(
        allocator=load_allocator("drf"), offer_timeout_s=30, agent_reregister_timeout_s=10
    )
    actor = MasterActor(
        state, MemoryRegistry(), VirtualClock(), allocation_interval_s=1,
        heartbeat_interval_s=1, agent_ping_interval_s=1,
    )
    contender, leadership = ObservingContender(), Leadership("master-test")
    watchdog, stopping = ExitWatchdog(exit=lambda code: None), Stopping()

    async def start_leading() -> None:
        pass

    follower = LeadershipFollower(
        contender, leadership, actor, start_leading=start_leading, changed=lambda: None,
        watchdog=watchdog, stopping=stopping, session_timeout_s=10.0,
    )
    running = asyncio.create_task(follower.run())
    call = asyncio.create_task(leadership.until_recovered())
    try:
        await settle()
        assert not call.done()  # held while the contender acts on what ZooKeeper said
        contender.elected = True  # ...which elects us
        contender.play(Change.ELECTED)
        contender.observed.set()
        await asyncio.wait_for(call, 1.0)
        assert leadership.leading  # the call goes on to a leader, not a redirect
        assert contender.looked_again == 1  # it had the contender read ZooKeeper again
        # A standby with nothing pending refuses at once, as before.
        other = Leadership("master-standby")
        await asyncio.wait_for(other.until_recovered(), 0.1)
        assert not other.leading
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        await actor.stop()


async def test_a_stopping_master_refuses_at_once_without_reading_the_election_again() -> None:
    contender = ObservingContender()  # never settles: a stopping master must not wait on it
    leadership = Leadership("master-old", reason="stopping")
    leadership.settled_of, leadership.look_again_of = contender.settled, contender.look_again
    await asyncio.wait_for(leadership.until_recovered(), 0.1)
    assert not leadership.leading and contender.looked_again == 0
