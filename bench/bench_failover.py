"""Failover benchmark: SIGKILL the leading master and time the recovery (issue #5).

    .venv/bin/python bench/bench_failover.py [--timeouts 2,10] [--runs 3]

For each ZooKeeper session timeout: a real ZooKeeper, 3 masters (`--zk`), 2 agents
(`--master zk://...`) and a framework (SDK driver with `master=zk://...`) that is receiving
offers, all with their default options (with zk://, retries are at most 0.5 s apart). The leader
is SIGKILLed; from that instant we measure:
  (a) a new leader elected (its `master.json` says leading; polled every 10 ms);
  (b) all agents re-registered with it (GetAgents on the new leader; polled every 20 ms);
  (c) the framework re-subscribed and receiving offers (its first offer after SUBSCRIBED).
Floor: (c) within the session timeout plus 2 s. Prints a Markdown block for RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

import grpc

from mesoslite._proto.v1 import operator_pb2, operator_pb2_grpc
from mesoslite.scheduler_api import (
    FrameworkId,
    FrameworkInfo,
    MasterInfo,
    Offer,
    SchedulerDriver,
)
from mesoslite.testing.ha_cluster import HACluster
from mesoslite.testing.zookeeper import ZooKeeperCluster


class Watcher:
    """Declines every offer (short filters) and notes when offers come after a subscription."""

    def __init__(self) -> None:
        self.subscribed_at: list[float] = []
        self.first_offer_after: dict[int, float] = {}

    def on_subscribed(self, driver: SchedulerDriver, fid: FrameworkId, m: MasterInfo) -> None:
        self.subscribed_at.append(time.monotonic())

    async def on_offers(self, driver: SchedulerDriver, offers: list[Offer]) -> None:
        n = len(self.subscribed_at)
        self.first_offer_after.setdefault(n, time.monotonic())
        for o in offers:
            await driver.decline([o.id], refuse_seconds=0.05)


def active_agents(address: str) -> int:
    try:
        with grpc.insecure_channel(address) as ch:
            reply = operator_pb2_grpc.OperatorStub(ch).GetAgents(
                operator_pb2.GetAgentsRequest(), timeout=1
            )
    except grpc.RpcError:
        return -1
    return sum(a.status == "active" for a in reply.agents)


async def one_run(zk: ZooKeeperCluster, work: Path, session_s: float) -> tuple[float, ...]:
    url = zk.chroot_url()
    ha = HACluster(work, url, masters=3, agents=2, session_timeout_s=session_s)
    with ha:
        old = ha.wait_for_leader()
        watcher = Watcher()
        info = FrameworkInfo(name="bench-failover", failover_timeout_s=120)
        async with SchedulerDriver(watcher, info, master=url):
            while 1 not in watcher.first_offer_after:
                await asyncio.sleep(0.01)
            t0 = time.monotonic()
            ha.kill_master(old, signal.SIGKILL)
            new = None
            while new is None:
                i = ha.leader_index()
                new = i if i is not None and i != old else None
                await asyncio.sleep(0.01)
            ta = time.monotonic() - t0
            while await asyncio.to_thread(active_agents, ha.addresses[new]) < 2:
                await asyncio.sleep(0.02)
            tb = time.monotonic() - t0
            while 2 not in watcher.first_offer_after:
                await asyncio.sleep(0.01)
            tc = watcher.first_offer_after[2] - t0
    return ta, tb, tc


async def main_async(timeouts: list[float], runs: int) -> str:
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-failover-") as tmp:
        with ZooKeeperCluster(Path(tmp) / "zk") as zk:
            for s in timeouts:
                results = []
                for r in range(runs):
                    res = await one_run(zk, Path(tmp) / f"s{s:g}-r{r}", s)
                    print(f"session {s:g}s run {r}: a={res[0]:.2f}s b={res[1]:.2f}s "
                          f"c={res[2]:.2f}s", file=sys.stderr)
                    results.append(res)
                cols = list(zip(*results, strict=True))
                med = [statistics.median(c) for c in cols]
                worst = [max(c) for c in cols]
                ok = "yes" if worst[2] <= s + 2 else "NO"
                rows.append(
                    f"| {s:g} s | {med[0]:.2f} / {worst[0]:.2f} | {med[1]:.2f} / {worst[1]:.2f} "
                    f"| {med[2]:.2f} / {worst[2]:.2f} | {s + 2:g} s | {ok} |"
                )
    header = (
        f"Machine: {platform.machine()}, {platform.processor() or 'cpu'}, "
        f"Python {platform.python_version()}; {runs} runs per timeout; median / worst.\n\n"
        "| session timeout | (a) leader elected, s | (b) agents re-registered, s "
        "| (c) framework re-subscribed and offered, s | floor for (c) | within |\n"
        "| --- | --- | --- | --- | --- | --- |\n"
    )
    return header + "\n".join(rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--timeouts", default="2,10", help="session timeouts in seconds")
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args()
    timeouts = [float(t) for t in args.timeouts.split(",")]
    print(asyncio.run(main_async(timeouts, args.runs)))


if __name__ == "__main__":
    main()
