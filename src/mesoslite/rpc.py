"""gRPC plumbing shared by daemons and clients: channel options, error mapping both ways."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from mesoslite import errors

logger = logging.getLogger(__name__)

# The largest message each way (issue 14; docs/limits.md). A request (to the master: a call,
# a job spec, an agent's registration or batch of updates) is at most 16 MB: room for the
# largest single item, a 1 MB job spec, sixteen times over, and for an ACCEPT or an agent's
# re-registration of some 50,000 tasks of typical size (a few hundred bytes each). A larger
# batch must be split. A response (state, job list, a batch of launches to an agent) is at
# most 64 MB: a list of all jobs carries each one's spec. gRPC refuses a bigger message
# with RESOURCE_EXHAUSTED: the sender's side before it is sent, the receiver's on arrival.
MAX_REQUEST_BYTES = 16 * 1024 * 1024
MAX_RESPONSE_BYTES = 64 * 1024 * 1024

# Keepalives find a dead peer on an idle long-lived stream; large messages carry batches.
CHANNEL_OPTIONS: list[tuple[str, Any]] = [
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.max_receive_message_length", MAX_RESPONSE_BYTES),
    ("grpc.max_send_message_length", MAX_REQUEST_BYTES),
    ("grpc.enable_retries", 0),
]
SERVER_OPTIONS: list[tuple[str, Any]] = [
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.max_receive_message_length", MAX_REQUEST_BYTES),
    ("grpc.max_send_message_length", MAX_RESPONSE_BYTES),
    ("grpc.so_reuseport", 0),
]

_CODE_TO_ERROR: dict[grpc.StatusCode, type[errors.MesosliteError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: errors.ValidationError,
    grpc.StatusCode.PERMISSION_DENIED: errors.PermissionDeniedError,
    grpc.StatusCode.NOT_FOUND: errors.NotFoundError,
    grpc.StatusCode.FAILED_PRECONDITION: errors.ConflictError,
    grpc.StatusCode.ALREADY_EXISTS: errors.AlreadyExistsError,
    grpc.StatusCode.UNAVAILABLE: errors.UnavailableError,
    grpc.StatusCode.DEADLINE_EXCEEDED: errors.DeadlineExceededError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: errors.ResourceExhaustedError,
    grpc.StatusCode.UNAUTHENTICATED: errors.UnauthenticatedError,
}


def status_code(err: errors.MesosliteError) -> grpc.StatusCode:
    return getattr(grpc.StatusCode, err.status, grpc.StatusCode.INTERNAL)


def error_from_rpc(exc: grpc.RpcError) -> errors.MesosliteError:
    """Turn a failed call into the matching `MesosliteError` subclass."""
    code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
    details = (exc.details() if hasattr(exc, "details") else None) or str(code)
    cls = _CODE_TO_ERROR.get(code, errors.MesosliteError)
    if cls is errors.ValidationError:
        return errors.ValidationError("", details)
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED and "larger than max" in details:
        return errors.ResourceExhaustedError(
            f"message too large: {details} bytes; a request is at most "
            f"{MAX_REQUEST_BYTES // 2**20} MB and a response {MAX_RESPONSE_BYTES // 2**20} MB "
            "(docs/limits.md): send fewer items per call"
        )
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        from mesoslite.security.retry_after import RateLimitedError, retry_after_s

        wait_s = retry_after_s(exc)  # the master's rate limit (`security/limits*.py`)
        if wait_s is not None:
            return RateLimitedError(details, wait_s)
    if code == grpc.StatusCode.NOT_FOUND and details.startswith("offer '"):
        return errors.UnknownOfferError(details)  # `master/offers.py` words it so
    if code == grpc.StatusCode.UNAVAILABLE and details.startswith("not leading"):
        leader = details.rsplit(" ", 1)[-1] if "leader is" in details else ""
        return errors.NotLeaderError(details, leader)
    return cls(details)


async def abort_with(
    context: grpc.aio.ServicerContext[Any, Any], err: errors.MesosliteError
) -> None:
    await context.abort(status_code(err), err.message)


def handle_errors(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """Decorator for unary servicer methods: map `MesosliteError` to its status, log the rest.

    (A decorator rather than a `ServerInterceptor`: grpc.aio interceptors cannot see the
    exception of a handler, only wrap its construction.)
    """

    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        try:
            return await fn(self, request, context)
        except errors.MesosliteError as e:
            await context.abort(status_code(e), e.message)
        except (grpc.aio.AbortError, grpc.aio.UsageError):
            raise
        except Exception:
            logger.exception("internal error in %s", fn.__qualname__)
            await context.abort(grpc.StatusCode.INTERNAL, f"internal error in {fn.__name__}")

    wrapper.__name__ = fn.__name__
    wrapper.__qualname__ = fn.__qualname__
    wrapper.__doc__ = fn.__doc__
    return wrapper


class _Undecodable:
    """What a guarded deserializer returns for bytes that are not the expected message."""

    __slots__ = ("error",)

    def __init__(self, error: Exception) -> None:
        self.error = error


def _guarded_deserializer(
    deserialize: Callable[[bytes], Any] | None,
) -> Callable[[bytes], Any] | None:
    if deserialize is None:
        return None

    def guarded(data: bytes) -> Any:
        try:
            return deserialize(data)
        except Exception as e:  # noqa: BLE001 - protobuf raises DecodeError, or others on junk
            return _Undecodable(e)

    return guarded


async def _refuse_undecodable(
    method: str, bad: _Undecodable, context: grpc.aio.ServicerContext[Any, Any]
) -> None:
    logger.warning(
        "undecodable request to %s from %s: %s", method, context.peer(), bad.error
    )
    await context.abort(
        grpc.StatusCode.INVALID_ARGUMENT,
        f"request to {method} is not a valid protobuf message: {bad.error}",
    )


class _CheckedContext:
    """A servicer context whose `read()` refuses an undecodable message of a stream."""

    def __init__(self, method: str, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        self._method = method
        self._context = context

    async def read(self) -> Any:
        msg = await self._context.read()
        if isinstance(msg, _Undecodable):
            await _refuse_undecodable(self._method, msg, self._context)
        return msg

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)


def _guard_unary(method: str, behavior: Callable[..., Any]) -> Callable[..., Any]:
    if inspect.isasyncgenfunction(behavior):

        async def stream(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            if isinstance(request, _Undecodable):
                await _refuse_undecodable(method, request, context)
            async for item in behavior(request, context):
                yield item

        return stream

    async def unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        if isinstance(request, _Undecodable):
            await _refuse_undecodable(method, request, context)
        return await behavior(request, context)

    return unary


def _guard_streaming(method: str, behavior: Callable[..., Any]) -> Callable[..., Any]:
    async def checked(requests: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        async for msg in requests:
            if isinstance(msg, _Undecodable):
                await _refuse_undecodable(method, msg, context)
            yield msg

    if inspect.isasyncgenfunction(behavior):

        async def stream(requests: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            checked_context = _CheckedContext(method, context)
            async for item in behavior(checked(requests, context), checked_context):
                yield item

        return stream

    async def unary(requests: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        return await behavior(checked(requests, context), _CheckedContext(method, context))

    return unary


def guard_decoding(
    method: str, handler: grpc.RpcMethodHandler[Any, Any]
) -> grpc.RpcMethodHandler[Any, Any]:
    """`handler` with bytes that do not decode refused as INVALID_ARGUMENT, logged once.

    Without this, grpc.aio answers UNKNOWN "Unexpected DecodeError" and logs a traceback per
    call. A deserializer cannot abort a call, so it hands a marker to the behaviour instead.
    """
    de = _guarded_deserializer(handler.request_deserializer)
    ser = handler.response_serializer
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(
            _guard_unary(method, handler.unary_unary), de, ser
        )
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(
            _guard_unary(method, handler.unary_stream), de, ser
        )
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(
            _guard_streaming(method, handler.stream_unary), de, ser
        )
    assert handler.stream_stream is not None  # the one kind left
    return grpc.stream_stream_rpc_method_handler(
        _guard_streaming(method, handler.stream_stream), de, ser
    )


class DecodeGuard(grpc.aio.ServerInterceptor):
    """Applies `guard_decoding` to every method of a server, once per method."""

    def __init__(self) -> None:
        self._guarded: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        method = handler_call_details.method
        guarded = self._guarded.get(method)
        if guarded is not None:
            return guarded
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        guarded = self._guarded[method] = guard_decoding(method, handler)
        return guarded


def parse_address(text: str, default_port: int = 5050) -> str:
    """Normalise `host`, `host:port` or `grpc://host:port` to `host:port`."""
    addr = text.strip()
    for prefix in ("grpc://", "http://"):
        if addr.startswith(prefix):
            addr = addr[len(prefix) :]
    addr = addr.rstrip("/")
    if not addr:
        raise errors.ValidationError("master", "address is empty")
    host, sep, port = addr.rpartition(":")
    if not sep or "]" in port:
        return f"{addr}:{default_port}"
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise errors.ValidationError("master", f"bad port in address {text!r}")
    return addr
