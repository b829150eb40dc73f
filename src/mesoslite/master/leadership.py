"""Whether this master leads now, and the gRPC interceptor that turns standbys away.

While the master does not lead (a standby, not yet recovered, or suspended from
ZooKeeper), `LeaderGuard` answers every RPC with UNAVAILABLE and
`not leading (...); leader is HOST:PORT`, which clients parse (`rpc.error_from_rpc`) to
follow the leader. Servicers never see a call that arrives while not leading. A call that
arrives while this master is elected but still recovering waits for that (bounded) instead.

`ExitWatchdog` ends a master that lost leadership within a hard deadline, whatever it was
doing (issue 11, item 5: a deposed leader sat in a registry call until ZooKeeper returned).

`LeadershipFollower` is the leadership loop: it turns the contender's changes (elected,
suspended, resumed, lost) into the actor's start, pause and resume, and stops the master
when leadership is lost for good. While it waits to be elected it keeps warm (#15): the
registry is followed (`registry.standby`, so that recovery is a claim, not a read) and
the modules only a leader runs are imported (the jobs framework's cost 150-300 ms of
imports on a loaded machine, between election and the first re-subscription).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc

from mesoslite.errors import MesosliteError, NotLeaderError
from mesoslite.master.actor import MasterActor
from mesoslite.master.constants import EXIT_GRACE_S
from mesoslite.master.election.base import Change, Contender, LeadershipChange

logger = logging.getLogger(__name__)

# How long a call to a master that is elected but still recovering waits for it to lead.
RECOVERY_WAIT_S = 2.0
# How long a call to a standby waits for it to read the election again (#15).
SETTLE_WAIT_S = 0.5
STOPPING = "stopping"  # `Leadership.reason` once the orderly stop began
# Imported lazily when a master first leads (`build.JobsRunner`); a standby imports them
# while it waits, so that its election is not followed by their imports.
LEADER_ONLY_MODULES = ("mesoslite.master.jobs_port",)


@dataclass(slots=True)
class Leadership:
    """Owned by the master's loop; `leader_address` comes from the contender."""

    master_id: str
    address: str = ""
    leading: bool = False
    reason: str = "not elected yet"
    leader_address_of: Callable[[], str] = lambda: ""
    # Set while elected and recovering from the registry; set() when that is over.
    recovering: asyncio.Event | None = None
    # From the contender (`LeadershipFollower` sets them): wait until a change ZooKeeper
    # reported is acted on; whether it has elected us (the follower may not have begun).
    settled_of: Callable[[float], Awaitable[None]] | None = None
    elected_of: Callable[[], bool] = lambda: False
    look_again_of: Callable[[], None] = lambda: None

    async def until_recovered(self) -> None:
        """Wait (at most `RECOVERY_WAIT_S`) while this master is being elected or recovering.

        A client that found us in ZooKeeper the moment the old leader's znode went is then
        served as soon as we lead, rather than refused (or sent to the dead leader) and
        retried a backoff later (issue #15)."""
        deadline = time.monotonic() + RECOVERY_WAIT_S
        if self.settled_of is not None and self.recovering is None and self.reason != STOPPING:
            self.look_again_of()
            await self.settled_of(SETTLE_WAIT_S)
        while not self.leading and time.monotonic() < deadline:
            recovering = self.recovering
            if recovering is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(recovering.wait(), deadline - time.monotonic())
                return
            if not self.elected_of():
                return
            await asyncio.sleep(0.005)  # elected: the follower begins on its next turn

    def error(self) -> NotLeaderError:
        leader = self.leader_address_of()
        if leader and leader != self.address:
            return NotLeaderError(
                f"not leading ({self.master_id}: {self.reason}); leader is {leader}", leader
            )
        return NotLeaderError(f"not leading ({self.master_id}: {self.reason}); no leader known")


