"""Fixtures for tests against real daemons: `cluster`, a `LocalCluster` on free ports in
`tmp_path` with 2 agents, whose daemon logs are added to the report of a failed test."""

from mesoslite.testing.pytest_plugin import (
    cluster,
    pytest_runtest_makereport,
    zk_ensemble,
    zk_url,
    zookeeper,
)

__all__ = ["cluster", "pytest_runtest_makereport", "zk_ensemble", "zk_url", "zookeeper"]
