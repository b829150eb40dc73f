"""The jobs framework batches what it did per instance (issue 15), on a real `MasterActor`
with a real SQLite registry, through the in-process port, on the virtual clock: a batch of
status updates is written in one registry write and acknowledged in one message to the
agent, once that write is durable; a write the registry refuses acknowledges nothing, and
the changes are written again (and then acknowledged) when the agent sends them again."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from mesoslite.allocator.loader import load_allocator
from mesoslite.clock import VirtualClock
from mesoslite.ids import AgentId
from mesoslite.jobs.documents import job_from_doc
from mesoslite.jobs.framework import JobsFramework
from mesoslite.jobs.model import InstanceState, JobState
from mesoslite.master.actor import Connection, MasterActor
from mesoslite.master.events import AckOnAgent, LaunchOnAgent
from mesoslite.master.jobs_port import new_jobs_framework
from mesoslite.master.registry.base import PutJob, RegistryOp
from mesoslite.master.registry.sqlite import SqliteRegistryStore
from mesoslite.master.state import MasterState
from mesoslite.model import AgentInfo, StatusSource, TaskSpec, TaskState, TaskStatus
from mesoslite.resources import parse_resources
from mesoslite.testing import assert_eventually_async

from .test_framework_port import next_of

T0 = 1_800_000_000.0
N = 20
SPEC = f"""
name: many
type: batch
command: "true"
resources: {{cpus: 0.01, mem: 4}}
instances: {N}
"""


class RecordingStore(SqliteRegistryStore):
    """The real SQLite store; it also keeps the ops of every write asked of it and
    whether that write failed."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.writes: list[tuple[list[RegistryOp], bool]] = []

    async def apply(self, ops: list[RegistryOp]) -> None:
        try:
            await super().apply(ops)
        except Exception:
            self.writes.append((list(ops), False))
            raise
        self.writes.append((list(ops), True))

    def job_writes(self, since: int) -> list[tuple[list[PutJob], bool]]:
        out = []
        for ops, ok in self.writes[since:]:
            puts = [op for op in ops if isinstance(op, PutJob) and op.name == "many"]
            if puts:
                out.append((puts, ok))
        return out


class Cluster:
    def __init__(self, actor: MasterActor, jobs: JobsFramework, store: RecordingStore,
                 db: Path) -> None:
        self.actor, self.jobs, self.store, self.db = actor, jobs, store, db
        self.agent = Connection()
        self.agent_id = AgentId("")

    @property
    def clock(self) -> VirtualClock:
        assert isinstance(self.actor.clock, VirtualClock)
        return self.actor.clock

    async def launched(self) -> tuple[str, list[TaskSpec]]:
        """Submit the job, join the agent, and collect the launches of all N instances."""
        await self.jobs.submit(SPEC)
        info = AgentInfo(hostname="h1", resources=parse_resources("cpus:2;mem:512"))
        self.agent_id = await self.actor.register_agent(info, [], self.agent)
        tasks: list[TaskSpec] = []
        framework_id = ""
        while len(tasks) < N:
            launch = await next_of(self.agent, LaunchOnAgent, self.clock)
            framework_id = launch.framework_id
            tasks += launch.tasks
        return framework_id, tasks

    async def report(self, statuses: list[TaskStatus]) -> None:
        """The agent's one message with all these updates."""
        await self.actor.run(
            lambda now: self.actor.state.status_updates(self.agent_id, statuses, now))

    async def stored(self) -> Any:
        """The job as the registry file holds it now."""
        snap = await SqliteRegistryStore(self.db).load()
        return job_from_doc(snap.jobs["many"])

    def acks_queued(self) -> list[AckOnAgent]:
        items = []
        while not self.agent.queue.empty():
            items.append(self.agent.queue.get_nowait())
        return [i for i in items if isinstance(i, AckOnAgent)]


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    state = MasterState(allocator=load_allocator("drf"), offer_timeout_s=30,
                        agent_reregister_timeout_s=10)
    db = tmp_path / "r.sqlite"
    store = RecordingStore(db)
    clock = VirtualClock(T0)
    actor = MasterActor(state, store, clock, allocation_interval_s=3600,
                        heartbeat_interval_s=3600, agent_ping_interval_s=3600)
    await actor.start()
    jobs = new_jobs_framework(actor, clock, ("*",), 0)
    await jobs.start()
    try:
        yield Cluster(actor, jobs, store, db)
    finally:
        await jobs.stop()
        await actor.stop()