class LeaderGuard(grpc.aio.ServerInterceptor):
    def __init__(self, leadership: Leadership) -> None:
        self.leadership = leadership

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        if not self.leadership.leading and handler is not None:
            await self.leadership.until_recovered()
        if self.leadership.leading or handler is None:
            return handler
        err = self.leadership.error()

        async def refuse(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            await context.abort(grpc.StatusCode.UNAVAILABLE, err.message)

        async def refuse_stream(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            await context.abort(grpc.StatusCode.UNAVAILABLE, err.message)
            yield  # pragma: no cover (makes this an async generator)

        de, ser = handler.request_deserializer, handler.response_serializer
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(refuse, de, ser)
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(refuse_stream, de, ser)
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(refuse, de, ser)
        return grpc.stream_stream_rpc_method_handler(refuse_stream, de, ser)


class ExitWatchdog:
    """The backstop that makes leadership loss a hard deadline.

    Once armed, a daemon thread ends the process with status 1 (`os._exit`, so that neither
    a stuck coroutine nor a thread blocked in a kazoo call can hold it) unless `disarm()`
    comes first. The master arms it for the session timeout (plus a grace) when ZooKeeper
    goes away, and for a short grace when leadership is lost for good, which is the time
    the orderly shutdown has.

    Args:
        exit: how to end the process (tests pass a recorder instead of `os._exit`).
    """

    def __init__(self, exit: Callable[[int], object] = os._exit) -> None:
        self._exit = exit
        self._cond = threading.Condition()
        self._deadline: float | None = None
        self._reason = ""
        self._thread: threading.Thread | None = None

    @property
    def armed(self) -> bool:
        return self._deadline is not None

    def arm(self, after_s: float, reason: str) -> None:
        """Exit in `after_s` seconds unless disarmed; an earlier deadline is kept."""
        deadline = time.monotonic() + max(0.0, after_s)
        with self._cond:
            if self._deadline is not None and self._deadline <= deadline:
                return
            self._deadline, self._reason = deadline, reason
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="leadership-watchdog", daemon=True
                )
                self._thread.start()
            self._cond.notify_all()

    def disarm(self) -> None:
        with self._cond:
            self._deadline = None
            self._cond.notify_all()

    def _run(self) -> None:
        with self._cond:
            while True:
                if self._deadline is None:
                    self._cond.wait()
                    continue
                left = self._deadline - time.monotonic()
                if left > 0:
                    self._cond.wait(left)
                    continue
                reason, self._deadline = self._reason, None
                break
        logger.error("exiting now (status 1): %s; the orderly shutdown did not finish", reason)
        for handler in logging.getLogger().handlers:
            handler.flush()
        self._exit(1)


@dataclass(slots=True)
class Stopping:
    """When the master stops (`event`: a signal, or leadership lost for good) and, if it
    lost leadership, why (`lost`): then it exits 1."""

    event: asyncio.Event = field(default_factory=asyncio.Event)
    lost: list[str] = field(default_factory=list)

    def lose(self, reason: str) -> None:
        self.lost.append(reason)
        self.event.set()


class LeadershipFollower:
    """Follows the contender's changes until leadership is lost for good.

    Args:
        start_leading: recovers the actor and starts what runs while leading (jobs); called
            once, at the first election (a standalone master has done it before serving).
        changed: called after every change (the master rewrites its `master.json`).
    """

    def __init__(
        self,
        contender: Contender,
        leadership: Leadership,
        actor: MasterActor,
        *,
        start_leading: Callable[[], Awaitable[None]],
        changed: Callable[[], None],
        watchdog: ExitWatchdog,
        stopping: Stopping,
        session_timeout_s: float,
    ) -> None:
        self.contender = contender
        self.leadership = leadership
        self.actor = actor
        self.start_leading = start_leading
        self.changed = changed
        self.watchdog = watchdog
        self.stopping = stopping
        self.session_timeout_s = session_timeout_s
        self.started = leadership.leading
        settled = getattr(contender, "settled", None)  # ZooKeeper's contender has these
        if settled is not None:
            leadership.settled_of = settled
            leadership.look_again_of = getattr(contender, "look_again", lambda: None)
        leadership.elected_of = lambda: bool(getattr(contender, "elected", False))

    async def run(self) -> None:
        warm = self._keep_warm() if not self.started else []
        try:
            await self._follow()
        finally:
            for task in warm:
                task.cancel()

    def _keep_warm(self) -> list[asyncio.Task[Any]]:
        """What a standby does while it waits (see the module docstring)."""
        tasks = [asyncio.create_task(
            asyncio.to_thread(_import_all, LEADER_ONLY_MODULES), name="warm-imports"
        )]
        registry = getattr(self.actor, "registry", None)
        keep_warm = getattr(registry, "keep_warm", None)  # ZooKeeper's store has it
        if keep_warm is not None:
            tasks.append(asyncio.create_task(keep_warm(), name="warm-registry"))
        return tasks

    async def _follow(self) -> None:
        while True:
            change = await self.contender.next_change()
            if change.change == Change.ELECTED:
                if not await self._elected():
                    return
            elif change.change == Change.SUSPENDED:
                self._suspended(change)
            elif change.change == Change.RESUMED:
                self.watchdog.disarm()
                self.actor.resume()
                self._lead()
            else:
                self._lost(change)
                return
            self.changed()

    def _lead(self) -> None:
        self.leadership.leading, self.leadership.reason = True, ""
        if self.leadership.recovering is not None:
            self.leadership.recovering.set()  # calls held by the guard go on now

    async def _elected(self) -> bool:
        """Lead; False if the registry cannot be recovered (the master stops)."""
        recovering = self.leadership.recovering = asyncio.Event()
        try:
            return await self._recover()
        finally:
            self.leadership.recovering = None
            recovering.set()

    async def _recover(self) -> bool:
        try:
            if not self.started:
                await self.actor.start()
                self.started = True
                self._lead()
                await self.start_leading()
            elif not self.leadership.leading:
                self.actor.resume()
        except MesosliteError as e:
            self.stopping.lose(f"cannot recover from the registry: {e.message}")
            return False
        self._lead()
        logger.info(
            "leading master_id=%s epoch=%d", self.leadership.master_id, self.contender.epoch
        )
        return True

    def _suspended(self, change: LeadershipChange) -> None:
        self.leadership.leading, self.leadership.reason = False, change.reason
        self.actor.pause()
        # The backstop: the contender deposes us at the session timeout, on this loop; if
        # that cannot happen, the watchdog ends the process anyway.
        self.watchdog.arm(
            self.session_timeout_s + EXIT_GRACE_S,
            f"{change.reason} for longer than the session timeout",
        )

    def _lost(self, change: LeadershipChange) -> None:
        self.leadership.leading, self.leadership.reason = False, change.reason
        self.actor.pause()
        self.watchdog.arm(EXIT_GRACE_S, change.reason)
        self.stopping.lose(change.reason)


def _import_all(modules: tuple[str, ...]) -> None:
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:  # imported again (and raised there) when leading
            logger.debug("warm import of %s failed", name, exc_info=True)


async def hand_over(
    leadership: Leadership,
    actor: MasterActor,
    contender: Contender,
    *,
    was_leading: bool,
    changed: Callable[[], None],
    settle_s: float,
) -> None:
    """The first step of a master's orderly stop: give leadership up at once (issue #15).

    Stop serving as leader (the guard refuses new calls, the actor stops allocating and
    closes its streams so agents and frameworks look for the next leader), let the registry
    writes in flight end (at most `settle_s`), then leave the election: a standby is elected
    by its watch as soon as our znode goes, not a session timeout later. The slower steps
    (gRPC grace, the jobs framework) come after. A write still running when the znode goes
    is safe all the same: its transaction checks the znode, so it either committed first
    (and the next leader reads it) or fails, and only a committed write is acknowledged.
    `was_leading`: whether we led when the stop began (the caller may already have
    cleared `leadership.leading`).
    """
    started = time.monotonic()
    leadership.leading, leadership.reason = False, STOPPING
    actor.pause()
    changed()
    await actor.writes_settled(settle_s)
    await contender.close()
    if was_leading:
        logger.info(
            "handed leadership over master_id=%s in %.0f ms",
            leadership.master_id, (time.monotonic() - started) * 1000,
        )
