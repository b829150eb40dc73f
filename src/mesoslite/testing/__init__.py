"""Helpers for testing against real mesoslite daemons (public, like `kazoo.testing`).

The clusters and the ZooKeeper launcher are the product's own (`mesoslite.local`); this
package adds what only tests need and keeps every name importable from here."""

from mesoslite.local.base import DEFAULT_AGENT_RESOURCES, LocalClusterError
from mesoslite.local.daemon import free_port
from mesoslite.local.ha import HACluster
from mesoslite.testing.eventually import assert_eventually, assert_eventually_async
from mesoslite.testing.local_cluster import LocalCluster
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
