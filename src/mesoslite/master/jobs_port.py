"""The master's side of the jobs framework's port (`mesoslite.jobs.port.MasterPort`), in
process: calls go to `MasterActor` as the Scheduler servicer's do, minus protobuf, and the
framework's events are drained from its `Connection` and handed over as plain values.

This and the Jobs servicer are the only master modules that import `mesoslite.jobs`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from mesoslite.allocator.base import Demand
from mesoslite.allocator.tiers import priority_of
from mesoslite.clock import Clock
from mesoslite.ids import AgentId, FrameworkId, OfferId, TaskId
from mesoslite.jobs.framework import JobsFramework
from mesoslite.jobs.port import AgentRoom, ClusterRoom, JobsEvents, JobsState
from mesoslite.master import records as rec
from mesoslite.master.actor import CLOSE, Connection, MasterActor
from mesoslite.master.allocation import reserved_on
from mesoslite.master.events import ErrorEvent, OffersEvent, UpdateEvent
from mesoslite.master.registry.base import PutJob, RegistryOp, RemoveJob, SetJobsFrameworkId
from mesoslite.model import FrameworkInfo, TaskSpec, TaskStatus
from mesoslite.resources import Resources

logger = logging.getLogger(__name__)


class InProcessMasterPort:
    def __init__(self, actor: MasterActor) -> None:
        self.actor = actor
        self._fid = FrameworkId("")
        self._conn: Connection | None = None
        self._drain: asyncio.Task[None] | None = None
        # Streams replaced by a newer subscription: the master tells each it was superseded,
        # which is no news to the framework.
        self._replaced: set[int] = set()

    def load(self) -> JobsState:
        snap = self.actor.snapshot
        return JobsState(docs=dict(snap.jobs), framework_id=snap.jobs_framework_id)

    def agent_totals(self) -> list[Resources]:
        return [a.info.resources for a in self.actor.state.agents.values()]

    def cluster_room(self) -> ClusterRoom:
        books = self.actor.state.books
        fw = books.frameworks.get(self._fid) if self._fid else None
        mine: dict[AgentId, Resources] = {}  # our outstanding offers count as free
        for offer in books.offers.of_framework(self._fid) if fw is not None else ():
            mine[offer.agent_id] = mine.get(offer.agent_id, Resources.empty()) + offer.resources
        agents = []
        for agent in books.agents.values():
            if agent.status != rec.AGENT_ACTIVE or agent.draining:
                continue
            info, reserved = agent.info, reserved_on(books, agent)
            free, reserved_free = agent.free, dict[str, Resources]()
            if reserved:
                free, reserved_free = books.reservations.split(
                    agent.id, info.resources, reserved, agent.used + agent.offered)
            agents.append(AgentRoom(
                agent_id=agent.id, hostname=info.hostname, attributes=dict(info.attributes),
                total=info.resources, free=free + mine.get(agent.id, Resources.empty()),
                reserved_free=reserved_free,
            ))
        return ClusterRoom(
            agents=tuple(sorted(agents, key=lambda a: (a.hostname, a.agent_id))),
            quota=self._quota_held(fw), reasons=self._reasons(fw),
        )

    def _quota_held(self, fw: rec.FrameworkRecord | None) -> dict[str, tuple[Resources, Resources]]:
        books = self.actor.state.books
        out = {}
        for role, quota in books.roles.quotas.items():
            if quota.limit is None:
                continue
            held = Resources.empty()
            for other in books.frameworks.values():
                if role in other.info.all_roles:
                    held = held + (other.used_by_role.get(role, Resources.empty())
                                   if other is fw else other.held(role))
            out[role] = (quota.limit, held)
        return out

    def _reasons(self, fw: rec.FrameworkRecord | None) -> dict[str, str]:
        if fw is None:
            return {}
        books = self.actor.state.books
        per_role = dict(books.last_role_reasons.get(fw.id, {}))
        roles = fw.info.all_roles
        if len(roles) == 1 and fw.id in books.last_reasons:
            per_role[roles[0]] = books.last_reasons[fw.id]
        return per_role

    async def persist(self, put: Mapping[str, str], remove: Sequence[str]) -> None:
        ops: list[RegistryOp] = [RemoveJob(n) for n in remove]
        ops += [PutJob(name, doc) for name, doc in put.items()]
        await self.actor.persist(ops)

    async def set_framework_id(self, framework_id: FrameworkId) -> None:
        await self.actor.persist([SetJobsFrameworkId(framework_id)])

    # ------------------------------------------------------------------ the subscription

    async def subscribe(self, info: FrameworkInfo, events: JobsEvents) -> FrameworkId:
        conn = Connection()
        if self._conn is not None:
            self._replaced.add(id(self._conn))  # drained to its end, offers and updates too
        fid = await self.actor.subscribe(info, conn)
        self._fid, self._conn = fid, conn
        self._drain = asyncio.create_task(self._deliver(conn, events), name="jobs-events")
        return fid

    async def unsubscribe(self) -> None:
        conn, drain, self._conn, self._drain = self._conn, self._drain, None, None
        if drain is not None:
            drain.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await drain
        if conn is not None:
            self.actor.framework_stream_closed(self._fid, conn)

    async def _deliver(self, conn: Connection, events: JobsEvents) -> None:
        held: Any = None  # taken off the queue while gathering updates, handled next
        while True:
            item, held = (held, None) if held is not None else (await conn.queue.get(), None)
            if item is CLOSE:
                self._replaced.discard(id(conn))
                return
            try:
                if isinstance(item, OffersEvent):
                    await events.on_offers(list(item.offers))
                elif isinstance(item, UpdateEvent):
                    # The updates queued back to back (several agents' messages) go as one
                    # batch: one registry write and one acknowledgement per agent for all.
                    statuses = list(item.statuses)
                    while held is None and not conn.queue.empty():
                        nxt = conn.queue.get_nowait()
                        if isinstance(nxt, UpdateEvent):
                            statuses += nxt.statuses
                        else:
                            held = nxt
                    await events.on_updates(statuses)
                elif isinstance(item, ErrorEvent) and id(conn) not in self._replaced:
                    await events.on_error(item.message)
            except Exception:
                logger.exception("jobs framework failed on %s", type(item).__name__)

    # ------------------------------------------------------------------ calls

    async def accept(self, offer_id: OfferId, tasks: Sequence[TaskSpec]) -> None:
        fid, tasks = self._fid, list(tasks)
        await self.actor.run(lambda now: self.actor.state.accept(fid, [offer_id], tasks, 5.0, now))

    async def decline(self, offer_ids: Sequence[OfferId], refuse_seconds: float) -> None:
        fid, ids = self._fid, list(offer_ids)
        await self.actor.run(lambda now: self.actor.state.decline(fid, ids, refuse_seconds, now))

    async def kill(self, task_id: TaskId, agent_id: AgentId) -> None:
        fid = self._fid
        # Grace 0: the task's own kill_grace_period_s.
        await self.actor.run(lambda _now: self.actor.state.kill_task(fid, task_id, 0.0))

    async def acknowledge(self, statuses: Sequence[TaskStatus]) -> None:
        fid = self._fid
        acks = [(s.agent_id, s.task_id, s.uuid) for s in statuses if s.uuid]
        if acks:  # one `AckOnAgent` per agent for the lot
            await self.actor.run(lambda now: self.actor.state.acknowledge(fid, acks))

    async def reconcile(self, tasks: Sequence[tuple[TaskId, AgentId]] = ()) -> None:
        fid, wanted = self._fid, list(tasks)
        await self.actor.run(lambda now: self.actor.state.reconcile(fid, wanted, now))

    async def suppress(self) -> None:
        fid = self._fid
        await self.actor.run(lambda now: self.actor.state.suppress(fid))

    async def revive(self) -> None:
        fid = self._fid
        await self.actor.run(lambda now: self.actor.state.revive(fid))

    async def declare_waiting(self, by_role: Mapping[str, tuple[Demand, ...]]) -> None:
        fid, waiting = self._fid, dict(by_role)
        await self.actor.run(lambda now: self.actor.state.declare_waiting(fid, waiting, now))

    def role_priority(self, role: str) -> int:
        return priority_of(role, self.actor.state.roles.priorities)


def new_jobs_framework(
    actor: MasterActor, clock: Clock, roles: tuple[str, ...], job_retention_s: float
) -> JobsFramework:
    """The jobs framework of this master, reaching it through an in-process port."""
    return JobsFramework(InProcessMasterPort(actor), clock, roles, job_retention_s=job_retention_s)
