"""The local cluster behind `mesoslite local`: masters, agents and ZooKeeper as subprocesses
of this host. `mesoslite.testing` builds its test harness on it."""

from mesoslite.local.base import DEFAULT_AGENT_RESOURCES, LocalClusterError
from mesoslite.local.cluster import LocalCluster
from mesoslite.local.ha import HACluster
from mesoslite.local.zookeeper import ZooKeeperCluster, ZooKeeperNotInstalledError

__all__ = [
    "DEFAULT_AGENT_RESOURCES",
    "HACluster",
    "LocalCluster",
    "LocalClusterError",
    "ZooKeeperCluster",
    "ZooKeeperNotInstalledError",
]
