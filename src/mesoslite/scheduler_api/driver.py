"""`SchedulerDriver`: subscribes a framework to the master and carries its calls.

Design:
- One subscription task reads the master's event stream and calls the `Scheduler`'s
  callbacks one at a time, in order. If the stream breaks (the master restarted, the network
  dropped, heartbeats stopped), the driver calls `on_disconnected` and re-subscribes with its
  framework id, with capped, jittered exponential backoff, until `stop()`. A refusal (bad
  framework info, an unknown framework id, an ERROR event) is final: `on_error` is called
  and `join()` raises.
- Calls (`accept`, `decline`, ...) are unary RPCs awaited by the caller; a refusal raises the
  matching `mesoslite.errors` class, with the master's message.
- The master is found by `LeaderFollower` (`mesoslite.leader`): one address, a list, or
  `zk://` (the leader in ZooKeeper, watched, so that a backoff ends when a new leader is
  elected). Each subscription attempt asks it again, and a standby's "not leading;
  leader is X" sends the next attempt to X at once.
- Acknowledgements are batched: with implicit acknowledgements (the default), every update of
  one UPDATE event is acknowledged in one call after its `on_update` callbacks return.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
import time
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

import grpc

from mesoslite import convert as c
from mesoslite._proto.v1 import scheduler_pb2, scheduler_pb2_grpc
from mesoslite.errors import (
    ConflictError,
    MesosliteError,
    NotLeaderError,
    UnavailableError,
)
from mesoslite.ids import AgentId, FrameworkId, OfferId, TaskId
from mesoslite.leader import LeaderFollower
from mesoslite.model import FrameworkInfo, MasterInfo, TaskSpec, TaskStatus
from mesoslite.resources import Resources
from mesoslite.rpc import CHANNEL_OPTIONS, error_from_rpc
from mesoslite.scheduler_api import calls
from mesoslite.scheduler_api.dispatch import plain_callback
from mesoslite.scheduler_api.events import Scheduler
from mesoslite.scheduler_api.heartbeats import HeartbeatWatch
from mesoslite.scheduler_api.types import Demand

logger = logging.getLogger(__name__)

Ev = scheduler_pb2.Event
DEFAULT_MASTER = "127.0.0.1:5050"
# Codes after which re-subscribing may succeed; anything else is the master's final answer.
_TRANSIENT = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.CANCELLED,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
}


class SchedulerDriver:
    """Connects a `Scheduler` to the master.

    Use it as `async with SchedulerDriver(...) as driver: await driver.join()`, or call the
    blocking `run()` from a plain script.

    Args:
        scheduler: the object whose callbacks receive events (see `Scheduler`).
        framework: who the framework is; set `framework.id` to re-subscribe as an existing
            framework (after a restart within its `failover_timeout_s`).
        master: `HOST:PORT` of the master, `HOST:PORT,HOST:PORT,...` (any of them; a
            standby redirects to the leader), or `zk://HOST:PORT[,...]/PATH` (the leader
            registered in ZooKeeper).
        implicit_acknowledgements: acknowledge each update after `on_update` returns. When
            False, call `acknowledge()` yourself, or the agent resends the update.
        connect_timeout_s: give up (and make `join()` raise `UnavailableError`) if the first
            subscription does not succeed in this time; None retries forever.
        call_timeout_s: the deadline of each call to the master.
        reconnect_backoff_max_s: the longest wait between re-subscription attempts (each
            wait is drawn at random below a ceiling that doubles up to this).
        rng: the source of the backoff's jitter (tests pass a seeded `random.Random`).
    """

    def __init__(
        self,
        scheduler: Scheduler | Any,
        framework: FrameworkInfo,
        *,
        master: str = DEFAULT_MASTER,
        implicit_acknowledgements: bool = True,
        connect_timeout_s: float | None = None,
        call_timeout_s: float = 10.0,
        reconnect_backoff_max_s: float = 2.0,
        rng: random.Random | None = None,
    ) -> None:
        self.scheduler = scheduler
        self.leader = LeaderFollower(
            master, backoff_max_s=reconnect_backoff_max_s, backoff_min_s=0.05, rng=rng
        )
        # The address in use (the first of a list until the first attempt).
        self.master = self.leader.address or self.leader.describe()
        self.implicit_acknowledgements = implicit_acknowledgements
        self.connect_timeout_s = connect_timeout_s
        self.call_timeout_s = call_timeout_s
        self.reconnect_backoff_max_s = reconnect_backoff_max_s
        self._info = framework
        self._master_info: MasterInfo | None = None
        self._channel: grpc.aio.Channel | None = None
        self._channel_address = ""
        self._stub: scheduler_pb2_grpc.SchedulerStub | None = None
        self._task: asyncio.Task[None] | None = None
        self._call: Any = None
        self._connected = False
        self._stopping = False
        self._stopped = asyncio.Event()
        self._error: MesosliteError | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._heartbeats = HeartbeatWatch()
        # The updates of the UPDATE event being dispatched, until implicitly acknowledged.
        self._unacknowledged: list[TaskStatus] = []

    # ------------------------------------------------------------------ state

    @property
    def framework_id(self) -> FrameworkId:
        """The id the master gave (empty before the first subscription)."""
        return self._info.id

    @property
    def framework(self) -> FrameworkInfo:
        return self._info

    @property
    def master_info(self) -> MasterInfo | None:
        return self._master_info

    @property
    def connected(self) -> bool:
        return self._connected

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Open the channel and start subscribing; returns at once."""
        if self._task is not None:
            raise ConflictError("the driver is already started")
        if self.leader.static:
            await self._use_master(self.master)
        self._task = asyncio.create_task(self._subscription_loop(), name="mesoslite-subscription")

    async def join(self) -> None:
        """Wait until the driver stops. Raises the error that stopped it, if any."""
        await self._stopped.wait()
        if self._error is not None:
            raise self._error

    async def stop(self, *, failover: bool = False) -> None:
        """Stop the driver.

        Args:
            failover: keep the framework registered, with its tasks, for its
                `failover_timeout_s` so that a new driver can take over with its id. When
                False, the framework is torn down and its tasks are killed.
        """
        if self._stopping:
            await self._stopped.wait()
            return
        self._stopping = True
        try:
            if self.implicit_acknowledgements and self._unacknowledged:
                statuses, self._unacknowledged = self._unacknowledged, []
                await self._acknowledge_quietly(statuses)
            if self._background:
                await asyncio.wait(set(self._background), timeout=self.call_timeout_s)
            if not failover and self._info.id and self._stub is not None and self._error is None:
                try:
                    await self._unary(
                        "Teardown", scheduler_pb2.TeardownRequest(framework_id=self._info.id)
                    )
                except MesosliteError as e:
                    logger.warning("teardown failed framework_id=%s: %s", self._info.id, e)
            if self._call is not None:
                self._call.cancel()
            task = self._task
            if task is not None and task is not asyncio.current_task():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            if self._channel is not None:
                await self._channel.close()
            await self.leader.close()
        finally:
            self._connected = False
            self._stopped.set()

    async def serve(self) -> None:
        """Start, run until stopped, and stop; tears the framework down on the way out."""
        await self.start()
        try:
            await self.join()
        finally:
            await self.stop()

    def run(self) -> None:
        """Blocking `serve()`, for simple scripts."""
        asyncio.run(self.serve())

    async def __aenter__(self) -> SchedulerDriver:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def wait_subscribed(self, timeout_s: float | None = None) -> FrameworkId:
        """Wait for the first subscription; raises if the driver stops first."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while not self._connected:
            if self._stopped.is_set():
                await self.join()
                raise UnavailableError("the driver stopped before subscribing")
            if deadline is not None and time.monotonic() >= deadline:
                raise UnavailableError(f"not subscribed to {self.master} after {timeout_s:g}s")
            await asyncio.sleep(0.005)
        return self._info.id

    # ------------------------------------------------------------------ calls

    async def accept(
        self,
        offer_ids: Sequence[OfferId],
        tasks: Sequence[TaskSpec],
        *,
        refuse_seconds: float = 5.0,
        reserve: Resources | None = None,
        unreserve: Resources | None = None,
    ) -> None:
        """Launch `tasks` on offers of one agent; what the tasks leave unused is declined.

        Args:
            reserve: part of the offers to reserve for their allocation role on their agent
                from now on (RESERVE, kept by the master); only that role is offered it.
            unreserve: part of the role's dynamic reservation there to give back.

        Raises:
            NotFoundError: an offer was rescinded, used already or never made.
            ConflictError: an offer is not this framework's.
            ValidationError: the tasks are malformed or need more than the offers hold.
        """
        request = calls.accept_request(
            self._require_id(),
            offer_ids,
            tasks,
            refuse_seconds=refuse_seconds,
            reserve=reserve,
            unreserve=unreserve,
        )
        await self._unary("Accept", request)

    async def decline(self, offer_ids: Sequence[OfferId], *, refuse_seconds: float = 5.0) -> None:
        """Give offers back; their agents are not offered again for `refuse_seconds`."""
        request = calls.decline_request(
            self._require_id(), offer_ids, refuse_seconds=refuse_seconds
        )
        await self._unary("Decline", request)

    async def revive(self, *, roles: Sequence[str] | None = None) -> None:
        """Clear filters and ask for offers again (undoes `suppress`).

        Args:
            roles: the roles to revive, each one of the framework's; None or empty: all.
        """
        request = scheduler_pb2.ReviveRequest(
            framework_id=self._require_id(), roles=list(roles or ())
        )
        await self._unary("Revive", request)

    async def suppress(self, *, roles: Sequence[str] | None = None) -> None:
        """Stop receiving offers (in `roles`) until `revive`.

        Args:
            roles: the roles to suppress, each one of the framework's; None or empty: all.
                Offers in its other roles keep coming.
        """
        await self._unary(
            "Suppress",
            scheduler_pb2.SuppressRequest(framework_id=self._require_id(), roles=list(roles or ())),
        )

    async def kill(
        self, task_id: TaskId | str, *, agent_id: AgentId | str = "", grace_period_s: float = 0.0
    ) -> None:
        """Kill a task: SIGTERM, then SIGKILL after the grace period (the task's if 0)."""
        request = calls.kill_request(self._require_id(), task_id, agent_id, grace_period_s)
        await self._unary("Kill", request)

    async def acknowledge(self, *statuses: TaskStatus) -> None:
        """Acknowledge updates (those without a uuid need none and are skipped), in one call."""
        if not any(s.uuid for s in statuses):
            return
        request = calls.acknowledge_request(self._require_id(), statuses)
        await self._unary("Acknowledge", request)

    async def reconcile(self, tasks: Iterable[tuple[TaskId | str, AgentId | str]] = ()) -> None:
        """Ask for the latest state of `(task_id, agent_id)` pairs, or of every task if empty.

        The answers arrive as `on_update` calls with reason `RECONCILIATION`.
        """
        await self._unary("Reconcile", calls.reconcile_request(self._require_id(), tasks))

    async def request(self, demands: Sequence[Demand]) -> None:
        """Tell the master what the framework still needs (task shapes and counts)."""
        await self._unary("Request", calls.demand_request(self._require_id(), demands))

    async def teardown(self) -> None:
        """Remove the framework and kill all its tasks, then stop the driver."""
        await self._unary(
            "Teardown", scheduler_pb2.TeardownRequest(framework_id=self._require_id())
        )
        self._info = replace(self._info, id=FrameworkId(""))
        await self.stop(failover=True)

    # ------------------------------------------------------------------ internals

    def _require_id(self) -> FrameworkId:
        if not self._info.id:
            raise ConflictError("the framework is not subscribed yet: wait for on_subscribed")
        return self._info.id

    async def _use_master(self, address: str) -> None:
        """Point the channel (and so every call) at `address`."""
        if self._channel is not None and address == self._channel_address:
            return
        old = self._channel
        self.master = self._channel_address = address
        self._channel = grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS)
        self._stub = scheduler_pb2_grpc.SchedulerStub(self._channel)
        if old is not None:
            await old.close(grace=1.0)

    async def _unary(self, method: str, request: Any) -> Any:
        if self._stub is None:
            raise ConflictError("the driver is not started")
        try:
            return await getattr(self._stub, method)(request, timeout=self.call_timeout_s)
        except grpc.aio.AioRpcError as e:
            raise error_from_rpc(e) from None
        except grpc.aio.UsageError:
            raise ConflictError(f"the driver is stopped: cannot {method.lower()}") from None

    async def _callback(self, name: str, *args: Any) -> None:
        fn = getattr(self.scheduler, name, None)
        if fn is None:
            return
        try:
            result = fn(self, *args)
            if inspect.isawaitable(result):
                await result
        except MesosliteError as e:
            logger.warning("%s raised: %s", name, e)
        except Exception:
            logger.exception("scheduler callback %s failed", name)

    async def _subscription_loop(self) -> None:
        started = time.monotonic()
        warned = False
        try:
            while not self._stopping:
                try:
                    await self._use_master(await self.leader.current())
                    await self._subscribe_once()
                except UnavailableError as e:
                    # ZooKeeper cannot be reached or names no leader yet: try again.
                    if not warned or self._connected:
                        logger.warning("cannot find the master: %s", e.message)
                        warned = True
                except grpc.aio.AioRpcError as e:
                    if self._stopping:
                        return
                    if e.code() not in _TRANSIENT:
                        await self._fail(error_from_rpc(e))
                        return
                    err = error_from_rpc(e)
                    if isinstance(err, NotLeaderError) and err.leader_address:
                        self.leader.redirect(err.leader_address)
                        self.leader.connected()  # go to the leader it names at once
                    elif not self._connected:
                        self.leader.failed(self.master)
                    if not warned or self._connected:
                        logger.warning("subscription to %s broke: %s", self.master, e.details())
                        warned = True
                if self._stopping or self._error is not None:
                    return
                if self._connected:
                    self._connected = False
                    self.leader.connected()  # it was subscribed: start the backoff over
                    await self._callback("on_disconnected")
                if (
                    not self._info.id
                    and self.connect_timeout_s is not None
                    and time.monotonic() - started > self.connect_timeout_s
                ):
                    await self._fail(
                        UnavailableError(
                            f"cannot reach the master at {self.master} "
                            f"(tried for {self.connect_timeout_s:g}s)"
                        )
                    )
                    return
                await self.leader.pause()
        finally:
            if not self._stopping:
                self._stopped.set()

    async def _subscribe_once(self) -> None:
        assert self._stub is not None
        request = scheduler_pb2.SubscribeRequest(framework_info=c.framework_to_pb(self._info))
        call = self._stub.Subscribe(request)
        self._call = call
        self._heartbeats.heard()
        watchdog = asyncio.create_task(self._heartbeats.watch(call, self.master))
        try:
            async for event in call:
                self._heartbeats.dispatching = True
                try:
                    await self._dispatch(event)
                finally:
                    self._heartbeats.dispatching = False
                    # Time spent in callbacks is not the master's silence.
                    self._heartbeats.heard()
                if self._stopping or self._error is not None:
                    call.cancel()
                    return
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # the driver itself is being cancelled
            # Only the call was cancelled (by the heartbeat watchdog): the stream broke, and
            # the loop re-subscribes.
        finally:
            watchdog.cancel()
            self._call = None

    async def _dispatch(self, event: scheduler_pb2.Event) -> None:
        kind = event.type
        if kind == Ev.HEARTBEAT:
            return
        if kind == Ev.SUBSCRIBED:
            sub = event.subscribed
            self._info = replace(self._info, id=FrameworkId(sub.framework_id))
            self._master_info = c.master_info_from_pb(sub.master_info)
            self._heartbeats.interval_s = sub.heartbeat_interval_s
            self._connected = True
            logger.info("subscribed framework_id=%s master=%s", sub.framework_id, self.master)
            await self._callback("on_subscribed", self._info.id, self._master_info)
        elif kind == Ev.UPDATE:
            statuses = [c.status_from_pb(s) for s in event.update.statuses]
            self._unacknowledged = statuses
            for status in statuses:
                await self._callback("on_update", status)
            if self.implicit_acknowledgements and self._unacknowledged:
                # (`stop()` from a callback acknowledges them itself, before it closes.)
                self._unacknowledged = []
                self._spawn(self._acknowledge_quietly(statuses))
        elif kind == Ev.ERROR:
            if self._stopping:
                return  # the answer to our own teardown, not a failure
            await self._fail(ConflictError(event.error.message))
        else:
            call = plain_callback(event)
            if call is not None:
                await self._callback(call.name, *call.args)

    async def _acknowledge_quietly(self, statuses: list[TaskStatus]) -> None:
        try:
            await self.acknowledge(*statuses)
        except MesosliteError as e:
            # The agent resends unacknowledged updates, so a lost ack costs only a repeat.
            logger.warning("acknowledgement failed (the agent will resend): %s", e)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _fail(self, error: MesosliteError) -> None:
        self._error = error
        self._connected = False
        logger.error("framework stopped by the master: %s", error.message)
        await self._callback("on_error", error.message)
        self._stopped.set()
