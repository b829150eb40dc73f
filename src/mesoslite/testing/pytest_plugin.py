"""A pytest plugin: the `cluster` fixture, with daemon logs added to failed tests' reports,
and real ZooKeeper: `zookeeper` (one standalone server per session), `zk_url` (a fresh
path in it per test) and `zk_ensemble` (3 servers, per test). Without ZooKeeper installed
these skip, or fail when `$CI` is set.

Use it with `pytest_plugins = ["mesoslite.testing.pytest_plugin"]` in your root
`conftest.py`, or import `cluster` and `pytest_runtest_makereport` into a `conftest.py`.
"""

from __future__ import annotations

import io
import os
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from mesoslite.local.zookeeper import ZooKeeperCluster as _ZooKeeperServers
from mesoslite.local.zookeeper import ZooKeeperNotInstalledError, find_classpath
from mesoslite.testing.local_cluster import LocalCluster
from mesoslite.testing.zookeeper import ZooKeeperCluster

LOG_LINES_ON_FAILURE = 80


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, None]:
    """On failure, add the tail of every daemon's log to the test's report."""
    outcome = yield
    report = outcome.get_result()
    funcargs = getattr(item, "funcargs", {})
    for value in funcargs.values():
        if not report.failed:
            continue
        if isinstance(value, _ZooKeeperServers):
            report.sections.append(("zookeeper logs", value.logs(LOG_LINES_ON_FAILURE)))
        elif hasattr(value, "dump_logs"):
            buf = io.StringIO()
            value.dump_logs(buf, lines=LOG_LINES_ON_FAILURE)
            report.sections.append(("mesoslite daemon logs", buf.getvalue()))


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    """A master on a free port and 2 agents (cpus:4;mem:4096;disk:10000, 1000 ports each).

    Needs `mesoslite.agent`; without it the test fails with `LocalClusterError` rather
    than being skipped: a missing agent is a broken install, not an optional extra.
    """
    with LocalCluster(tmp_path / "cluster", agents=2) as c:
        yield c


def require_zookeeper() -> None:
    """Skip the test when ZooKeeper is not installed, or fail it under `$CI`."""
    try:
        find_classpath()
    except ZooKeeperNotInstalledError as e:
        if os.environ.get("CI"):
            pytest.fail(f"ZooKeeper is required under CI: {e}")
        pytest.skip(str(e))


@pytest.fixture(scope="session")
def zookeeper(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ZooKeeperCluster]:
    """One standalone ZooKeeper for the whole session; use `zk_url` for a path of your own."""
    require_zookeeper()
    with ZooKeeperCluster(tmp_path_factory.mktemp("zookeeper"), size=1) as zk:
        yield zk


@pytest.fixture
def zk_url(zookeeper: ZooKeeperCluster) -> str:
    """`zk://HOST:PORT/mesoslite-test-<uuid>`: a path no other test uses."""
    return zookeeper.chroot_url()


@pytest.fixture
def zk_ensemble(tmp_path: Path) -> Iterator[ZooKeeperCluster]:
    """A 3-server ZooKeeper ensemble of this test's own (members may be killed)."""
    require_zookeeper()
    with ZooKeeperCluster(tmp_path / "zk-ensemble", size=3) as zk:
        yield zk
