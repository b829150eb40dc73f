"""The client's half of authentication: every call carries `authorization: Basic ...`.

Added by client interceptors in `transport.open_channel`, so it rides on plain and TLS
channels, aio and blocking alike. The secret is in clear inside the call: use TLS off
loopback (docs/security.md).
"""

from __future__ import annotations

import base64
import collections
from typing import Any

import grpc

AUTH_METADATA_KEY = "authorization"


def basic_value(principal: str, secret: str) -> str:
    """`Basic base64(principal:secret)`, as HTTP Basic auth spells it."""
    token = base64.b64encode(f"{principal}:{secret}".encode()).decode("ascii")
    return f"Basic {token}"


def parse_basic(value: str) -> tuple[str, str] | None:
    """(principal, secret) from a `Basic ...` value; None if it is not one."""
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "basic" or not token:
        return None
    try:
        text = base64.b64decode(token.strip(), validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    principal, sep, secret = text.partition(":")
    if not sep or not principal or not secret:
        return None
    return principal, secret


def _with_auth(metadata: Any, value: str) -> list[tuple[str, str]]:
    items = [(k, v) for k, v in (metadata or ()) if k != AUTH_METADATA_KEY]
    items.append((AUTH_METADATA_KEY, value))
    return items


# ---------------------------------------------------------------------------- grpc.aio


class _AioAuth:
    """Adds the credentials to a call's metadata. grpc.aio files each interceptor under the
    first kind it is an instance of, so there is one subclass per kind (below)."""

    def __init__(self, value: str) -> None:
        self._value = value

    def _details(self, d: Any) -> Any:
        return grpc.aio.ClientCallDetails(
            d.method, d.timeout, grpc.aio.Metadata(*_with_auth(d.metadata, self._value)),
            d.credentials, d.wait_for_ready,
        )


class _AioUnaryUnary(_AioAuth, grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self._details(details), request)


class _AioUnaryStream(_AioAuth, grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self._details(details), request)


class _AioStreamUnary(_AioAuth, grpc.aio.StreamUnaryClientInterceptor):
    async def intercept_stream_unary(self, continuation: Any, details: Any, requests: Any) -> Any:
        return await continuation(self._details(details), requests)


class _AioStreamStream(_AioAuth, grpc.aio.StreamStreamClientInterceptor):
    async def intercept_stream_stream(
        self, continuation: Any, details: Any, requests: Any
    ) -> Any:
        return await continuation(self._details(details), requests)


# ---------------------------------------------------------------------------- blocking

_Details = collections.namedtuple(
    "_Details", ("method", "timeout", "metadata", "credentials", "wait_for_ready", "compression")
)


class _BlockingDetails(_Details, grpc.ClientCallDetails):
    pass


class _BlockingAuth(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    def __init__(self, value: str) -> None:
        self._value = value

    def _details(self, d: Any) -> Any:
        return _BlockingDetails(
            d.method, d.timeout, _with_auth(d.metadata, self._value), d.credentials,
            getattr(d, "wait_for_ready", None), getattr(d, "compression", None),
        )

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_stream_unary(self, continuation: Any, details: Any, requests: Any) -> Any:
        return continuation(self._details(details), requests)

    def intercept_stream_stream(self, continuation: Any, details: Any, requests: Any) -> Any:
        return continuation(self._details(details), requests)


def aio_interceptors(principal: str, secret: str) -> list[Any]:
    """Interceptors for `grpc.aio.*_channel(interceptors=...)`; [] without a principal."""
    if not principal:
        return []
    value = basic_value(principal, secret)
    kinds = (_AioUnaryUnary, _AioUnaryStream, _AioStreamUnary, _AioStreamStream)
    return [kind(value) for kind in kinds]


def intercept_blocking(channel: grpc.Channel, principal: str, secret: str) -> grpc.Channel:
    """`channel` with the credentials added to every call (unchanged without a principal)."""
    if not principal:
        return channel
    return grpc.intercept_channel(channel, _BlockingAuth(basic_value(principal, secret)))

