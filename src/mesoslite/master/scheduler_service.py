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
from mesoslite.master.actor import CLOSE, HEARTBEAT, Connection, MasterActor
from mesoslite.master.convert import HEARTBEAT_EVENT, event_to_pb
from mesoslite.model import MasterInfo
from mesoslite.rpc import handle_errors, status_code

logger = logging.getLogger(__name__)
OK = scheduler_pb2.CallResponse()
Ctx = grpc.aio.ServicerContext[Any, Any]


def _fid(value: str) -> FrameworkId:
    if not value:
        raise ValidationError("framework_id", "must not be empty")
    return FrameworkId(value)


class SchedulerServicer(scheduler_pb2_grpc.SchedulerServicer):
    def __init__(self, actor: MasterActor, master_info: MasterInfo) -> None:
        self.actor = actor
        self.master_info = master_info

    async def Subscribe(  # noqa: N802
        self, request: scheduler_pb2.SubscribeRequest, context: Ctx
    ) -> AsyncIterator[scheduler_pb2.Event]:
        conn = Connection()
        try:
            info = c.framework_from_pb(request.framework_info)
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
            while True:
                item = await conn.queue.get()
                if item is CLOSE:
                    return
                yield HEARTBEAT_EVENT if item is HEARTBEAT else event_to_pb(item)
        finally:
            self.actor.framework_stream_closed(fid, conn)

    @handle_errors
    async def Accept(self, request: scheduler_pb2.AcceptRequest, context: Ctx) -> Any:  # noqa: N802
        fid = _fid(request.framework_id)
        tasks = []
        reserve = unreserve = None
        op_pb = scheduler_pb2.Operation
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
        offer_ids = [OfferId(o) for o in request.offer_ids]
        refuse = request.filters.refuse_seconds
        await self.actor.run(
            lambda now: self.actor.state.accept(
                fid, offer_ids, tasks, refuse, now, reserve=reserve, unreserve=unreserve
            )
        )
        return OK

    @handle_errors
    async def Decline(self, request: scheduler_pb2.DeclineRequest, context: Ctx) -> Any:  # noqa: N802
        fid = _fid(request.framework_id)
        offer_ids = [OfferId(o) for o in request.offer_ids]
        refuse = request.filters.refuse_seconds if request.HasField("filters") else 5.0
        await self.actor.run(lambda now: self.actor.state.decline(fid, offer_ids, refuse, now))
        return OK

    @handle_errors
    async def Revive(self, request: scheduler_pb2.ReviveRequest, context: Ctx) -> Any:  # noqa: N802
        fid = _fid(request.framework_id)
        roles = tuple(request.roles)
        await self.actor.run(lambda now: self.actor.state.revive(fid, roles))
        return OK

    @handle_errors
    async def Suppress(self, request: scheduler_pb2.SuppressRequest, context: Ctx) -> Any:  # noqa: N802
        fid = _fid(request.framework_id)
        roles = tuple(request.roles)
        await self.actor.run(lambda now: self.actor.state.suppress(fid, roles))
        return OK

    @handle_errors
    async def Kill(self, request: scheduler_pb2.KillRequest, context: Ctx) -> Any:  # noqa: N802
        fid = _fid(request.framework_id)
        task_id, grace = TaskId(request.task_id), request.kill_grace_period_s
        await self.actor.run(lambda now: self.actor.state.kill_task(fid, task_id, grace, now))
        return OK

    @handle_errors
    async def Acknowledge(  # noqa: N802
        self, request: scheduler_pb2.AcknowledgeRequest, context: Ctx
    ) -> Any:
        fid = _fid(request.framework_id)
        acks = [(AgentId(a.agent_id), TaskId(a.task_id), a.uuid) for a in request.acknowledgements]
        await self.actor.run(lambda now: self.actor.state.acknowledge(fid, acks))
        return OK

    @handle_errors
    async def Reconcile(self, request: scheduler_pb2.ReconcileRequest, context: Ctx) -> Any:  # noqa: N802
        fid = _fid(request.framework_id)
        tasks = [(TaskId(t.task_id), AgentId(t.agent_id)) for t in request.tasks]
        await self.actor.run(lambda now: self.actor.state.reconcile(fid, tasks, now))
        return OK

    @handle_errors
    async def Teardown(self, request: scheduler_pb2.TeardownRequest, context: Ctx) -> Any:  # noqa: N802
        fid = _fid(request.framework_id)
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
        demands = [
            Demand(c.resources_from_pb(d.resources, f"demands[{i}].resources"), d.count)
            for i, d in enumerate(request.demands)
        ]
        await self.actor.run(lambda now: self.actor.state.request(fid, demands))
        return OK
