"""Per-caller limits on a real master (issue 14): rate limits with retry-after, and the caps
on frameworks, tasks per Accept and open streams. Two callers are told apart by their peer
host: the master listens on `localhost` (127.0.0.1 and ::1) and A calls over IPv4, B over
IPv6. Every refusal is a clear status naming the limit, and changes nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from mesoslite._proto.v1 import (
    common_pb2,
    operator_pb2,
    operator_pb2_grpc,
    scheduler_pb2,
    scheduler_pb2_grpc,
)
from mesoslite.cli._client import BlockingOperatorClient
from mesoslite.security.retry_after import RETRY_AFTER_KEY
from mesoslite.testing import LocalCluster
from mesoslite.transport import open_channel

RATE_FLAGS = [
    "--rate-limit-qps", "4", "--rate-limit-burst", "4",
    "--rate-limit-read-qps", "5", "--rate-limit-read-burst", "5",
]
CAP_FLAGS = ["--max-tasks-per-accept", "2", "--max-streams-per-caller", "2"]
EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED


def _cluster(tmp_path: Path, flags: list[str]) -> LocalCluster:
    return LocalCluster(tmp_path / "c", agents=0, host="localhost", master_args=flags)


@pytest.fixture
def rated(tmp_path: Path) -> Iterator[LocalCluster]:
    with _cluster(tmp_path, RATE_FLAGS) as c:
        yield c


@pytest.fixture
def capped(tmp_path: Path) -> Iterator[LocalCluster]:
    with _cluster(tmp_path, CAP_FLAGS) as c:
        yield c


def _port(cluster: LocalCluster) -> str:
    return cluster.master_address.rsplit(":", 1)[1]


@pytest.fixture
async def callers(request: Any) -> AsyncIterator[tuple[Any, Any]]:
    """Channels of caller A (IPv4) and caller B (IPv6) to the test's cluster."""
    cluster = request.getfixturevalue(request.param)
    port = _port(cluster)
    a, b = open_channel(f"127.0.0.1:{port}"), open_channel(f"[::1]:{port}")
    try:
        yield a, b
    finally:
        await a.close()
        await b.close()


async def _get_roles(channel: Any) -> Any:
    return await operator_pb2_grpc.OperatorStub(channel).GetRoles(
        operator_pb2.GetRolesRequest(), timeout=5
    )


async def _weight(channel: Any, role: str) -> float:
    roles = (await _get_roles(channel)).roles
    return next((r.weight for r in roles if r.role == role), 1.0)


@pytest.mark.parametrize("callers", ["rated"], indirect=True)
async def test_a_flood_from_one_caller_is_limited_without_starving_another(
    callers: tuple[Any, Any],
) -> None:
    a, b = callers
    refused: list[grpc.aio.AioRpcError] = []
    for _ in range(40):
        try:
            await _get_roles(a)
        except grpc.aio.AioRpcError as e:
            refused.append(e)
    assert len(refused) >= 30, "a flood of reads was not limited"
    e = refused[-1]
    assert e.code() == EXHAUSTED
    assert "rate limit" in e.details() and "--rate-limit-read-qps" in e.details()
    assert "retry after" in e.details()
    ms = float(dict(e.trailing_metadata() or ())[RETRY_AFTER_KEY])
    assert 0 < ms <= 1000 / 5 + 1
    # B, another host, is served at once, every call of its burst.
    for _ in range(5):
        await _get_roles(b)


@pytest.mark.parametrize("callers", ["rated"], indirect=True)
async def test_a_rate_limited_mutating_call_changes_nothing(callers: tuple[Any, Any]) -> None:
    a, b = callers
    stub = operator_pb2_grpc.OperatorStub(a)
    applied = []
    for weight in range(1, 21):
        try:
            await stub.SetRoleWeight(
                operator_pb2.SetRoleWeightRequest(role="eng", weight=weight), timeout=5
            )
            applied.append(weight)
        except grpc.aio.AioRpcError as e:
            assert e.code() == EXHAUSTED and "--rate-limit-qps" in e.details()
    assert len(applied) < 20
    # Reads are a bucket of their own: B reads the weight the last admitted call set.
    assert await _weight(b, "eng") == applied[-1]


def test_the_cli_client_waits_out_the_retry_after_and_succeeds(rated: LocalCluster) -> None:
    with BlockingOperatorClient(f"127.0.0.1:{_port(rated)}", timeout_s=5) as c:
        for _ in range(15):  # three times the read burst: served, at the limit's pace
            c.roles()


