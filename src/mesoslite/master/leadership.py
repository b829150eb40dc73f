"""Whether this master leads now, and the gRPC interceptor that turns standbys away.

While the master does not lead (a standby, not yet recovered, or suspended from
ZooKeeper), `LeaderGuard` answers every RPC with UNAVAILABLE and
`not leading (...); leader is HOST:PORT`, which clients parse (`rpc.error_from_rpc`) to
follow the leader. Servicers never see a call that arrives while not leading.

`ExitWatchdog` ends a master that lost leadership within a hard deadline, whatever it was
doing (issue 11, item 5: a deposed leader sat in a registry call until ZooKeeper returned).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc

from mesoslite.errors import NotLeaderError

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class Leadership:
    """Owned by the master's loop; `leader_address` comes from the contender."""

    master_id: str
    address: str = ""
    leading: bool = False
    reason: str = "not elected yet"
    leader_address_of: Callable[[], str] = lambda: ""

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
