"""A pytest plugin: the `cluster` fixture, with daemon logs added to failed tests' reports.

Use it with `pytest_plugins = ["mesoslite.testing.pytest_plugin"]` in your root
`conftest.py`, or import `cluster` and `pytest_runtest_makereport` into a `conftest.py`.
"""

from __future__ import annotations

import io
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from mesoslite.testing.local_cluster import LocalCluster

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
        if report.failed and isinstance(value, LocalCluster):
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