@pytest.mark.parametrize("callers", ["capped"], indirect=True)
async def test_an_accept_over_max_tasks_per_accept_is_refused_naming_the_flag(
    callers: tuple[Any, Any],
) -> None:
    a, _ = callers
    launch = scheduler_pb2.Operation(
        type=scheduler_pb2.Operation.LAUNCH,
        launch=scheduler_pb2.Operation.Launch(
            task_infos=[common_pb2.TaskInfo(task_id=f"t{i}") for i in range(3)]
        ),
    )
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await scheduler_pb2_grpc.SchedulerStub(a).Accept(
            scheduler_pb2.AcceptRequest(framework_id="fw-x", operations=[launch]), timeout=5
        )
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "at most 2 tasks per Accept (--max-tasks-per-accept), got 3" in info.value.details()


def _subscribe(channel: Any, name: str, fid: str = "") -> Any:
    info = common_pb2.FrameworkInfo(id=fid, name=name, failover_timeout_s=0)
    return scheduler_pb2_grpc.SchedulerStub(channel).Subscribe(
        scheduler_pb2.SubscribeRequest(framework_info=info), timeout=20
    )


async def _subscribed(call: Any) -> str:
    event = await call.read()
    assert event.type == scheduler_pb2.Event.SUBSCRIBED
    return str(event.subscribed.framework_id)


@pytest.mark.parametrize("callers", ["capped"], indirect=True)
async def test_streams_per_caller_are_capped_and_freed_when_one_closes(
    callers: tuple[Any, Any],
) -> None:
    a, b = callers
    first, second = _subscribe(a, "a1"), _subscribe(a, "a2")
    await _subscribed(first)
    await _subscribed(second)
    third = _subscribe(a, "a3")
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await third.read()
    assert info.value.code() == EXHAUSTED
    assert "2 open streams" in info.value.details()
    assert "--max-streams-per-caller" in info.value.details()
    # Another caller is not held to A's count.
    other = _subscribe(b, "b1")
    await _subscribed(other)
    first.cancel()
    for _ in range(50):  # the master sees the cancel a moment later
        again = _subscribe(a, "a4")
        try:
            await _subscribed(again)
            break
        except grpc.aio.AioRpcError as e:
            assert e.code() == EXHAUSTED
    else:
        pytest.fail("a closed stream was not freed")
    for call in (second, other, again):
        call.cancel()


async def test_frameworks_over_max_frameworks_are_refused_and_change_nothing(
    tmp_path: Path,
) -> None:
    with _cluster(tmp_path, ["--max-frameworks", "2", "--no-jobs"]) as cluster:
        channel = open_channel(f"127.0.0.1:{_port(cluster)}")
        calls = []
        try:
            calls = [_subscribe(channel, "f1"), _subscribe(channel, "f2")]
            fids = [await _subscribed(c) for c in calls]
            with cluster.client() as c:
                before = sorted(f.id for f in c.frameworks(include_completed=True))
            calls.append(_subscribe(channel, "f3"))
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await calls[-1].read()
            assert info.value.code() == EXHAUSTED
            assert "2 frameworks are registered (--max-frameworks)" in info.value.details()
            with cluster.client() as c:
                assert sorted(f.id for f in c.frameworks(include_completed=True)) == before
            # A re-subscription (same id) adds no framework: it is let in.
            calls.append(_subscribe(channel, "f1", fids[0]))
            assert await _subscribed(calls[-1]) == fids[0]
        finally:
            for call in calls:
                call.cancel()
            await channel.close()


async def test_the_sdk_driver_waits_out_the_retry_after_and_its_calls_succeed(
    rated: LocalCluster,
) -> None:
    from mesoslite.scheduler_api import FrameworkInfo, SchedulerDriver

    driver = SchedulerDriver(
        object(), FrameworkInfo(name="paced"), master=f"127.0.0.1:{_port(rated)}"
    )
    await driver.start()
    try:
        await driver.wait_subscribed(10)
        for _ in range(12):  # three times the mutating burst: each call waits its turn
            await driver.revive()
    finally:
        await driver.stop()


async def test_the_sdk_driver_subscribes_after_waiting_out_a_rate_limited_subscribe(
    tmp_path: Path,
) -> None:
    from mesoslite.scheduler_api import FrameworkInfo, SchedulerDriver

    # One call per 4 s: the driver's Subscribe comes while the bucket is empty. (The driver
    # already took RESOURCE_EXHAUSTED on Subscribe as transient: this guards that it stays so.)
    flags = ["--rate-limit-qps", "0.25", "--rate-limit-burst", "1"]
    with _cluster(tmp_path, flags) as cluster:
        address = f"127.0.0.1:{_port(cluster)}"
        channel = open_channel(address)
        try:
            await operator_pb2_grpc.OperatorStub(channel).SetRoleWeight(
                operator_pb2.SetRoleWeightRequest(role="eng", weight=2), timeout=5
            )
        finally:
            await channel.close()
        driver = SchedulerDriver(object(), FrameworkInfo(name="late"), master=address)
        await driver.start()
        try:
            await driver.wait_subscribed(15)
        finally:
            await driver.stop()
