"""gRPC health checking (`grpc.health.v1`) and server reflection on a daemon's gRPC server.

Probes (load balancers, `grpc_health_probe`, grpcurl) must reach a master that does not lead,
so the master's `LeaderGuard` lets these two services through (`PROBE_METHOD_PREFIXES`).

Health follows one predicate, `serving()`: the master's "leads now", the agent's "registered
with a master". The status of "" and of every service name is SERVING when it holds,
NOT_SERVING otherwise. It is refreshed on every Check and every `refresh_s` on the daemon's
clock, so a Watch sees a change within `refresh_s`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from mesoslite.clock import Clock
from mesoslite.errors import ConfigError

HEALTH_SERVICE = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
PROBE_METHOD_PREFIXES = (f"/{HEALTH_SERVICE}/", "/grpc.reflection.")
DEFAULT_REFRESH_S = 1.0


class ProbeHealth(health.aio.HealthServicer):
    """A health servicer whose statuses follow `serving()`.

    Args:
        services: the full names of the daemon's own services (each gets a status).
        serving: whether the daemon serves now; read on the daemon's loop.
    """

    def __init__(self, services: Sequence[str], serving: Callable[[], bool]) -> None:
        super().__init__()
        self._names = ("", *services)
        self._serving = serving
        self._cancel: Callable[[], None] | None = None
        self._last: bool | None = None

    async def refresh(self) -> None:
        now = bool(self._serving())
        if now == self._last:
            return
        self._last = now
        status = health_pb2.HealthCheckResponse.SERVING if now else (
            health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in self._names:
            await self.set(name, status)

    async def Check(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC's name
        await self.refresh()
        return await super().Check(request, context)

    async def Watch(self, request: Any, context: Any) -> None:  # noqa: N802 - gRPC's name
        await self.refresh()  # the first answer is the status now, not the default
        await super().Watch(request, context)

    def start(self, clock: Clock, refresh_s: float = DEFAULT_REFRESH_S) -> None:
        """Refresh every `refresh_s` on `clock` (for Watch) until `stop()`."""
        import asyncio

        def tick() -> None:
            asyncio.get_running_loop().create_task(self.refresh())
            self._cancel = clock.call_later(refresh_s, tick)

        self._cancel = clock.call_later(0.0, tick)

    async def stop(self) -> None:
        if self._cancel is not None:
            self._cancel()
            self._cancel = None
        await self.enter_graceful_shutdown()


def add_probe_services(
    server: grpc.aio.Server, services: Sequence[str], serving: Callable[[], bool]
) -> ProbeHealth:
    """Serve health and reflection on `server`, whose own services are `services`."""
    health = ProbeHealth(services, serving)
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    reflection.enable_server_reflection(
        (*services, HEALTH_SERVICE, reflection.SERVICE_NAME), server
    )
    return health


class OpenToProbes(grpc.aio.ServerInterceptor):
    """Runs `inner` (e.g. the master's `LeaderGuard`) on every call but health and
    reflection, which must answer whatever the daemon's state."""

    def __init__(self, inner: grpc.aio.ServerInterceptor) -> None:
        self.inner = inner

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        if handler_call_details.method.startswith(PROBE_METHOD_PREFIXES):
            return await continuation(handler_call_details)
        return await self.inner.intercept_service(continuation, handler_call_details)


@dataclass(slots=True)
class ProbeServer:
    """A gRPC server that serves only health and reflection (the agent's: the agent dials
    the master, so it has no API of its own to serve)."""

    server: grpc.aio.Server
    health: ProbeHealth
    address: str

    async def stop(self, grace_s: float = 0.5) -> None:
        await self.health.stop()
        await self.server.stop(grace=grace_s)


async def start_probe_server(
    address: str, serving: Callable[[], bool], flag: str = "--grpc-address",
    security: Any = None,
) -> ProbeServer:
    """Listen on `address` (HOST:PORT, port 0 picks one) and serve health and reflection.

    `security` (a `transport.Security`): TLS as the daemon's own; plain text when None.

    Raises:
        ConfigError: naming `flag`, when the address cannot be bound.
    """
    from mesoslite.clock import SystemClock
    from mesoslite.rpc import SERVER_OPTIONS
    from mesoslite.transport import PLAIN, add_port

    server = grpc.aio.server(options=SERVER_OPTIONS)
    health = add_probe_services(server, [], serving)
    port = add_port(server, address, security or PLAIN)
    if not port:
        raise ConfigError(f"{flag}: cannot listen on {address}: address in use or not available")
    await server.start()
    health.start(SystemClock())
    return ProbeServer(server, health, f"{address.rpartition(':')[0]}:{port}")
