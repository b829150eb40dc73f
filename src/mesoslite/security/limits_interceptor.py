"""`AdmissionGuard`: the master's per-caller limits, checked before any servicer runs.

Per call to a `mesoslite.v1` service: the caller's rate limit (mutating and read calls have
separate buckets), then the caps that need a look at the call: open streams per caller,
frameworks registered at once, tasks per Accept. A refused call never reaches a servicer,
so it changes nothing. Over a rate limit the status is RESOURCE_EXHAUSTED with the wait in
its message and as trailing metadata `retry-after-ms`, which mesoslite's clients honour
(`security.retry_after`). Health and reflection are never limited (`grpc_probes`).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc

from mesoslite.clock import Clock
from mesoslite.security.identity import caller_of
from mesoslite.security.limits import MUTATING, READ, RateLimit, RateLimiter, StreamCounter

logger = logging.getLogger(__name__)

RETRY_AFTER_KEY = "retry-after-ms"
SERVICE_PREFIX = "/mesoslite.v1."
# Calls that only read; every other call of a mesoslite service counts as mutating.
READ_METHODS = frozenset(
    f"{SERVICE_PREFIX}{m}"
    for m in (
        "Operator/GetMaster", "Operator/GetAgents", "Operator/GetFrameworks",
        "Operator/GetTasks", "Operator/ReadFile", "Operator/FollowFile", "Operator/GetRoles",
        "Operator/ExplainFramework", "Jobs/List", "Jobs/Status", "Jobs/History", "Jobs/Plan",
    )
)
SUBSCRIBE = f"{SERVICE_PREFIX}Scheduler/Subscribe"
ACCEPT = f"{SERVICE_PREFIX}Scheduler/Accept"
# A status message is cut to this many bytes of UTF-8: gRPC sends it percent-encoded in a
# trailer, and a client refuses trailers over 8-16 KB, which loses the message altogether
# ("Stream removed (received metadata size exceeds hard limit)": found by fuzzing job specs
# whose every unknown key was echoed back whole).
MAX_DETAILS_BYTES = 2000
# The longest a new framework near --max-frameworks waits for others in flight to settle.
SETTLE_S = 5.0
# At most one refusal per caller is logged in this many seconds: a flood must not flood the log.
LOG_EVERY_S = 10.0

Handler = Any  # grpc.RpcMethodHandler: not subscriptable at run time
Ctx = Any  # grpc.aio.ServicerContext


@dataclass(frozen=True, slots=True)
class AdmissionLimits:
    """The master's `--rate-limit-*` and `--max-*` values (0: off, except tasks)."""

    mutating: RateLimit = RateLimit()
    read: RateLimit = RateLimit()
    max_streams_per_caller: int = 0
    max_frameworks: int = 0
    max_tasks_per_accept: int = 100_000

    @classmethod
    def of(cls, config: Any) -> AdmissionLimits:
        """From a `MasterConfig`."""
        return cls(
            RateLimit(config.rate_limit_qps, config.rate_limit_burst),
            RateLimit(config.rate_limit_read_qps, config.rate_limit_read_burst),
            config.max_streams_per_caller, config.max_frameworks, config.max_tasks_per_accept,
        )


@dataclass(slots=True)
class FrameworkCount:
    """How many frameworks are registered (`count`) and whether an id is one of them."""

    count: Callable[[], int]
    known: Callable[[str], bool]


