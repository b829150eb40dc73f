"""`MasterLink`: the agent's one stream to the master (`Agent.Connect`), kept open forever.

Design:
- One session = one channel and one `Connect` call: send `register` (with the agent id once
  the master gave one, and every task the agent holds), wait for `registered`, then run a
  reader (master messages become calls on `AgentActor`), a writer (drains what the actor
  sends, merging queued status updates into one message) and a watchdog (no ping for
  `MISSED_PINGS` ping intervals means the master is gone even if TCP does not say so).
- A session ends on any error, EOF or missed pings. The link then reconnects with capped,
  fully jittered exponential backoff (`leader.Backoff`: up to 0.1 s doubling, never over
  `backoff_max_s`), forever, cut short when ZooKeeper reports a new leader; tasks keep running
  meanwhile and their updates wait in the actor. The first failure of each kind is logged
  at WARNING, repeats of the same failure at DEBUG, so a long outage does not flood the log.
- Which master: `LeaderFollower` (`leader.py`) answers the address for each session, from
  one address, a list (tried in turn) or `zk://` (the leader in ZooKeeper). A standby's
  UNAVAILABLE "not leading; leader is X" sends the next attempt straight to X.
- Protobuf stops here: the actor sees only value types from `model.py`.
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any

import grpc

from mesoslite import convert as c
from mesoslite._proto.v1 import agent_pb2, agent_pb2_grpc
from mesoslite.agent import constants as k
from mesoslite.agent.actor import AgentActor
from mesoslite.agent.follow import FileFollows
from mesoslite.agent.messages import FileDataOut, Outgoing, PongOut, StatusUpdatesOut
from mesoslite.clock import clock_sleep
from mesoslite.errors import MesosliteError, NotLeaderError
from mesoslite.ids import AgentId, FrameworkId, TaskId
from mesoslite.leader import LeaderFollower
from mesoslite.rpc import error_from_rpc
from mesoslite.transport import PLAIN, Security, open_channel

logger = logging.getLogger(__name__)

AM = agent_pb2.AgentMessage
MM = agent_pb2.MasterMessage


class SessionEnded(Exception):
    """Raised inside a session when the stream to the master is over; the text says why."""


def outgoing_to_pb(item: Outgoing) -> agent_pb2.AgentMessage:
    if isinstance(item, StatusUpdatesOut):
        return AM(
            status_updates=AM.StatusUpdates(statuses=[c.status_to_pb(s) for s in item.statuses])
        )
    if isinstance(item, PongOut):
        return AM(pong=AM.Pong(seq=item.seq, pending_updates=item.pending_updates))
    if isinstance(item, FileDataOut):
        return AM(
            file_data=AM.FileData(
                follow_id=item.follow_id, offset=item.offset, data=item.data, eof=item.eof
            )
        )
    return AM(
        file_chunk=AM.FileChunk(
            request_id=item.request_id, data=item.data, size=item.size, error=item.error
        )
    )


def register_to_pb(actor: AgentActor) -> agent_pb2.AgentMessage:
    info, tasks = actor.registration()
    return AM(
        register=AM.Register(
            agent_info=c.agent_to_pb(info),
            tasks=[
                agent_pb2.RunningTask(
                    framework_id=fid,
                    task_info=c.task_to_pb(spec),
                    state=int(state),  # type: ignore[arg-type]
                )
                for fid, spec, state in tasks
            ],
        )
    )


class MasterLink:
    """Keeps the agent registered with the leading master. See the module docstring.

    Args:
        master: `HOST:PORT`, `HOST:PORT,HOST:PORT,...` or `zk://HOST:PORT[,...]/PATH`.
    """

    def __init__(
        self, master: str, actor: AgentActor, *, backoff_max_s: float,
        rng: random.Random | None = None, security: Security = PLAIN,
    ) -> None:
        self.security = security  # TLS files (`--tls-*`) and credentials (#14)
        self.leader = LeaderFollower(
            master, backoff_max_s=backoff_max_s, backoff_min_s=k.RECONNECT_BACKOFF_MIN_S, rng=rng
        )
        self.address = self.leader.address
        self.actor = actor
        self.backoff_max_s = backoff_max_s
        self.sessions = 0  # registered sessions so far (tests and logs)
        self._queue: asyncio.Queue[Outgoing] | None = None
        self._call: Any = None
        self._last_ping = 0.0
        self._last_failure = ""
        self.follows = FileFollows(actor.work_dir, self._task_live, self.send, actor.clock)

    def _task_live(self, framework_id: str, task_id: str) -> bool:
        task = self.actor.tasks.get((FrameworkId(framework_id), TaskId(task_id)))
        return task is not None and not task.state.terminal

    # ------------------------------------------------------------------ sending

    def send(self, item: Outgoing) -> bool:
        """Queue `item` for the master; False (dropped) while not registered."""
        if self._queue is None:
            return False
        if isinstance(item, StatusUpdatesOut):  # their follows' eof first (agent/follow.py)
            self.follows.tasks_ended(
                {(s.framework_id, s.task_id) for s in item.statuses if s.state.terminal}
            )
        self._queue.put_nowait(item)
        return True

    async def close(self) -> None:
        """End the stream politely (the master sees EOF, not an error)."""
        call, self._call = self._call, None
        if call is not None:
            try:
                await asyncio.wait_for(call.done_writing(), 0.5)
            except (TimeoutError, grpc.aio.AioRpcError, grpc.aio.UsageError):
                pass
            call.cancel()
        await self.leader.close()

    # ------------------------------------------------------------------ sessions

    async def run(self) -> None:
        """Connect, register and serve the stream; reconnect forever when it breaks."""
        loop = asyncio.get_running_loop()
        while True:
            before = self.sessions
            started = loop.time()
            try:
                await self._session()
                reason = "the master ended the stream"
            except SessionEnded as e:
                reason = str(e)
            except grpc.aio.AioRpcError as e:
                reason = f"{e.code().name}: {e.details()}"
                err = error_from_rpc(e)
                if isinstance(err, NotLeaderError) and err.leader_address:
                    # A standby named the leader: go there now, not after a backoff.
                    self.leader.redirect(err.leader_address)
                    logger.info("redirected from %s to the leader %s", self.address,
                                err.leader_address)
                    await asyncio.sleep(k.RECONNECT_BACKOFF_MIN_S)
                    continue
                if self.sessions == before:
                    self.leader.failed(self.address)
            except TimeoutError:
                reason = f"no answer to register within {k.REGISTER_TIMEOUT_S:g}s"
            except MesosliteError as e:
                reason = e.message
            except Exception as e:
                # Whatever broke this session, the link must live on: tasks depend on it.
                logger.debug("session failed", exc_info=True)
                reason = f"{type(e).__name__}: {e}"
            if self.sessions > before:
                logger.warning(
                    "lost the master address=%s after %.1fs: %s; reconnecting",
                    self.address,
                    loop.time() - started,
                    reason,
                )
                self.leader.connected()
                self._last_failure = ""
            elif reason != self._last_failure:
                logger.warning(
                    "cannot register with the master address=%s: %s; retrying, backoff up to %gs",
                    self.address,
                    reason,
                    self.backoff_max_s,
                )
                self._last_failure = reason
            else:
                logger.debug("still cannot register address=%s: %s", self.address, reason)
            await self.leader.pause()

    async def _session(self) -> None:
        self.address = await self.leader.current()
        channel = open_channel(self.address, self.security)
        tasks: list[asyncio.Task[None]] = []
        try:
            stub = agent_pb2_grpc.AgentStub(channel)
            call = stub.Connect()
            self._call = call
            await call.write(register_to_pb(self.actor))
            reply = await asyncio.wait_for(call.read(), k.REGISTER_TIMEOUT_S)
            if reply is grpc.aio.EOF:
                raise SessionEnded("the master closed the stream without registering the agent")
            if reply.WhichOneof("kind") != "registered":
                raise SessionEnded(f"the master answered register with {reply.WhichOneof('kind')}")
            reg = reply.registered
            ping_interval_s = reg.ping_interval_s or 5.0
            queue: asyncio.Queue[Outgoing] = asyncio.Queue()
            self._queue = queue
            self._last_ping = self.actor.clock.now()
            self.sessions += 1
            logger.info(
                "registered with the master agent_id=%s master=%s tasks=%d pending_updates=%d",
                reg.agent_id,
                reg.master_info.address or self.address,
                len(self.actor.tasks),
                self.actor.updates.pending_count,
            )
            self.actor.registered(AgentId(reg.agent_id))
            tasks = [
                asyncio.create_task(self._read(call), name="master-read"),
                asyncio.create_task(self._write(call, queue), name="master-write"),
                asyncio.create_task(self._watch(ping_interval_s), name="master-watch"),
            ]
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # raises what ended the session
        finally:
            self._queue = None
            self._call = None
            self.follows.stop_all()  # their readers' streams ended with this one
            self.actor.disconnected()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await channel.close(grace=None)

    async def _read(self, call: Any) -> None:
        while True:
            msg = await call.read()
            if msg is grpc.aio.EOF:
                raise SessionEnded("the master ended the stream")
            try:
                self._dispatch(msg)
            except Exception:
                # A bug in handling one message must not cost the stream.
                logger.exception("failed to handle a message kind=%s", msg.WhichOneof("kind"))

    async def _write(self, call: Any, queue: asyncio.Queue[Outgoing]) -> None:
        while True:
            item = await queue.get()
            # Merge status updates that queued up while the previous write was in flight.
            while isinstance(item, StatusUpdatesOut) and not queue.empty():
                nxt = queue.get_nowait()
                if not isinstance(nxt, StatusUpdatesOut):
                    await call.write(outgoing_to_pb(item))
                    item = nxt
                    break
                item = StatusUpdatesOut(item.statuses + nxt.statuses)
            await call.write(outgoing_to_pb(item))

    async def _watch(self, ping_interval_s: float) -> None:
        clock = self.actor.clock  # virtual in tests
        limit = k.MISSED_PINGS * ping_interval_s
        while True:
            await clock_sleep(clock, ping_interval_s)
            if clock.now() - self._last_ping > limit:
                raise SessionEnded(f"no ping from the master in {limit:g}s")

    # ------------------------------------------------------------------ receiving

    def _dispatch(self, msg: agent_pb2.MasterMessage) -> None:
        kind = msg.WhichOneof("kind")
        actor = self.actor
        if kind == "launch_tasks":
            lt = msg.launch_tasks
            fid = FrameworkId(lt.framework_id)
            specs = []
            for i, info in enumerate(lt.task_infos):
                try:
                    specs.append(c.task_from_pb(info, f"launch_tasks.task_infos[{i}]"))
                except MesosliteError as e:
                    actor.reject_task(fid, TaskId(info.task_id), e.message)
            actor.launch_tasks(fid, specs)
        elif kind == "acknowledge":
            actor.acknowledge(
                [
                    (FrameworkId(a.framework_id), TaskId(a.task_id), a.uuid)
                    for a in msg.acknowledge.acknowledgements
                ]
            )
        elif kind == "ping":
            self._last_ping = self.actor.clock.now()
            self.send(PongOut(msg.ping.seq, actor.updates.pending_count))
        elif kind == "kill_task":
            kt = msg.kill_task
            actor.kill_task(
                FrameworkId(kt.framework_id), TaskId(kt.task_id), kt.kill_grace_period_s
            )
        elif kind == "shutdown_framework":
            actor.shutdown_framework(FrameworkId(msg.shutdown_framework.framework_id))
        elif kind == "read_file":
            rf = msg.read_file
            actor.read_file(
                rf.request_id, rf.framework_id, rf.task_id, rf.name, rf.offset, rf.length
            )
        elif kind == "follow_file":
            ff = msg.follow_file
            self.follows.start(ff.follow_id, ff.framework_id, ff.task_id, ff.name, ff.offset)
        elif kind == "follow_credit":
            self.follows.credit(msg.follow_credit.follow_id, msg.follow_credit.offset)
        elif kind == "stop_follow":
            self.follows.stop(msg.stop_follow.follow_id)
        elif kind == "reconcile":
            actor.reconcile([FrameworkId(f) for f in msg.reconcile.framework_ids])
        elif kind == "registered":
            logger.warning(
                "ignored a second registered message agent_id=%s", msg.registered.agent_id
            )
        else:
            logger.warning("ignored an unknown message from the master kind=%s", kind)