def finished(framework_id: str, agent_id: AgentId, tasks: list[TaskSpec]) -> list[TaskStatus]:
    """Each task's RUNNING and FINISHED, as an agent sends a short task's in one message."""
    return [TaskStatus(t.task_id, framework_id, agent_id, state,  # type: ignore[arg-type]
                       source=StatusSource.AGENT, uuid=f"{state.name}-{t.task_id}".encode(),
                       exit_code=0 if state == TaskState.FINISHED else None)
            for t in tasks for state in (TaskState.RUNNING, TaskState.FINISHED)]


def acked(ack: AckOnAgent) -> list[tuple[str, bytes]]:
    return sorted((t, u) for _, t, u in ack.acks)


def newest(tasks: list[TaskSpec]) -> list[tuple[str, bytes]]:
    """Acknowledgements are cumulative per task: FINISHED's alone drops RUNNING's too."""
    return sorted((t.task_id, f"FINISHED-{t.task_id}".encode()) for t in tasks)


def refuse_job_writes(db: Path, refuse: bool) -> None:
    """Make the registry file refuse (or take again) job documents, as a failing disk
    would: a trigger added by another connection."""
    with sqlite3.connect(db, isolation_level=None) as conn:
        if refuse:
            conn.execute(
                "CREATE TRIGGER refuse_jobs BEFORE INSERT ON objects "
                "WHEN NEW.kind = 'jobs' BEGIN SELECT RAISE(ABORT, 'disk refused'); END"
            )
        else:
            conn.execute("DROP TRIGGER refuse_jobs")
    conn.close()


async def test_a_batch_of_updates_is_one_registry_write_and_one_acknowledgement(
    cluster: Cluster,
) -> None:
    framework_id, tasks = await cluster.launched()
    before = len(cluster.store.writes)
    await cluster.report(finished(framework_id, cluster.agent_id, tasks))

    ack = await next_of(cluster.agent, AckOnAgent, cluster.clock)
    # All N in one message, sent once they were durable: the registry has the job done.
    assert acked(ack) == newest(tasks)
    assert (await cluster.stored()).state == JobState.SUCCEEDED
    [(puts, ok)] = cluster.store.job_writes(before)  # one write held the whole batch
    assert ok and job_from_doc(puts[-1].doc).state == JobState.SUCCEEDED
    await asyncio.sleep(0.05)
    assert cluster.acks_queued() == []  # and no acknowledgement per update besides


async def test_a_refused_write_acknowledges_nothing_and_the_batch_is_written_again(
    cluster: Cluster,
) -> None:
    framework_id, tasks = await cluster.launched()
    updates = finished(framework_id, cluster.agent_id, tasks)
    before = len(cluster.store.writes)
    refuse_job_writes(cluster.db, True)
    await cluster.report(updates)

    async def refused() -> bool:
        return any(not ok for _, ok in cluster.store.job_writes(before))

    await assert_eventually_async(refused, timeout_s=5)
    await asyncio.sleep(0.05)  # an acknowledgement would be queued by now
    assert cluster.acks_queued() == []
    stored = await cluster.stored()
    assert stored.state != JobState.SUCCEEDED
    assert not any(i.state == InstanceState.SUCCEEDED for i in stored.runs[-1].instances)

    # The disk takes writes again; the agent sends the unacknowledged updates again.
    refuse_job_writes(cluster.db, False)
    await cluster.report(updates)
    ack = await next_of(cluster.agent, AckOnAgent, cluster.clock)
    assert acked(ack) == newest(tasks)
    stored = await cluster.stored()
    assert stored.state == JobState.SUCCEEDED
    assert all(i.state == InstanceState.SUCCEEDED for i in stored.runs[-1].instances)
