"""Issue #16: a zero in a quota limit means none, through the CLI, the master, its registry
(a master restart) and `role list`, on a real master."""

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


def limits(cluster: LocalCluster) -> dict[str, object]:
    listed = cli(cluster, "role", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    return {r["role"]: r["limit"] for r in json.loads(listed.stdout) if r["role"] in "ab"}


def test_issue16_a_zero_in_a_limit_is_kept_by_cli_master_and_registry(tmp_path: Path) -> None:
    with LocalCluster(tmp_path / "cluster", agents=0) as cluster:
        done = cli(cluster, "role", "set-quota", "a", "--limit", "cpus:0;mem:512")
        assert done.returncode == 0, done.stderr
        assert "limit cpus:0;mem:512" in done.stdout
        done = cli(cluster, "role", "set-quota", "b", "--limit", "cpus:0")
        assert done.returncode == 0, done.stderr
        bad = cli(
            cluster, "role", "set-quota", "c", "--guarantee", "cpus:1", "--limit", "cpus:0;mem:512"
        )
        assert bad.returncode == 2 and "guarantee: must be within the limit" in bad.stderr
        expected = {"a": {"cpus": 0.0, "mem": 512.0}, "b": {"cpus": 0.0}}
        assert limits(cluster) == expected
        cluster.restart_master()
        assert limits(cluster) == expected
        table = cli(cluster, "role", "list").stdout
        assert "cpus:0" in table
