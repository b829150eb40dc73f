"""The SDK driver against a real master process: subscribe, refusals, re-subscription."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mesoslite.errors import NotFoundError, ValidationError
from mesoslite.scheduler_api import FrameworkId, FrameworkInfo, OfferId, SchedulerDriver


class MasterProcess:
    """One `mesoslite-master` on loopback; `restart()` keeps its port and work dir."""

    def __init__(self, work_dir: Path) -> None:
        self.work_dir = work_dir
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.address = ""

    def start(self) -> None:
        info = self.work_dir / "master.json"
        info.unlink(missing_ok=True)
        log = open(self.work_dir / "master.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mesoslite.master.main", "--port", str(self.port),
             "--work-dir", str(self.work_dir), "--framework-heartbeat-interval-s", "0.5"],
            stdout=log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 15
        while not info.exists():
            assert self.proc.poll() is None, (self.work_dir / "master.log").read_text()
            assert time.monotonic() < deadline, "master did not start"
            time.sleep(0.02)
        self.address = json.loads(info.read_text())["address"]
        self.port = int(self.address.rsplit(":", 1)[1])

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def master(tmp_path: Path) -> Iterator[MasterProcess]:
    m = MasterProcess(tmp_path)
    m.start()
    try:
        yield m
    finally:
        m.stop(signal.SIGKILL)


class Recorder:
    def __init__(self) -> None:
        self.subscribed: list[FrameworkId] = []
        self.disconnects = 0
        self.errors: list[str] = []

    def on_subscribed(self, driver: SchedulerDriver, fid: FrameworkId, master: object) -> None:
        self.subscribed.append(fid)

    def on_disconnected(self, driver: SchedulerDriver) -> None:
        self.disconnects += 1

    def on_error(self, driver: SchedulerDriver, message: str) -> None:
        self.errors.append(message)


async def wait_for(pred: object, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not pred():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_driver_subscribes_and_calls_map_refusals_to_errors(master: MasterProcess) -> None:
    rec = Recorder()
    async with SchedulerDriver(rec, FrameworkInfo(name="t"), master=master.address) as driver:
        fid = await driver.wait_subscribed(10)
        assert fid.startswith("fw-") and rec.subscribed == [fid]
        await driver.suppress()
        await driver.revive()
        with pytest.raises(NotFoundError, match="not outstanding"):
            await driver.decline([OfferId("of-nope")])
        with pytest.raises(ValidationError, match="refuse_seconds"):
            await driver.decline([OfferId("of-nope")], refuse_seconds=float("nan"))


async def test_unknown_framework_id_stops_the_driver_with_the_reason(master: MasterProcess) -> None:
    rec = Recorder()
    info = FrameworkInfo(name="t", id=FrameworkId("fw-doesnotexist"))
    driver = SchedulerDriver(rec, info, master=master.address)
    await driver.start()
    with pytest.raises(NotFoundError, match="fw-doesnotexist"):
        await asyncio.wait_for(driver.join(), 10)
    assert rec.errors and "not known" in rec.errors[0]
    await driver.stop()


async def test_unreachable_master_fails_after_connect_timeout(tmp_path: Path) -> None:
    driver = SchedulerDriver(
        Recorder(), FrameworkInfo(name="t"), master="127.0.0.1:1", connect_timeout_s=0.5
    )
    await driver.start()
    with pytest.raises(Exception, match="cannot reach the master"):
        await asyncio.wait_for(driver.join(), 10)
    await driver.stop()


async def test_driver_resubscribes_with_its_id_after_a_master_restart(
    master: MasterProcess,
) -> None:
    rec = Recorder()
    info = FrameworkInfo(name="t", failover_timeout_s=60)
    async with SchedulerDriver(rec, info, master=master.address) as driver:
        fid = await driver.wait_subscribed(10)
        master.stop(signal.SIGKILL)
        await wait_for(lambda: rec.disconnects == 1)
        master.start()
        await wait_for(lambda: len(rec.subscribed) == 2, timeout_s=20)
        assert rec.subscribed == [fid, fid]
        assert driver.connected


async def test_a_silent_master_is_noticed_by_missed_heartbeats_and_resubscribed(
    master: MasterProcess,
) -> None:
    # Regression: the watchdog's cancel used to end the driver instead of re-subscribing.
    rec = Recorder()
    info = FrameworkInfo(name="t", failover_timeout_s=60)
    async with SchedulerDriver(rec, info, master=master.address) as driver:
        fid = await driver.wait_subscribed(10)
        assert master.proc is not None
        os.kill(master.proc.pid, signal.SIGSTOP)
        try:
            # Heartbeats every 0.5 s: silence for 3 of them + 1 s means the master is gone.
            await wait_for(lambda: rec.disconnects == 1, timeout_s=10)
            assert not driver.connected
        finally:
            os.kill(master.proc.pid, signal.SIGCONT)
        await wait_for(lambda: len(rec.subscribed) == 2, timeout_s=20)
        assert rec.subscribed == [fid, fid] and driver.connected


async def test_a_slow_callback_is_not_mistaken_for_a_silent_master(master: MasterProcess) -> None:
    rec = Recorder()

    async def slow(driver: SchedulerDriver, fid: FrameworkId, m: object) -> None:
        rec.subscribed.append(fid)
        await asyncio.sleep(4)  # longer than 3 heartbeats (0.5 s) + 1 s

    rec.on_subscribed = slow  # type: ignore[method-assign,assignment]
    async with SchedulerDriver(rec, FrameworkInfo(name="t"), master=master.address) as driver:
        await wait_for(lambda: rec.subscribed, timeout_s=10)
        await asyncio.sleep(5)
        assert rec.disconnects == 0 and len(rec.subscribed) == 1 and driver.connected
        # The master still has the framework on its first stream.
        from mesoslite.cli._client import BlockingOperatorClient

        with BlockingOperatorClient(master.address) as client:
            (fw,) = [f for f in client.frameworks() if f.name != "mesoslite-jobs"]
        assert (fw.id, fw.status) == (driver.framework_id, "connected")