class AdmissionGuard(grpc.aio.ServerInterceptor):
    """Applies `AdmissionLimits` to every call of a `mesoslite.v1` service."""

    def __init__(
        self, limits: AdmissionLimits, clock: Clock, frameworks: FrameworkCount | None = None
    ) -> None:
        self.limits = limits
        self.clock = clock
        self.frameworks = frameworks
        self.rates = RateLimiter({MUTATING: limits.mutating, READ: limits.read})
        self.streams = StreamCounter(limits.max_streams_per_caller)
        self._subscribing = 0  # new frameworks admitted whose Subscribe has not answered yet
        self._settled = asyncio.Event()  # set (and replaced) each time one of those answers
        self._logged: dict[str, float] = {}
        self._wrapped: dict[str, Handler] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        method = handler_call_details.method
        if not method.startswith(SERVICE_PREFIX):
            return await continuation(handler_call_details)
        wrapped = self._wrapped.get(method)
        if wrapped is None:
            handler = await continuation(handler_call_details)
            if handler is None:
                return None
            wrapped = self._wrapped[method] = self._wrap(method, handler)
        return wrapped

    # ------------------------------------------------------------------ checks

    async def _admit(self, method: str, request: Any, context: Ctx) -> str:
        """Check the rate limit and the request's caps; abort the call if over. Returns the
        caller's key."""
        key = caller_of(context).key
        kind = READ if method in READ_METHODS else MUTATING
        wait_s = self.rates.admit(key, kind, self.clock.now())
        if wait_s > 0:
            limit = self.limits.read if kind == READ else self.limits.mutating
            flag = "--rate-limit-read-qps" if kind == READ else "--rate-limit-qps"
            ms = max(1, math.ceil(wait_s * 1000))
            message = (
                f"rate limit: {key} is over {limit.qps:g} {kind} calls/s (burst "
                f"{limit.capacity:g}, {flag}); retry after {ms / 1000:.3f}s"
            )
            self._log(key, message)
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED, message,
                trailing_metadata=((RETRY_AFTER_KEY, str(ms)),),
            )
        if method == ACCEPT:
            await self._check_accept(request, context)
        return key

    async def _check_accept(self, request: Any, context: Ctx) -> None:
        cap = self.limits.max_tasks_per_accept
        tasks = sum(len(op.launch.task_infos) for op in request.operations)
        if tasks > cap:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"operations: at most {cap} tasks per Accept (--max-tasks-per-accept), got "
                f"{tasks}: launch them in several Accepts",
            )

    async def _open_stream(self, key: str, context: Ctx) -> None:
        if not self.streams.open(key):
            cap = self.limits.max_streams_per_caller
            message = (
                f"stream limit: {key} already has {cap} open streams (subscriptions, file "
                "follows, agent links; --max-streams-per-caller): close one first"
            )
            self._log(key, message)
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, message)

    async def _check_new_framework(self, request: Any, context: Ctx) -> bool:
        """Refuse a Subscribe that would register one framework too many; True if it is a
        new framework (counted in `_subscribing` until it answers)."""
        cap, fw = self.limits.max_frameworks, self.frameworks
        if not cap or fw is None:
            return False
        fid = request.framework_info.id
        if fid and fw.known(fid):
            return False  # a re-subscription adds none
        deadline = self.clock.now() + SETTLE_S
        # Near the cap with others in flight: wait for them to register (or fail), so that
        # neither are too many let in nor is one refused that would fit.
        while fw.count() + self._subscribing >= cap and self._subscribing:
            settled = self._settled
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(settled.wait(), max(0.0, deadline - self.clock.now()))
            if self.clock.now() >= deadline:
                break
        if fw.count() + self._subscribing >= cap:
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"framework limit: {cap} frameworks are registered (--max-frameworks); "
                "tear one down or wait for a disconnected one's failover timeout",
            )
        self._subscribing += 1
        return True

    def _subscribed(self) -> None:
        self._subscribing -= 1
        self._settled.set()
        self._settled = asyncio.Event()

    def _log(self, key: str, message: str) -> None:
        now = self.clock.now()
        if now - self._logged.get(key, -math.inf) >= LOG_EVERY_S:
            if len(self._logged) > 10_000:
                self._logged.clear()
            self._logged[key] = now
            logger.warning("refused a call: %s", message)

    # ------------------------------------------------------------------ wrapping

    def _wrap(self, method: str, handler: Handler) -> Handler:
        de, ser = handler.request_deserializer, handler.response_serializer
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                self._wrap_unary(method, handler.unary_unary), de, ser
            )
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                self._wrap_stream(method, handler.unary_stream), de, ser
            )
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(
                self._wrap_unary(method, handler.stream_unary), de, ser
            )
        assert handler.stream_stream is not None  # the one kind left
        return grpc.stream_stream_rpc_method_handler(
            self._wrap_stream(method, handler.stream_stream), de, ser
        )

    def _wrap_unary(self, method: str, behavior: Callable[..., Any]) -> Callable[..., Any]:
        async def unary(request: Any, context: Ctx) -> Any:
            await self._admit(method, request, context)
            return await behavior(request, BoundedDetails(context))

        return unary

    def _wrap_stream(self, method: str, behavior: Callable[..., Any]) -> Callable[..., Any]:
        if not inspect.isasyncgenfunction(behavior):  # it reads and writes the context

            async def through_context(request: Any, context: Ctx) -> Any:
                key = await self._admit(method, request, context)
                await self._open_stream(key, context)
                try:
                    return await behavior(request, BoundedDetails(context))
                finally:
                    self.streams.close(key)

            return through_context

        async def stream(request: Any, context: Ctx) -> Any:
            key = await self._admit(method, request, context)
            await self._open_stream(key, context)
            new = False
            try:
                if method == SUBSCRIBE:
                    new = await self._check_new_framework(request, context)
                async for item in behavior(request, BoundedDetails(context)):
                    if new:  # answered: the framework is in the book (or was refused)
                        self._subscribed()
                        new = False
                    yield item
            finally:
                if new:
                    self._subscribed()
                self.streams.close(key)

        return stream


def cut_details(details: str, limit: int = MAX_DETAILS_BYTES) -> str:
    """`details` if at most `limit` bytes of UTF-8, else its start and how much was cut."""
    data = details.encode("utf-8", "replace")
    if len(data) <= limit:
        return details
    head = data[:limit].decode("utf-8", "ignore")
    return f"{head}... ({len(data) - len(head.encode())} more bytes cut)"


class BoundedDetails:
    """A servicer context whose `abort` sends at most `MAX_DETAILS_BYTES` of message."""

    def __init__(self, context: Ctx) -> None:
        self._context = context

    async def abort(self, code: grpc.StatusCode, details: str = "", *args: Any, **kw: Any) -> Any:
        return await self._context.abort(code, cut_details(details), *args, **kw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)
