"""The SDK fails loudly (#17): a callback that raises stops the driver and `run()` raises it
(or, by choice, is logged and the driver goes on), and the first connection has a deadline.
Real master and agents (`cluster`), real gRPC; the connection tests use loopback ports that
nobody serves."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest

from mesoslite.scheduler_api import (
    FrameworkId,
    FrameworkInfo,
    Offer,
    SchedulerDriver,
    TaskState,
    TaskStatus,
    UnavailableError,
)
from mesoslite.testing import LocalCluster, assert_eventually, assert_eventually_async

from .frameworks import OneTask, UpdateRecorder


class Boom:
    """Its `on_offers` raises, every time."""

    def __init__(self) -> None:
        self.calls = 0

    def on_offers(self, driver: SchedulerDriver, offers: list[Offer]) -> None:
        self.calls += 1
        raise RuntimeError("no plan for these offers")


class BoomOnce(OneTask):
    """Declines and raises on its first offers; then launches one task and stops when it
    has ended."""

    def __init__(self) -> None:
        super().__init__("true")
        self.raised = False

    async def on_offers(self, driver: SchedulerDriver, offers: list[Offer]) -> None:
        if not self.raised:
            self.raised = True
            await driver.decline([o.id for o in offers], refuse_seconds=0)
            raise RuntimeError("the first offers are not to my taste")
        await super().on_offers(driver, offers)

    async def on_update(self, driver: SchedulerDriver, status: TaskStatus) -> None:
        super().on_update(driver, status)
        if status.state.terminal:
            await driver.stop()


def frameworks_named(cluster: LocalCluster, name: str) -> list[str]:
    with cluster.client() as client:
        return [f.status for f in client.frameworks() if f.name == name]


def test_an_exception_in_on_offers_stops_the_driver_and_run_raises_it(
    cluster: LocalCluster,
) -> None:
    framework = Boom()
    driver = SchedulerDriver(framework, FrameworkInfo(name="boom"), master=cluster.master_address)
    started = time.monotonic()
    with pytest.raises(RuntimeError, match="no plan for these offers") as info:
        driver.run()  # before #17: logged, and run() never returned
    assert time.monotonic() - started < 30
    assert "raised by the scheduler callback on_offers" in "".join(info.value.__notes__)
    assert framework.calls == 1  # stopped at the first one
    # Stopped as if the process had died: its stream closed, the master (failover timeout 0)
    # removed it.
    assert_eventually(lambda: "connected" not in frameworks_named(cluster, "boom"), timeout_s=10)


def test_with_on_callback_error_log_a_callback_error_is_logged_and_the_driver_goes_on(
    cluster: LocalCluster, caplog: pytest.LogCaptureFixture
) -> None:
    framework = BoomOnce()
    driver = SchedulerDriver(
        framework,
        FrameworkInfo(name="boom-once"),
        master=cluster.master_address,
        on_callback_error="log",
    )
    with caplog.at_level(logging.ERROR, logger="mesoslite.scheduler_api"):
        driver.run()  # returns: the task ran after the error, and on_update stopped it
    state = framework.state()
    assert framework.raised and state is not None and state.terminal
    failed = [r for r in caplog.records if "scheduler callback on_offers failed" in r.message]
    assert len(failed) == 1 and failed[0].exc_info is not None


@pytest.fixture
def dead_port() -> Iterator[int]:
    """A loopback port nothing listens on (bound, so nobody else takes it meanwhile)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


def test_run_gives_up_on_a_port_nothing_listens_on_naming_the_address(dead_port: int) -> None:
    address = f"127.0.0.1:{dead_port}"
    driver = SchedulerDriver(Boom(), FrameworkInfo(name="t"), master=address, connect_timeout_s=0.3)
    started = time.monotonic()
    with pytest.raises(UnavailableError) as info:
        driver.run()
    assert time.monotonic() - started < 5
    message = str(info.value)
    assert f"cannot reach the master at {address} within connect_timeout_s=0.3" in message
    assert "check the address" in message and "connect_timeout_s=None retries forever" in message


async def test_the_deadline_holds_for_a_framework_that_gives_its_id(dead_port: int) -> None:
    # Before #17 the deadline applied only while the framework had no id.
    info = FrameworkInfo(name="t", id=FrameworkId("fw-resubscribing"), failover_timeout_s=60)
    driver = SchedulerDriver(Boom(), info, master=f"127.0.0.1:{dead_port}", connect_timeout_s=0.3)
    await driver.start()
    try:
        with pytest.raises(UnavailableError, match="cannot reach the master"):
            await asyncio.wait_for(driver.join(), 5)
    finally:
        await driver.stop()


