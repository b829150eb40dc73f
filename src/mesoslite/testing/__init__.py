"""Helpers for testing against real mesoslite daemons (public, like `kazoo.testing`)."""

from mesoslite.testing.eventually import assert_eventually, assert_eventually_async
from mesoslite.testing.ha_cluster import HACluster
from mesoslite.testing.local_cluster import (
    DEFAULT_AGENT_RESOURCES,
    LocalCluster,
    LocalClusterError,
)
from mesoslite.testing.net import free_port
from mesoslite.testing.zookeeper import (
    ZooKeeperCluster,
    ZooKeeperNotInstalledError,
    ZooKeeperProxy,
    zookeeper_available,
)

__all__ = [
    # Clusters
    "LocalCluster",
    "LocalClusterError",
    "DEFAULT_AGENT_RESOURCES",
    "HACluster",
    # Real ZooKeeper
    "ZooKeeperCluster",
    "ZooKeeperProxy",
    "ZooKeeperNotInstalledError",
    "zookeeper_available",
    # Polling assertions
    "assert_eventually",
    "assert_eventually_async",
    # Network
    "free_port",
]
