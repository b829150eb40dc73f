"""`mesoslite role list|set-weight|set-quota` and `mesoslite framework explain` against a real
master; weights and quota survive a master restart (they are in the registry)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from mesoslite.scheduler_api import (
    Demand,
    FrameworkInfo,
    Offer,
    SchedulerDriver,
    TaskStatus,
    parse_resources,
)
from mesoslite.testing import LocalCluster, assert_eventually_async


def cli(cluster: LocalCluster, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mesoslite.cli", "--master", cluster.master_address, *args],
        capture_output=True, text=True, timeout=60,
    )


class Decliner:
    def __init__(self) -> None:
        self.offers = 0

    async def on_offers(self, driver: SchedulerDriver, offers: list[Offer]) -> None:
        self.offers += len(offers)
        await driver.decline([o.id for o in offers], refuse_seconds=30)

    def on_update(self, driver: SchedulerDriver, status: TaskStatus) -> None:
        pass


def test_weights_and_quota_are_set_listed_and_survive_a_master_restart(tmp_path: Path) -> None:
    with LocalCluster(tmp_path / "cluster", agents=1) as cluster:
        done = cli(cluster, "role", "set-weight", "eng/ml", "2.5")
        assert done.returncode == 0, done.stderr
        done = cli(cluster, "role", "set-quota", "eng", "--guarantee", "cpus:1", "--limit",
                   "cpus:2;mem:512")
        assert done.returncode == 0, done.stderr
        bad = cli(cluster, "role", "set-quota", "eng", "--guarantee", "cpus:3", "--limit",
                  "cpus:2")
        assert bad.returncode == 2 and "guarantee" in bad.stderr
        bad = cli(cluster, "role", "set-weight", "eng", "0")
        assert bad.returncode == 2 and "weight" in bad.stderr
        cluster.restart_master()
        listed = cli(cluster, "role", "list", "--json")
        assert listed.returncode == 0, listed.stderr
        roles = {r["role"]: r for r in json.loads(listed.stdout)}
        assert roles["eng/ml"]["weight"] == 2.5
        assert roles["eng"]["guarantee"] == {"cpus": 1.0}
        assert roles["eng"]["limit"] == {"cpus": 2.0, "mem": 512.0}
        table = cli(cluster, "role", "list")
        assert "eng/ml" in table.stdout and "2.5" in table.stdout


async def test_framework_explain_says_why_it_gets_no_offers(tmp_path: Path) -> None:
    with LocalCluster(tmp_path / "cluster", agents=1) as cluster:
        fw = Decliner()
        info = FrameworkInfo(name="quiet", role="batch")
        async with SchedulerDriver(fw, info, master=cluster.master_address) as driver:
            await assert_eventually_async(lambda: fw.offers > 0, timeout_s=20)
            await driver.request([Demand(parse_resources("cpus:1;mem:64"), 3)])
            fid = driver.framework_id
            out = cli(cluster, "framework", "explain", fid, "--json")
            assert out.returncode == 0, out.stderr
            doc = json.loads(out.stdout)
            assert doc["role"] == "batch" and doc["status"] == "connected"
            assert len(doc["filters"]) == 1  # the agent it declined for 30 s
            assert doc["demands"] == ["3 x cpus:1;mem:64"]
            assert "filtered" in doc["last_reason"]
            text = cli(cluster, "framework", "explain", fid)
            assert "filters" in text.stdout and "left" in text.stdout
        missing = cli(cluster, "framework", "explain", "fw-nope")
        assert missing.returncode == 66, missing.stderr
