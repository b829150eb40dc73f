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
  one UPDATE event is acknowledged after its `on_update` callbacks return, in one call; the
  updates handled while that call is in flight go together in the next one.
- Failing loudly (#17): the first subscription has a deadline (`connect_timeout_s`, 30 s by
  default); a callback that raises stops the driver and `join()` raises it (its updates are
  not acknowledged, so they come again); `on_…` methods the driver does not know are warned
  about. `callbacks.py` holds these rules.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
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
from mesoslite.ids import FrameworkId
from mesoslite.leader import LeaderFollower
from mesoslite.model import FrameworkInfo, MasterInfo, TaskStatus
from mesoslite.rpc import error_from_rpc
from mesoslite.scheduler_api import callbacks as cb
from mesoslite.scheduler_api.dispatch import plain_callback
from mesoslite.scheduler_api.driver_calls import DriverCalls
from mesoslite.scheduler_api.events import Scheduler
from mesoslite.scheduler_api.heartbeats import HeartbeatWatch
from mesoslite.tls_settings import client_security
from mesoslite.transport import Security, open_channel

logger = logging.getLogger(__name__)

Ev = scheduler_pb2.Event
DEFAULT_MASTER = "127.0.0.1:5050"
DEFAULT_CONNECT_TIMEOUT_S = 30.0
# The most acknowledgements in one call (the master takes up to `limits.MAX_IDS_PER_CALL`).
MAX_ACKS_PER_CALL = 5000
# Codes after which re-subscribing may succeed; anything else is the master's final answer.
_TRANSIENT = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.CANCELLED,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
}


