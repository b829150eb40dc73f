"""`LeaderGuard` on a real gRPC server (loopback): a call that reaches a master elected but
still recovering waits until it leads and is served; a standby refuses at once (#15)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest

from mesoslite.master.leadership import LeaderGuard, Leadership
from mesoslite.testing import assert_eventually_async


class SeenEvent(asyncio.Event):
    """An event that notes when somebody starts waiting on it."""

    waited = False

    async def wait(self) -> bool:  # type: ignore[override]
        self.waited = True
        return await super().wait()


def _echo(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
    return b"ok:" + request


@pytest.fixture
async def served() -> AsyncIterator[tuple[Leadership, grpc.aio.Channel]]:
    leadership = Leadership("master-test", address="127.0.0.1:1")
    server = grpc.aio.server(interceptors=[LeaderGuard(leadership)])
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
        "t.Echo", {"Echo": grpc.unary_unary_rpc_method_handler(_echo)}
    ),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield leadership, channel
    finally:
        await channel.close()
        await server.stop(None)


async def test_a_call_to_a_recovering_master_waits_and_is_served_once_it_leads(
    served: tuple[Leadership, grpc.aio.Channel],
) -> None:
    leadership, channel = served
    recovering = SeenEvent()
    leadership.recovering = recovering
    call = asyncio.ensure_future(channel.unary_unary("/t.Echo/Echo")(b"x", timeout=10))
    await assert_eventually_async(lambda: recovering.waited, timeout_s=5)
    assert not call.done()
    leadership.leading = True
    recovering.set()
    assert await call == b"ok:x"


async def test_a_standby_that_is_not_elected_refuses_at_once(
    served: tuple[Leadership, grpc.aio.Channel],
) -> None:
    _, channel = served
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await channel.unary_unary("/t.Echo/Echo")(b"x", timeout=10)
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "not leading (master-test: not elected yet)" in (e.value.details() or "")
