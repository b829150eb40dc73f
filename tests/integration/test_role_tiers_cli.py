"""`mesoslite role set-priority` against a real master (#16): validated, listed (table and
--json), and kept in the registry across a master restart."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from mesoslite.testing import LocalCluster


def cli(cluster: LocalCluster, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mesoslite.cli", "--master", cluster.master_address, *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_priorities_are_set_listed_and_survive_a_master_restart(tmp_path: Path) -> None:
    with LocalCluster(tmp_path / "cluster", agents=1) as cluster:
        done = cli(cluster, "role", "set-priority", "urgent", "10")
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "role urgent priority 10"
        done = cli(cluster, "role", "set-priority", "batch", "-5", "--preemptible")
        assert done.returncode == 0, done.stderr
        bad = cli(cluster, "role", "set-priority", "batch", "5000")
        assert bad.returncode == 2 and "PRIORITY" in bad.stderr and "5000" in bad.stderr
        bad = cli(cluster, "role", "set-priority", "Not A Role", "1")
        assert bad.returncode == 2 and "role" in bad.stderr
        cluster.restart_master()
        listed = cli(cluster, "role", "list", "--json")
        assert listed.returncode == 0, listed.stderr
        roles = {r["role"]: r for r in json.loads(listed.stdout)}
        assert (roles["urgent"]["priority"], roles["urgent"]["preemptible"]) == (10, False)
        assert (roles["batch"]["priority"], roles["batch"]["preemptible"]) == (-5, True)
        # Priority alone keeps preemptibility.
        assert cli(cluster, "role", "set-priority", "batch", "-4").returncode == 0
        table = cli(cluster, "role", "list").stdout
        assert "PRIORITY" in table and "PREEMPTIBLE" in table
        batch = next(line for line in table.splitlines() if line.startswith("batch"))
        assert batch.split()[-2:] == ["-4", "yes"]
