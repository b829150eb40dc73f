"""The Agent gRPC service: each agent's one bidirectional stream, adapted to `MasterActor`."""

from __future__ import annotations

import asyncio
import itertools
import logging
from typing import Any

import grpc

from mesoslite import convert as c
from mesoslite._proto.v1 import agent_pb2, agent_pb2_grpc
from mesoslite.errors import MesosliteError, ValidationError
from mesoslite.ids import FrameworkId
from mesoslite.limits import MAX_TASKS_PER_ACCEPT, check_count, check_id
from mesoslite.master.actor import CLOSE, Connection, MasterActor
from mesoslite.master.convert import agent_message_to_pb
from mesoslite.master.events import Effect
from mesoslite.model import MasterInfo, TaskState, TaskStatus
from mesoslite.rpc import status_code
from mesoslite.security.authz import Authorizer
from mesoslite.security.identity import caller_of

logger = logging.getLogger(__name__)
_READER_ENDED = object()  # queued when the agent's side of the stream ends
Ctx = grpc.aio.ServicerContext[Any, Any]


class AgentServicer(agent_pb2_grpc.AgentServicer):
    def __init__(
        self, actor: MasterActor, master_info: MasterInfo, authz: Authorizer | None = None
    ) -> None:
        self.actor = actor
        self.master_info = master_info
        self.authz = authz or Authorizer()

    async def Connect(self, request_iterator: Any, context: Ctx) -> None:  # noqa: N802
        first = await context.read()
        if first is grpc.aio.EOF:
            return
        conn = Connection()
        try:
            if first.WhichOneof("kind") != "register":
                raise ValidationError(
                    "register", "the first message on the stream must be register"
                )
            info = c.agent_from_pb(first.register.agent_info)
            # Authorization (#14): before the agent is admitted or told anything.
            self.authz.check(caller_of(context).principal, "register_agent", info.hostname)
            reported = []
            check_count("register.tasks", len(first.register.tasks), MAX_TASKS_PER_ACCEPT)
            for i, t in enumerate(first.register.tasks):
                check_id(f"register.tasks[{i}].framework_id", t.framework_id)
                spec = c.task_from_pb(t.task_info, f"register.tasks[{i}]")
                reported.append((FrameworkId(t.framework_id), spec, TaskState(t.state)))
            agent_id = await self.actor.register_agent(info, reported, conn)
        except MesosliteError as e:
            await context.abort(status_code(e), e.message)
            return
        except ValueError as e:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"register: {e}")
            return
        # From here on the stream must be closed in the actor whatever happens: a registered
        # reply that cannot be written (the agent went away) would otherwise leave the agent
        # "active" on a dead connection until it registers again.
        reader: asyncio.Task[None] | None = None
        try:
            await context.write(
                agent_pb2.MasterMessage(
                    registered=agent_pb2.MasterMessage.Registered(
                        agent_id=agent_id,
                        master_info=c.master_info_to_pb(self.master_info),
                        ping_interval_s=self.actor.agent_ping_interval_s,
                    )
                )
            )
            reader = asyncio.create_task(self._read(agent_id, context))
            # The reader's end wakes the writer through the queue: one plain `get` per
            # message, not a task and a wait on two of them (a launch, an ack batch, a ping).
            reader.add_done_callback(lambda _: conn.queue.put_nowait(_READER_ENDED))
            pings = itertools.count(1)  # this connection's ping sequence
            while True:
                item = await conn.queue.get()
                if item is CLOSE or reader.done():
                    return
                await context.write(agent_message_to_pb(item, pings))
        finally:
            if reader is not None:
                reader.cancel()
                # Collect its outcome, so that a failed read is not reported as "never retrieved".
                await asyncio.gather(reader, return_exceptions=True)
            self.actor.agent_stream_closed(agent_id, conn)
            self.actor.follows.connection_closed(conn)

    async def _read(self, agent_id: Any, context: Ctx) -> None:
        actor = self.actor
        while True:
            msg = await context.read()
            if msg is grpc.aio.EOF:
                return
            kind = msg.WhichOneof("kind")
            if kind == "pong":
                actor.agent_message(agent_id, msg.pong.pending_updates)
                continue
            actor.agent_message(agent_id)
            if kind == "status_updates":
                try:
                    statuses = [c.status_from_pb(s) for s in msg.status_updates.statuses]
                except MesosliteError as e:
                    logger.warning("bad status update from agent_id=%s: %s", agent_id, e)
                    continue

                # The default binds this iteration's statuses, not the loop variable.
                def apply(now: float, st: list[TaskStatus] = statuses) -> list[Effect]:
                    return actor.state.status_updates(agent_id, st, now)

                await actor.run(apply)
                actor.follows.tasks_updated(agent_id)
            elif kind == "file_data":
                fd = msg.file_data
                actor.follows.file_data(fd.follow_id, fd.offset, fd.data, fd.eof)
            elif kind == "file_chunk":
                ch = msg.file_chunk
                actor.file_chunk(ch.request_id, ch.data, ch.size, ch.error)
            else:
                logger.warning("unexpected message kind=%s from agent_id=%s", kind, agent_id)
