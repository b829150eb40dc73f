"""The Scheduler gRPC service: a thin adapter from frameworks' calls to `MasterActor`."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import grpc

from mesoslite import convert as c
from mesoslite._proto.v1 import scheduler_pb2, scheduler_pb2_grpc
from mesoslite.allocator.base import Demand
from mesoslite.errors import MesosliteError, ValidationError
from mesoslite.ids import AgentId, FrameworkId, OfferId, TaskId
from mesoslite.limits import (
    MAX_DEMAND_COUNT,
    MAX_DEMANDS,
    MAX_IDS_PER_CALL,
    MAX_ROLES,
    MAX_TASKS_PER_ACCEPT,
    MAX_UUID,
    check_count,
    check_id,
    check_ids,
    check_length,
    check_role,
)
from mesoslite.master.actor import CLOSE, HEARTBEAT, Connection, MasterActor
from mesoslite.master.convert import HEARTBEAT_EVENT, event_to_pb
from mesoslite.master.events import UpdateEvent
from mesoslite.model import MasterInfo
from mesoslite.rpc import handle_errors, status_code
from mesoslite.security import authz_master as az
from mesoslite.security.authz import Authorizer
from mesoslite.security.identity import caller_of

logger = logging.getLogger(__name__)
OK = scheduler_pb2.CallResponse()
Ctx = grpc.aio.ServicerContext[Any, Any]


def _fid(value: str) -> FrameworkId:
    if not value:
        raise ValidationError("framework_id", "must not be empty")
    check_id("framework_id", value)
    return FrameworkId(value)


def _offer_ids(values: Any) -> list[OfferId]:
    ids = list(values)
    check_ids("offer_ids", ids)
    return [OfferId(o) for o in ids]


def _roles(values: Any) -> tuple[str, ...]:
    roles = tuple(values)
    check_count("roles", len(roles), MAX_ROLES)
    for i, role in enumerate(roles):
        check_role(f"roles[{i}]", role)
    return roles


# The most updates sent in one UPDATE event (each is acknowledged in one call).
MAX_UPDATES_PER_EVENT = 1000


def _gather_updates(conn: Connection, first: UpdateEvent) -> tuple[UpdateEvent, Any]:
    """`first` and the updates queued right behind it (several agents' messages, while the
    stream was writing) as one event: one message, one dispatch and one acknowledgement
    call for all. Returns the event and the item that ended the run (None if the queue
    did), which is sent next: the order of events is kept."""
    if conn.queue.empty():
        return first, None
    statuses = list(first.statuses)
    held: Any = None
    while len(statuses) < MAX_UPDATES_PER_EVENT and not conn.queue.empty():
        nxt = conn.queue.get_nowait()
        if not isinstance(nxt, UpdateEvent):
            held = nxt
            break
        statuses += nxt.statuses
    return UpdateEvent(tuple(statuses)), held


class SchedulerServicer(scheduler_pb2_grpc.SchedulerServicer):
    def __init__(
        self, actor: MasterActor, master_info: MasterInfo, authz: Authorizer | None = None
    ) -> None:
        self.actor = actor
        self.master_info = master_info
        self.authz = authz or Authorizer()

    def _own(self, context: Ctx, fid: FrameworkId) -> None:
        """Authorization (#14): only the framework's principal makes its calls."""
        az.check_own_framework(caller_of(context).principal, self.actor.state, fid)

    def _owned(self, context: Ctx, action: str, fid: FrameworkId) -> None:
        """Authorization (#14): `action` on framework `fid`, judged by its owner."""
        owner = az.framework_owner(self.actor.state, fid)
        if owner is not None:
            self.authz.check(caller_of(context).principal, action, owner)

    async def Subscribe(  # noqa: N802
        self, request: scheduler_pb2.SubscribeRequest, context: Ctx
    ) -> AsyncIterator[scheduler_pb2.Event]:
        conn = Connection()
        try:
            info = c.framework_from_pb(request.framework_info)
            info = az.authorize_subscribe(
                self.authz, caller_of(context).principal, info, self.actor.state
            )
            fid = await self.actor.subscribe(info, conn)
        except MesosliteError as e:
            await context.abort(status_code(e), e.message)
            return
        try:
            yield scheduler_pb2.Event(
                type=scheduler_pb2.Event.SUBSCRIBED,
                subscribed=scheduler_pb2.Event.Subscribed(
                    framework_id=fid,
                    heartbeat_interval_s=self.actor.heartbeat_interval_s,
                    master_info=c.master_info_to_pb(self.master_info),
                ),
            )
            held: Any = None  # taken off the queue while gathering updates, sent next
            while True:
                item, held = (held, None) if held is not None else (await conn.queue.get(), None)
                if item is CLOSE:
                    return
                if isinstance(item, UpdateEvent):
                    item, held = _gather_updates(conn, item)
                yield HEARTBEAT_EVENT if item is HEARTBEAT else event_to_pb(item)
        finally:
            self.actor.framework_stream_closed(fid, conn)

    @handle_errors
    async def Accept(self, request: scheduler_pb2.AcceptRequest, context: Ctx) -> Any:  # noqa: N802
        fid = _fid(request.framework_id)
        tasks = []
        reserve = unreserve = None
        op_pb = scheduler_pb2.Operation
        check_count("operations", len(request.operations), MAX_TASKS_PER_ACCEPT)
        for i, op in enumerate(request.operations):
            where = f"operations[{i}]"
            if op.type == op_pb.LAUNCH:
                for j, t in enumerate(op.launch.task_infos):
                    tasks.append(c.task_from_pb(t, f"{where}.launch.task_infos[{j}]"))
            elif op.type == op_pb.RESERVE:
                res = c.resources_from_pb(op.reserve.resources, f"{where}.reserve.resources")
                reserve = res if reserve is None else reserve + res
            elif op.type == op_pb.UNRESERVE:
                res = c.resources_from_pb(op.unreserve.resources, f"{where}.unreserve.resources")
                unreserve = res if unreserve is None else unreserve + res
            else:
                raise ValidationError(f"{where}.type", f"unsupported operation {op.type}")
        offer_ids = _offer_ids(request.offer_ids)
        refuse = request.filters.refuse_seconds
        az.authorize_launch(
            self.authz, caller_of(context).principal, self.actor.state, fid, tasks
        )
        await self.actor.run(
            lambda now: self.actor.state.accept(
                fid, offer_ids, tasks, refuse, now, reserve=reserve, unreserve=unreserve
            )
        )
        return OK

    @handle_errors
    async def Decline(self, request: scheduler_pb2.DeclineRequest, context: Ctx) -> Any:  # noqa: N802
        fid = _fid(request.framework_id)
        self._own(context, fid)
        offer_ids = _offer_ids(request.offer_ids)
        refuse = request.filters.refuse_seconds if request.HasField("filters") else 5.0
        await self.actor.run(lambda now: self.actor.state.decline(fid, offer_ids, refuse, now))
        return OK

    @handle_errors
    async def Revive(self, request: scheduler_pb2.ReviveRequest, context: Ctx) -> Any:  # noqa: N802
        fid = _fid(request.framework_id)
        self._own(context, fid)
        roles = _roles(request.roles)
        await self.actor.run(lambda now: self.actor.state.revive(fid, roles))
        return OK

    @handle_errors
    async def Suppress(self, request: scheduler_pb2.SuppressRequest, context: Ctx) -> Any:  # noqa: N802
        fid = _fid(request.framework_id)
        self._own(context, fid)
        roles = _roles(request.roles)
        await self.actor.run(lambda now: self.actor.state.suppress(fid, roles))
        return OK

    @handle_errors
    async def Kill(self, request: scheduler_pb2.KillRequest, context: Ctx) -> Any:  # noqa: N802
        fid = _fid(request.framework_id)
        self._owned(context, "kill_task", fid)
        check_id("task_id", request.task_id)
        check_id("agent_id", request.agent_id, allow_empty=True)
        task_id, grace = TaskId(request.task_id), request.kill_grace_period_s
        await self.actor.run(lambda _now: self.actor.state.kill_task(fid, task_id, grace))
        return OK

    @handle_errors
    async def Acknowledge(  # noqa: N802
        self, request: scheduler_pb2.AcknowledgeRequest, context: Ctx
    ) -> Any:
        fid = _fid(request.framework_id)
        self._own(context, fid)
        check_count("acknowledgements", len(request.acknowledgements), MAX_IDS_PER_CALL)
        for i, a in enumerate(request.acknowledgements):
            check_id(f"acknowledgements[{i}].agent_id", a.agent_id)
            check_id(f"acknowledgements[{i}].task_id", a.task_id)
            check_length(f"acknowledgements[{i}].uuid", a.uuid, MAX_UUID)
        acks = [(AgentId(a.agent_id), TaskId(a.task_id), a.uuid) for a in request.acknowledgements]
        await self.actor.run(lambda now: self.actor.state.acknowledge(fid, acks))
        return OK

    @handle_errors
    async def Reconcile(self, request: scheduler_pb2.ReconcileRequest, context: Ctx) -> Any:  # noqa: N802
        fid = _fid(request.framework_id)
        self._own(context, fid)
        check_count("tasks", len(request.tasks), MAX_IDS_PER_CALL)
        for i, t in enumerate(request.tasks):
            check_id(f"tasks[{i}].task_id", t.task_id)
            check_id(f"tasks[{i}].agent_id", t.agent_id, allow_empty=True)
        tasks = [(TaskId(t.task_id), AgentId(t.agent_id)) for t in request.tasks]
        await self.actor.run(lambda now: self.actor.state.reconcile(fid, tasks, now))
        return OK

    @handle_errors
    async def Teardown(self, request: scheduler_pb2.TeardownRequest, context: Ctx) -> Any:  # noqa: N802
        fid = _fid(request.framework_id)
        self._owned(context, "teardown_framework", fid)
        await self.actor.run(lambda now: self.actor.state.teardown(fid, now))
        return OK

    @handle_errors
    async def Message(self, request: scheduler_pb2.MessageRequest, context: Ctx) -> Any:  # noqa: N802
        # Framework messages go to executors in Mesos; mesoslite tasks are plain commands.
        await context.abort(
            grpc.StatusCode.UNIMPLEMENTED,
            "framework messages need executors, which mesoslite does not have yet",
        )

    @handle_errors
    async def Request(self, request: scheduler_pb2.RequestRequest, context: Ctx) -> Any:  # noqa: N802
        fid = _fid(request.framework_id)
        self._own(context, fid)
        check_count("demands", len(request.demands), MAX_DEMANDS)
        for i, d in enumerate(request.demands):
            if d.count > MAX_DEMAND_COUNT:
                raise ValidationError(
                    f"demands[{i}].count", f"must be at most {MAX_DEMAND_COUNT}, got {d.count}"
                )
        demands = [
            Demand(c.resources_from_pb(d.resources, f"demands[{i}].resources"), d.count)
            for i, d in enumerate(request.demands)
        ]
        await self.actor.run(lambda now: self.actor.state.request(fid, demands))
        return OK
