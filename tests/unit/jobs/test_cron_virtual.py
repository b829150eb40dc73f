"""Cron on the virtual clock: the jobs framework on a real `MasterActor` (SQLite registry)
through its in-process port, driven over several virtual minutes and across two simulated
master restarts (one between two times, one across a time): every scheduled time runs once.

The agent is played by the test: it finishes each launched task at once and records which
cron run it belonged to. A master is stopped only once every update was acknowledged (so
recorded): this agent, unlike the real one, sends no update again after a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from mesoslite.allocator.loader import load_allocator
from mesoslite.clock import VirtualClock
from mesoslite.ids import AgentId
from mesoslite.jobs.framework import TICK_S, JobsFramework
from mesoslite.jobs.model import RunState
from mesoslite.master.actor import CLOSE, Connection, MasterActor
from mesoslite.master.events import AckOnAgent, LaunchOnAgent
from mesoslite.master.jobs_port import new_jobs_framework
from mesoslite.master.registry.sqlite import SqliteRegistryStore
from mesoslite.master.state import MasterState
from mesoslite.model import AgentInfo, StatusSource, TaskState, TaskStatus
from mesoslite.resources import parse_resources

T0 = 1_800_000_000.0  # a minute boundary (UTC)
NEW_AGENT = AgentId("")  # registers as a new agent
STEP_S = 0.25
REAL_LIMIT_S = 30.0
SPEC = """
name: every-minute
type: cron
command: "true"
schedule: "* * * * *"
timezone: UTC
concurrency: forbid
"""


class Master:
    """One master's life: actor, jobs framework, and the test's agent on its stream."""

    def __init__(self, db: Path, clock: VirtualClock, ledger: Counter[str]) -> None:
        self.db, self.clock, self.ledger = db, clock, ledger
        state = MasterState(allocator=load_allocator("drf"), offer_timeout_s=30,
                            agent_reregister_timeout_s=10)
        # Periodic passes as in the daemon (virtual time): an offer declined (with a filter)
        # while the framework had nothing to run comes back once the filter has passed.
        self.actor = MasterActor(state, SqliteRegistryStore(db), clock,
                                 allocation_interval_s=0.2, heartbeat_interval_s=3600,
                                 agent_ping_interval_s=3600)
        self.agent = Connection()
        self.agent_id = AgentId("")
        self.unacked: set[str] = set()  # updates not acknowledged (not yet recorded)
        self.jobs: JobsFramework | None = None
        self._agent_task: asyncio.Task[None] | None = None

    async def start(self, agent_id: AgentId = NEW_AGENT) -> None:
        await self.actor.start()
        info = AgentInfo(hostname="h1", resources=parse_resources("cpus:2;mem:512"),
                         id=agent_id)
        self.agent_id = await self.actor.register_agent(info, [], self.agent)
        self._agent_task = asyncio.create_task(self._play_agent())
        self.jobs = new_jobs_framework(self.actor, self.clock, ("*",), 0)
        await self.jobs.start()

    async def _play_agent(self) -> None:
        while (item := await self.agent.queue.get()) is not CLOSE:
            if isinstance(item, AckOnAgent):
                self.unacked.difference_update(task_id for _, task_id, _ in item.acks)
            if not isinstance(item, LaunchOnAgent):
                continue
            for task in item.tasks:
                self.unacked.add(task.task_id)
                self.ledger[task.task_id.split(".")[1]] += 1  # name.RUN.instance.attempt
                done = TaskStatus(task.task_id, item.framework_id, self.agent_id,
                                  TaskState.FINISHED, source=StatusSource.AGENT,
                                  uuid=task.task_id.encode(), exit_code=0)
                await self.actor.run(
                    lambda now, s=done: self.actor.state.status_updates(self.agent_id, [s], now))

    async def stop(self) -> None:
        if self.jobs is not None:
            await self.jobs.stop()
        if self._agent_task is not None:
            self._agent_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._agent_task
        await self.actor.stop()


@pytest.fixture
async def masters(tmp_path: Path) -> AsyncIterator[list[Master]]:
    started: list[Master] = []
    try:
        yield started
    finally:
        for m in started:
            with contextlib.suppress(Exception):
                await m.stop()


async def advance_until(m: Master, done: Callable[[], bool], *, before: float) -> None:
    """Move virtual time in small steps, never to `before`, until `done`. Steps wait while a
    run of the framework's timers is under way, and at `before` time waits in real time
    (bounded): registry writes (SQLite, off the loop) take real time. The master's timers
    (allocation batching, periodic passes) are on the same clock and move with the steps."""
    deadline = time.monotonic() + REAL_LIMIT_S
    while not done():
        assert m.jobs is not None
        assert time.monotonic() < deadline, (
            f"not done within {REAL_LIMIT_S}s (real time): {m.jobs.status('every-minute')}")
        if not m.jobs.timer_running and m.clock.now() + STEP_S < before:
            m.clock.advance(STEP_S)
        await asyncio.sleep(0.002)


def run_ids(t: float) -> str:
    return f"c{int(t)}"


async def test_every_cron_time_runs_once_over_virtual_minutes_across_master_restarts(
    masters: list[Master], tmp_path: Path,
) -> None:
    clock = VirtualClock(T0 + 10)
    ledger: Counter[str] = Counter()
    db = tmp_path / "registry.sqlite"

    async def start(agent_id: AgentId = NEW_AGENT) -> Master:
        m = Master(db, clock, ledger)
        masters.append(m)
        await m.start(agent_id)
        return m

    def succeeded(m: Master, times: list[float]) -> Callable[[], bool]:
        def check() -> bool:
            assert m.jobs is not None
            runs = m.jobs.status("every-minute").runs
            return not m.unacked and [(r.scheduled_at, r.state) for r in runs] == [
                (t, RunState.SUCCEEDED) for t in times]
        return check

    m = await start()
    assert m.jobs is not None
    await m.jobs.submit(SPEC)
    assert m.jobs.status("every-minute").next_run_at == T0 + 60
    await advance_until(m, succeeded(m, [T0 + 60]), before=T0 + 120)
    assert clock.now() >= T0 + 60  # not before its time
    assert ledger == {run_ids(T0 + 60): 1}

    # Restart between two times: the one that ran is not run again, the next ones run once.
    await m.stop()
    m = await start(m.agent_id)
    times = [T0 + 60, T0 + 120, T0 + 180]
    await advance_until(m, succeeded(m, times), before=T0 + 240)
    assert ledger == {run_ids(t): 1 for t in times}

    # Restart across a time: the time missed while no master led runs once, late.
    await m.stop()
    clock.advance(T0 + 250 - clock.now())
    m = await start(m.agent_id)
    times += [T0 + 240]
    await advance_until(m, succeeded(m, times), before=T0 + 300)
    times += [T0 + 300]
    await advance_until(m, succeeded(m, times), before=T0 + 360)
    assert ledger == {run_ids(t): 1 for t in times}
    assert m.jobs is not None
    view = m.jobs.status("every-minute")
    assert view.next_run_at == T0 + 360
    # On time, in virtual time: each started at the first tick after it (the one missed
    # while down at the new master's first tick).
    late = {r.scheduled_at: r.started_at - r.scheduled_at for r in view.runs
            if r.scheduled_at is not None and r.started_at is not None}
    assert late.pop(T0 + 240) <= 10 + TICK_S + STEP_S
    assert all(0 <= d <= TICK_S + STEP_S for d in late.values()), late
