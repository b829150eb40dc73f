"""`mesoslite.local` is the product's cluster; `mesoslite.testing` builds on it and keeps every
name it had (issue 12 item 8). No daemon is started here."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

import mesoslite.local as local
import mesoslite.testing as testing


def test_testing_keeps_its_names_and_they_are_the_products_classes() -> None:
    assert testing.HACluster is local.HACluster
    assert issubclass(testing.LocalCluster, local.LocalCluster)
    assert issubclass(testing.ZooKeeperCluster, local.ZooKeeperCluster)
    assert testing.LocalClusterError is local.LocalClusterError
    assert testing.DEFAULT_AGENT_RESOURCES == local.DEFAULT_AGENT_RESOURCES


@pytest.mark.parametrize(
    ("module", "names"),
    [
        ("mesoslite.testing.ha_cluster", ["HACluster"]),
        ("mesoslite.testing.local_cluster",
         ["LocalCluster", "LocalClusterError", "MARKER_ENV", "remove_agent_cgroups_of"]),
        ("mesoslite.testing._daemon", ["Daemon", "DEFAULT_STOP_GRACE_S"]),
        ("mesoslite.testing.net", ["free_port"]),
        ("mesoslite.testing.zookeeper",
         ["ZooKeeperCluster", "ZooKeeperProxy", "find_classpath", "zookeeper_available"]),
    ],
)
def test_the_old_module_paths_still_import(module: str, names: list[str]) -> None:
    mod = importlib.import_module(module)
    assert all(hasattr(mod, n) for n in names)


def test_both_clusters_build_agents_the_same_way_with_their_own_ports(tmp_path: Path) -> None:
    single = local.LocalCluster(tmp_path / "one", agents=2, agent_hostnames=["h0", "h1"])
    single._address = "127.0.0.1:5050"  # as if the master had started
    ha = local.HACluster(tmp_path / "ha", "zk://127.0.0.1:2181/x", agents=2)
    one, other = single._agent_daemon(1).argv, ha._agent_daemon(1).argv
    # The same flags in the same order; only where the master is found and LocalCluster's
    # --recover cleanup and host names differ.
    assert one[one.index("--master") + 1] == "127.0.0.1:5050"
    assert other[other.index("--master") + 1] == "zk://127.0.0.1:2181/x"
    for argv in (one, other):
        assert argv[argv.index("--resources") + 1] == (
            "cpus:4;mem:4096;disk:10000;ports:[32000-32999]"
        )
        assert argv[argv.index("--work-dir") + 1].endswith("agent-1")
    assert one[-4:] == ["--recover", "cleanup", "--hostname", "h1"]
    assert "--recover" not in other

