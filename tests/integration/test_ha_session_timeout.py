"""The session timeout ZooKeeper grants, not the one asked for, is what decides a failover
(issue 15): the contender learns it, logs it (warning when it differs), and times its own
step-down by it. Real ZooKeeper (its `minSessionTimeout` is 2 ticks)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from mesoslite.discovery import parse_zk_url
from mesoslite.master.election.base import Change
from mesoslite.master.election.zookeeper import ZooKeeperContender
from mesoslite.testing import assert_eventually_async
from mesoslite.testing.zookeeper import ZooKeeperCluster


async def granted(
    zookeeper: ZooKeeperCluster, asked_s: float
) -> tuple[ZooKeeperContender, float]:
    url = parse_zk_url(zookeeper.chroot_url())
    c = ZooKeeperContender(url, {"address": "127.0.0.1:1"}, session_timeout_s=asked_s)
    await c.start()
    await assert_eventually_async(lambda: c.granted_session_timeout_s > 0, timeout_s=10)
    return c, c.granted_session_timeout_s


async def test_the_granted_session_timeout_is_learned_and_logged(
    zookeeper: ZooKeeperCluster, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="mesoslite.master.election.zookeeper")
    c, got = await granted(zookeeper, 2.0)
    try:
        assert got == 2.0
        assert "ZooKeeper granted session_timeout_s=2" in caplog.text
        assert (await c.next_change()).change == Change.ELECTED
    finally:
        await c.close()


async def test_a_timeout_below_zookeepers_minimum_is_raised_and_warned_about(
    zookeeper: ZooKeeperCluster, caplog: pytest.LogCaptureFixture,
) -> None:
    minimum_s = 2 * zookeeper.tick_ms / 1000.0
    c, got = await granted(zookeeper, minimum_s / 2)
    try:
        assert got == minimum_s
        assert f"granted a session timeout of {minimum_s:g}s, not the {minimum_s / 2:g}s" \
            in caplog.text
        # Its own step-down (SUSPENDED -> DEPOSED) is timed by the granted timeout.
        assert (await c.next_change()).change == Change.ELECTED
        c._on_state("SUSPENDED")  # noqa: SLF001 (as kazoo's listener would, on the loop)
        assert (await c.next_change()).change == Change.SUSPENDED
        timer = c._suspend_timer  # noqa: SLF001
        assert timer is not None
        left = timer.when() - asyncio.get_running_loop().time()
        assert minimum_s / 2 < left <= minimum_s
    finally:
        await c.close()
