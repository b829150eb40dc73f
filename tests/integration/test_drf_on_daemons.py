"""Issue #4 acceptance through real daemons: the DRF paper's example on one agent with
9 cpus and 18 GB, two SDK frameworks declaring demands (REQUEST) settle at A = 3, B = 2."""

from __future__ import annotations

import asyncio
from pathlib import Path

from mesoslite.scheduler_api import (
    Demand,
    FrameworkInfo,
    SchedulerDriver,
)
from mesoslite.testing import LocalCluster, assert_eventually_async

from .frameworks import DemandingFramework, OfferRecorder, Reserver


async def test_drf_paper_example_settles_at_three_a_tasks_and_two_b_tasks(tmp_path: Path) -> None:
    with LocalCluster(
        tmp_path / "cluster", agents=1, agent_resources="cpus:9;mem:18432"
    ) as cluster:
        go = asyncio.Event()
        a = DemandingFramework("a", "cpus:1;mem:4096", go)
        b = DemandingFramework("b", "cpus:3;mem:1024", go)
        master = cluster.master_address
        async with (
            SchedulerDriver(a, FrameworkInfo(name="A", role="alpha"), master=master) as da,
            SchedulerDriver(b, FrameworkInfo(name="B", role="beta"), master=master) as db,
        ):
            await assert_eventually_async(lambda: da.connected and db.connected, timeout_s=20)
            await da.request([Demand(a.shape, 100)])
            await db.request([Demand(b.shape, 100)])
            go.set()
            await da.revive()
            await db.revive()
            await assert_eventually_async(
                lambda: a.running() == 3 and b.running() == 2, timeout_s=30
            )
            # Settled: A holds 3 cpus and 12 GB (2/3 of memory), B 6 cpus and 2 GB (2/3 of
            # cpus); what is left (4 GB, no cpus) fits neither, so nothing more is launched.
            await asyncio.sleep(1.5)
            assert (a.launched, b.launched) == (3, 2)


async def test_an_agents_static_reservation_is_offered_only_to_its_role(tmp_path: Path) -> None:
    with LocalCluster(
        tmp_path / "cluster", agents=1,
        agent_resources="cpus(ml):3;mem(ml):3072;cpus:1;mem:1024;disk:100",
    ) as cluster:
        web, ml = OfferRecorder(), OfferRecorder()
        master = cluster.master_address
        async with (
            SchedulerDriver(web, FrameworkInfo(name="web", role="web"), master=master),
            SchedulerDriver(ml, FrameworkInfo(name="ml", role="ml"), master=master),
        ):
            await assert_eventually_async(lambda: web.offers and ml.offers, timeout_s=20)
            await asyncio.sleep(1.0)
        assert all(o.resources.scalar("cpus") <= 1 for o in web.offers)
        assert any(o.resources.scalar("cpus") >= 3 for o in ml.offers)


async def test_a_dynamic_reservation_is_offered_only_to_its_role_even_after_a_restart(
    tmp_path: Path,
) -> None:
    with LocalCluster(
        tmp_path / "cluster", agents=1, agent_resources="cpus:4;mem:1024;disk:100"
    ) as cluster:
        ml = Reserver()
        master = cluster.master_address
        async with SchedulerDriver(ml, FrameworkInfo(name="ml", role="ml"), master=master):
            await assert_eventually_async(lambda: ml.reserved, timeout_s=20)
        cluster.restart_master()
        web = OfferRecorder()
        async with SchedulerDriver(web, FrameworkInfo(name="web", role="web"), master=master):
            await assert_eventually_async(lambda: web.offers, timeout_s=30)
            await asyncio.sleep(1.0)
        assert web.offers and all(o.resources.scalar("cpus") <= 1 for o in web.offers)