class SchedulerDriver(DriverCalls):
    """Connects a `Scheduler` to the master.

    Use it as `async with SchedulerDriver(...) as driver: await driver.join()`, or call the
    blocking `run()` from a plain script. The calls (`accept`, `decline`, ...) are in
    `DriverCalls`.

    Args:
        scheduler: the object whose callbacks receive events (see `Scheduler`).
        framework: who the framework is; set `framework.id` to re-subscribe as an existing
            framework (after a restart within its `failover_timeout_s`).
        master: `HOST:PORT` of the master, `HOST:PORT,HOST:PORT,...` (any of them; a
            standby redirects to the leader), or `zk://HOST:PORT[,...]/PATH` (the leader
            registered in ZooKeeper).
        implicit_acknowledgements: acknowledge each update after `on_update` returns. When
            False, call `acknowledge()` yourself, or the agent resends the update.
        connect_timeout_s: give up (and make `join()` raise `UnavailableError`, naming the
            address) if the first subscription does not succeed in this time; None (or
            `math.inf`) retries forever. Once subscribed, the driver re-subscribes forever.
        call_timeout_s: the deadline of each call to the master.
        reconnect_backoff_max_s: the longest wait between re-subscription attempts (each
            wait is drawn at random below a ceiling that doubles up to this).
        rng: the source of the backoff's jitter (tests pass a seeded `random.Random`).
        on_callback_error: `"raise"`: a callback that raises stops the driver (without
            TEARDOWN, as if the process had died) and `join()`/`run()` raise its exception;
            `"log"`: log it and go on with the next event.
        strict_callbacks: raise `ValidationError` instead of warning when `scheduler` has
            `on_…` methods that are not callbacks (e.g. `on_offer` for `on_offers`).
        security: TLS to the master (`mesoslite.transport.Security`: CA, and certificate
            and key for mutual TLS); None reads `$MESOSLITE_TLS_CA`, `$MESOSLITE_TLS_CERT`
            and `$MESOSLITE_TLS_KEY`, plain text where unset.
        secret: the secret of `framework.principal`, for a master with `--credentials`
            (every call carries both; refused: `join()` raises `UnauthenticatedError`).

    Raises:
        ValidationError: a bad option, or an unknown callback with `strict_callbacks`.
    """

    def __init__(
        self,
        scheduler: Scheduler | Any,
        framework: FrameworkInfo,
        *,
        master: str = DEFAULT_MASTER,
        implicit_acknowledgements: bool = True,
        connect_timeout_s: float | None = DEFAULT_CONNECT_TIMEOUT_S,
        call_timeout_s: float = 10.0,
        reconnect_backoff_max_s: float = 2.0,
        rng: random.Random | None = None,
        on_callback_error: str = cb.RAISE,
        strict_callbacks: bool = False,
        security: Security | None = None,
        secret: str = "",
    ) -> None:
        # TLS (issue 14): as given, else from $MESOSLITE_TLS_CA/_CERT/_KEY (plain if unset).
        self.security = security if security is not None else client_security()
        cb.check_options(connect_timeout_s, on_callback_error)
        cb.check_callbacks(scheduler, strict=strict_callbacks)
        self.scheduler = scheduler
        self.on_callback_error = on_callback_error
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
        # No secret: present nothing of its own (a process-wide default may apply, see
        # `transport.use_client_credentials`).
        self._security = (
            replace(self.security, principal=framework.principal, secret=secret)
            if secret else self.security
        )
        self._master_info: MasterInfo | None = None
        self._channel: grpc.aio.Channel | None = None
        self._channel_address = ""
        self._stub: scheduler_pb2_grpc.SchedulerStub | None = None
        self._task: asyncio.Task[None] | None = None
        self._call: Any = None
        self._connected = False
        self._stopping = False
        self._stopped = asyncio.Event()
        # What stopped the driver: the master's refusal, or a callback's exception.
        self._error: Exception | None = None
        self._ever_subscribed = False
        self._last_failure = ""  # why the latest subscription attempt failed
        self._first_connect: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._heartbeats = HeartbeatWatch()
        # The updates of the UPDATE event being dispatched, until implicitly acknowledged.
        self._unacknowledged: list[TaskStatus] = []
        # Handled updates waiting for the acknowledgement in flight to end, and its task.
        self._to_acknowledge: list[TaskStatus] = []
        self._acknowledger: asyncio.Task[Any] | None = None

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
        timeout_s = cb.first_timeout(self.connect_timeout_s)
        if timeout_s is not None:
            self._first_connect = asyncio.create_task(self._watch_first_connect(timeout_s))

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
            if self._first_connect is not None:
                self._first_connect.cancel()
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

    # ------------------------------------------------------------------ internals

    async def _use_master(self, address: str) -> None:
        """Point the channel (and so every call) at `address`."""
        if self._channel is not None and address == self._channel_address:
            return
        old = self._channel
        self.master = self._channel_address = address
        self._channel = open_channel(address, self._security)
        self._stub = scheduler_pb2_grpc.SchedulerStub(self._channel)
        if old is not None:
            await old.close(grace=1.0)

    async def _callback(self, name: str, *args: Any) -> None:
        # Once the driver is stopping or stopped, a callback's error is only logged: it is
        # most likely a call failing because of the stop, and the first error is kept.
        log_only = self.on_callback_error == cb.LOG or self._stopping or self._error is not None
        error = await cb.invoke(self.scheduler, self, name, args, log_only=log_only)
        if error is None or self._stopping or self._error is not None:
            return
        self._error = error
        self._connected = False
        self._unacknowledged = []  # not handled: the agents resend them to a successor
        logger.error(
            "scheduler callback %s raised %s: %s; the driver stops (on_callback_error=%r)",
            name,
            type(error).__name__,
            error,
            self.on_callback_error,
        )
        # Callbacks run in the subscription task, which now ends and sets `_stopped`.

    async def _watch_first_connect(self, timeout_s: float) -> None:
        """Stop the driver if its first subscription has not succeeded in `timeout_s`."""
        await asyncio.sleep(timeout_s)
        if self._ever_subscribed or self._stopping or self._error is not None:
            return
        # Fired: from here on `stop()` waits for this task (to call on_error) as for a call.
        me = asyncio.current_task()
        if me is not None:
            self._first_connect = None
            self._background.add(me)
            me.add_done_callback(self._background.discard)
        why = f" (last error: {self._last_failure})" if self._last_failure else ""
        error = UnavailableError(
            f"cannot reach the master at {self.leader.describe()} within connect_timeout_s="
            f"{timeout_s:g}{why}: check the address, that a master runs there and that this "
            "host can reach it; connect_timeout_s=None retries forever"
        )
        self._error = error  # before the cancel: `join()` must see it when it wakes
        task = self._task
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await self._fail(error)

    async def _subscription_loop(self) -> None:
        warned = False
        try:
            while not self._stopping:
                try:
                    await self._use_master(await self.leader.current())
                    await self._subscribe_once()
                except UnavailableError as e:
                    # ZooKeeper cannot be reached or names no leader yet: try again.
                    self._last_failure = e.message
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
                    self._last_failure = f"{self.master}: {e.details()}"
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
                    if self._stopping or self._error is not None:
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
            self._connected = self._ever_subscribed = True
            logger.info("subscribed framework_id=%s master=%s", sub.framework_id, self.master)
            await self._callback("on_subscribed", self._info.id, self._master_info)
        elif kind == Ev.UPDATE:
            statuses = [c.status_from_pb(s) for s in event.update.statuses]
            self._unacknowledged = statuses
            for status in statuses:
                await self._callback("on_update", status)
                if self._error is not None:
                    return  # stopped by the callback: none of them is acknowledged
            if self.implicit_acknowledgements and self._unacknowledged:
                # (`stop()` from a callback acknowledges them itself, before it closes.)
                self._unacknowledged = []
                self._acknowledge_soon(statuses)
        elif kind == Ev.ERROR:
            if self._stopping:
                return  # the answer to our own teardown, not a failure
            await self._fail(ConflictError(event.error.message))
        else:
            call = plain_callback(event)
            if call is not None:
                await self._callback(call.name, *call.args)

    def _acknowledge_soon(self, statuses: list[TaskStatus]) -> None:
        """Acknowledge handled updates: at once if no acknowledgement is in flight, else
        with every update handled meanwhile in the next call (one call per round trip,
        not one per UPDATE event)."""
        self._to_acknowledge += statuses
        if self._acknowledger is None or self._acknowledger.done():
            self._acknowledger = self._spawn(self._send_acknowledgements())

    async def _send_acknowledgements(self) -> None:
        while self._to_acknowledge:
            batch = self._to_acknowledge[:MAX_ACKS_PER_CALL]
            del self._to_acknowledge[:MAX_ACKS_PER_CALL]
            await self._acknowledge_quietly(batch)

    async def _acknowledge_quietly(self, statuses: list[TaskStatus]) -> None:
        try:
            await self.acknowledge(*statuses)
        except MesosliteError as e:
            # The agent resends unacknowledged updates, so a lost ack costs only a repeat.
            logger.warning("acknowledgement failed (the agent will resend): %s", e)

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def _fail(self, error: MesosliteError) -> None:
        self._error = error
        self._connected = False
        logger.error("the driver stops: %s", error.message)
        await self._callback("on_error", error.message)
        self._stopped.set()
