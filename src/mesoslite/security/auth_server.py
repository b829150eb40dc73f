"""The server's half of authentication: `AuthGuard` refuses a call without valid credentials.

With `--credentials`, every call but health and reflection (which must answer anyone; the
master's build passes `grpc_probes.PROBE_METHOD_PREFIXES`) needs either
`authorization: Basic base64(principal:secret)` metadata whose secret matches the
principal's hash, or a client certificate verified by mutual TLS (its common name is the
principal). Anything else is refused with
UNAUTHENTICATED before the servicer runs, so a refused call changes nothing. The verified
principal is bound for the call's handler, where `identity.caller_of` finds it.

The check runs inside the handler rather than in `intercept_service`, because only the
servicer context knows the peer's certificate (`auth_context`).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from mesoslite.security.auth_client import AUTH_METADATA_KEY, parse_basic
from mesoslite.security.credentials import Credentials
from mesoslite.security.identity import bind_principal, certificate_principal

logger = logging.getLogger(__name__)

MISSING = (
    "authentication required: this master has --credentials; present a principal and "
    "secret (--principal and --secret-file) or a client certificate"
)
# Header values already verified -> their principal: the per-call cost is one dict lookup
# (`--credentials` is read once, so an entry never goes stale). Bounded: cleared when full.
MAX_KNOWN_VALUES = 10_000
MALFORMED = "malformed authorization metadata: expected 'Basic base64(principal:secret)'"


def _refused(principal: str) -> str:
    # The same words for an unknown principal and a wrong secret: do not say which.
    return f"invalid credentials for principal {principal[:64]!r}"


class AuthGuard(grpc.aio.ServerInterceptor):
    """Authenticates every call against `credentials`, but those to methods starting with
    one of `open_prefixes` (the probes': `grpc_probes.PROBE_METHOD_PREFIXES`)."""

    def __init__(self, credentials: Credentials, open_prefixes: tuple[str, ...] = ()) -> None:
        self.credentials = credentials
        self.open_prefixes = open_prefixes
        self._known: dict[str, str] = {}
        self._wrapped: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}

    async def principal_of(self, context: grpc.aio.ServicerContext[Any, Any]) -> str:
        """The verified principal of the call; aborts it with UNAUTHENTICATED otherwise."""
        value = next(
            (v for k, v in context.invocation_metadata() or () if k == AUTH_METADATA_KEY), None
        )
        if value is None:
            principal = certificate_principal(context)
            if principal is None:
                await context.abort(grpc.StatusCode.UNAUTHENTICATED, MISSING)
            return str(principal)
        known = self._known.get(str(value))
        if known is not None:
            return known
        parsed = parse_basic(str(value))
        if parsed is None:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, MALFORMED)
        principal, secret = parsed
        ok = self.credentials.verified_fast(principal, secret)
        if ok is None:  # scrypt: tens of ms, kept off the loop
            ok = await asyncio.to_thread(self.credentials.verify, principal, secret)
        if not ok:
            logger.info("authentication failed principal=%r peer=%s", principal[:64],
                        context.peer())
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, _refused(principal))
        if len(self._known) >= MAX_KNOWN_VALUES:
            self._known.clear()
        self._known[str(value)] = principal
        return principal

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        method = handler_call_details.method
        if method.startswith(self.open_prefixes):
            return await continuation(handler_call_details)
        wrapped = self._wrapped.get(method)
        if wrapped is not None:
            return wrapped
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        wrapped = self._wrapped[method] = self._wrap(handler)
        return wrapped

    def _wrap(self, handler: grpc.RpcMethodHandler[Any, Any]) -> grpc.RpcMethodHandler[Any, Any]:
        de, ser = handler.request_deserializer, handler.response_serializer
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(self._guard(handler.unary_unary), de, ser)
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                self._guard(handler.unary_stream), de, ser
            )
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(
                self._guard(handler.stream_unary), de, ser
            )
        assert handler.stream_stream is not None  # the one kind left
        return grpc.stream_stream_rpc_method_handler(self._guard(handler.stream_stream), de, ser)

    def _guard(self, behavior: Callable[..., Any]) -> Callable[..., Any]:
        if inspect.isasyncgenfunction(behavior):

            async def stream(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
                bind_principal(await self.principal_of(context))
                async for item in behavior(request, context):
                    yield item

            return stream

        async def call(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            bind_principal(await self.principal_of(context))
            return await behavior(request, context)

        return call
