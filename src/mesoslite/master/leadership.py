"""Whether this master leads now, and the gRPC interceptor that turns standbys away.

While the master does not lead (a standby, not yet recovered, or suspended from
ZooKeeper), `LeaderGuard` answers every RPC with UNAVAILABLE and
`not leading (...); leader is HOST:PORT`, which clients parse (`rpc.error_from_rpc`) to
follow the leader. Servicers never see a call that arrives while not leading.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc

from mesoslite.errors import NotLeaderError


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
