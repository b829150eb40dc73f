"""The health servicer follows its predicate: at once on Check, on the clock for Watch."""

from __future__ import annotations

import asyncio
from typing import Any

from grpc_health.v1 import health_pb2

from mesoslite.clock import VirtualClock
from mesoslite.grpc_probes import ProbeHealth

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class Context:
    def __init__(self) -> None:
        self.written: list[int] = []

    async def write(self, reply: Any) -> None:
        self.written.append(reply.status)


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_check_answers_the_predicate_now_for_every_service() -> None:
    leading = [False]
    health = ProbeHealth(["mesoslite.v1.Operator"], lambda: leading[0])
    for name in ("", "mesoslite.v1.Operator"):
        request = health_pb2.HealthCheckRequest(service=name)
        assert (await health.Check(request, None)).status == NOT_SERVING
    leading[0] = True
    request = health_pb2.HealthCheckRequest(service="mesoslite.v1.Operator")
    assert (await health.Check(request, None)).status == SERVING


async def test_watch_sees_a_change_at_the_next_refresh_of_the_clock() -> None:
    clock = VirtualClock()
    leading = [False]
    health = ProbeHealth([], lambda: leading[0])
    health.start(clock, refresh_s=1.0)
    clock.advance(0.0)  # the first refresh
    context = Context()
    watch = asyncio.create_task(health.Watch(health_pb2.HealthCheckRequest(service=""), context))
    await settle()
    assert context.written == [NOT_SERVING]
    leading[0] = True
    clock.advance(0.5)
    await settle()
    assert context.written == [NOT_SERVING]  # not yet refreshed
    clock.advance(0.5)
    await settle()
    assert context.written == [NOT_SERVING, SERVING]
    watch.cancel()
    await health.stop()
    await asyncio.gather(watch, return_exceptions=True)