async def test_the_deadline_holds_when_the_master_accepts_tcp_but_never_answers() -> None:
    # A listening socket that never accepts: TCP connects, gRPC's handshake hangs. Before
    # #17 the deadline was only checked after an attempt failed (gRPC's own ~20 s).
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        address = f"127.0.0.1:{silent.getsockname()[1]}"
        driver = SchedulerDriver(
            Boom(), FrameworkInfo(name="t"), master=address, connect_timeout_s=0.5
        )
        await driver.start()
        try:
            with pytest.raises(UnavailableError, match=f"at {address} within"):
                await asyncio.wait_for(driver.join(), 5)
        finally:
            await driver.stop()


async def test_connect_timeout_none_keeps_retrying_past_a_short_deadline(dead_port: int) -> None:
    driver = SchedulerDriver(
        Boom(),
        FrameworkInfo(name="t"),
        master=f"127.0.0.1:{dead_port}",
        connect_timeout_s=None,
        reconnect_backoff_max_s=0.1,
    )
    await driver.start()
    try:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(asyncio.shield(driver.join()), 1.0)
    finally:
        await driver.stop()


class BoomOnRunning(OneTask):
    """Launches `sleep 30`; its `on_update` raises at TASK_RUNNING."""

    def __init__(self) -> None:
        super().__init__("sleep 30")

    def on_update(self, driver: SchedulerDriver, status: TaskStatus) -> None:
        super().on_update(driver, status)
        if status.state == TaskState.RUNNING:
            raise ValueError("cannot record that the task runs")


async def test_an_update_whose_callback_raised_is_not_acknowledged_and_comes_again(
    cluster: LocalCluster,
) -> None:
    first = BoomOnRunning()
    info = FrameworkInfo(name="boom-running", failover_timeout_s=60)
    driver = SchedulerDriver(first, info, master=cluster.master_address)
    await driver.start()
    try:
        with pytest.raises(ValueError, match="cannot record"):
            await asyncio.wait_for(driver.join(), 30)
    finally:
        await driver.stop()  # no TEARDOWN: it stopped on an error, the task keeps running
    (running,) = [s for s in first.updates if s.state == TaskState.RUNNING]
    # A successor with the framework's id gets the same update (same uuid) again.
    second = UpdateRecorder()
    again = replace(info, id=driver.framework_id)
    async with SchedulerDriver(second, again, master=cluster.master_address):
        await assert_eventually_async(
            lambda: any(s.uuid == running.uuid for s in second.updates), timeout_s=20
        )
    # (leaving the block tore the framework down and killed the task)


class StaleOfferOnce(OneTask):
    """Declines its first offers, then accepts one of them anyway (gone: UnknownOfferError
    from the master, not caught here), as a scheduler does when an offer is rescinded or
    its master fails over between the offer and the accept; later it runs one task."""

    def __init__(self) -> None:
        super().__init__("true")
        self.stale_tried = False

    async def on_offers(self, driver: SchedulerDriver, offers: list[Offer]) -> None:
        if not self.stale_tried:
            self.stale_tried = True
            await driver.decline([o.id for o in offers], refuse_seconds=0)
            await driver.accept([offers[0].id], [self.task])
        await super().on_offers(driver, offers)

    async def on_update(self, driver: SchedulerDriver, status: TaskStatus) -> None:
        super().on_update(driver, status)
        if status.state.terminal:
            await driver.stop()


def test_a_gone_offer_in_a_callback_does_not_stop_the_driver_under_the_raise_policy(
    cluster: LocalCluster, caplog: pytest.LogCaptureFixture
) -> None:
    framework = StaleOfferOnce()
    driver = SchedulerDriver(framework, FrameworkInfo(name="stale"), master=cluster.master_address)
    with caplog.at_level(logging.WARNING, logger="mesoslite.scheduler_api"):
        driver.run()  # returns: the driver went on, the task ran, on_update stopped it
    state = framework.state()
    assert framework.stale_tried and state is not None and state.terminal
    assert any("on_offers raised" in r.message for r in caplog.records), caplog.text
