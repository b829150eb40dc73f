"""gRPC plumbing shared by daemons and clients: channel options, error mapping both ways."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from mesoslite import errors

logger = logging.getLogger(__name__)

# Keepalives find a dead peer on an idle long-lived stream; large messages carry batches.
CHANNEL_OPTIONS: list[tuple[str, Any]] = [
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    ("grpc.enable_retries", 0),
]
SERVER_OPTIONS: list[tuple[str, Any]] = [
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
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
