"""The jobs framework on a real `MasterActor` (SQLite registry) through the in-process port,
with no gRPC and no protobuf in between, on the virtual clock: a job's task is launched on
the agent's stream, its update is acknowledged to the agent once recorded, and the ended
job is removed from the registry once `job_retention_s` of virtual time has passed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from mesoslite.allocator.loader import load_allocator
from mesoslite.clock import VirtualClock
from mesoslite.errors import NotFoundError
from mesoslite.jobs.framework import JobsFramework
from mesoslite.jobs.model import JobState
from mesoslite.master.actor import Connection, MasterActor
from mesoslite.master.constants import ALLOCATION_BATCH_S
from mesoslite.master.events import AckOnAgent, LaunchOnAgent
from mesoslite.master.jobs_port import new_jobs_framework
from mesoslite.master.registry.sqlite import SqliteRegistryStore
from mesoslite.master.state import MasterState
from mesoslite.model import AgentInfo, StatusSource, TaskState, TaskStatus
from mesoslite.resources import parse_resources
from mesoslite.testing import assert_eventually_async

T0 = 1_800_000_000.0
RETENTION_S = 3600.0


@pytest.fixture
async def actor(tmp_path: Path) -> AsyncIterator[MasterActor]:
    state = MasterState(allocator=load_allocator("drf"), offer_timeout_s=30,
                        agent_reregister_timeout_s=10)
    actor = MasterActor(state, SqliteRegistryStore(tmp_path / "r.sqlite"), VirtualClock(T0),
                        allocation_interval_s=3600, heartbeat_interval_s=3600,
                        agent_ping_interval_s=3600)
    await actor.start()
    try:
        yield actor
    finally:
        await actor.stop()


async def next_of(conn: Connection, kind: type[Any], clock: VirtualClock) -> Any:
    """The next `kind` sent on `conn`; the actor's allocation batching runs on the virtual
    clock, so move it on (a batching window at a time) while waiting."""
    for _ in range(100):
        try:
            item = await asyncio.wait_for(conn.queue.get(), 0.05)
        except TimeoutError:
            clock.advance(ALLOCATION_BATCH_S)
            continue
        if isinstance(item, kind):
            return item
    raise AssertionError(f"no {kind.__name__} on the connection")


async def tick_after(jobs: JobsFramework, clock: VirtualClock, seconds: float) -> None:
    """Move the virtual clock on by `seconds`: the framework's tick falls due and runs to
    its end (its timer is set again only once the previous run ended, so wait for that)."""

    async def idle() -> bool:
        return not jobs.timer_running

    await assert_eventually_async(idle, timeout_s=5)
    clock.advance(seconds)
    await asyncio.sleep(0)  # the run starts
    await assert_eventually_async(idle, timeout_s=5)


async def test_a_job_runs_through_the_port_and_is_removed_after_the_retention_time(
    actor: MasterActor, tmp_path: Path,
) -> None:
    clock = actor.clock
    assert isinstance(clock, VirtualClock)
    jobs = new_jobs_framework(actor, clock, ("*",), RETENTION_S)
    await jobs.start()
    try:
        await jobs.submit('name: one\ntype: batch\ncommand: "true"\n')
        # The agent after the job: one there before is offered to the framework while it
        # has nothing to run, and the decline (filtered) may come after the job's revive;
        # nothing but a periodic pass (off here) would offer it again.
        agent = Connection()
        info = AgentInfo(hostname="h1", resources=parse_resources("cpus:2;mem:512"))
        agent_id = await actor.register_agent(info, [], agent)
        launch = await next_of(agent, LaunchOnAgent, clock)
        [task] = launch.tasks
        assert task.task_id == "one.r1.0.1" and task.agent_id == agent_id
        done = TaskStatus(task.task_id, launch.framework_id, agent_id, TaskState.FINISHED,
                          source=StatusSource.AGENT, uuid=b"u-1", exit_code=0)
        await actor.run(lambda now: actor.state.status_updates(agent_id, [done], now))
        ack = await next_of(agent, AckOnAgent, clock)
        assert ack.acks == ((launch.framework_id, task.task_id, b"u-1"),)
        assert jobs.status("one").state == JobState.SUCCEEDED

        await tick_after(jobs, clock, RETENTION_S - 1)
        assert [v.name for v in jobs.list()] == ["one"]  # not yet
        await tick_after(jobs, clock, 1)
        assert "one" not in [v.name for v in jobs.list()]
        with pytest.raises(NotFoundError):
            jobs.status("one")
    finally:
        await jobs.stop()
    assert "one" not in (await SqliteRegistryStore(tmp_path / "r.sqlite").load()).jobs
