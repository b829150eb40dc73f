"""The pure core imports no I/O: no grpc, kazoo, asyncio, clocks, randomness or protobuf.
Jobs and master meet at one place: jobs/ imports nothing of master/, and only the master's
jobs port (and the Jobs servicer) import jobs/."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "mesoslite"
PURE = [
    *sorted((SRC / "allocator").glob("*.py")),
    SRC / "master" / "state.py",
    SRC / "master" / "offers.py",
    SRC / "master" / "records.py",
    SRC / "master" / "validation.py",
    SRC / "master" / "events.py",
    SRC / "master" / "roles.py",
    SRC / "master" / "reservations.py",
    SRC / "master" / "lookup.py",
    SRC / "master" / "tasks.py",
    SRC / "master" / "accept.py",
    SRC / "master" / "allocation.py",
    SRC / "master" / "frameworks.py",
    SRC / "master" / "agents.py",
    SRC / "resources.py",
    SRC / "model.py",
    # The jobs framework's decisions; its I/O is jobs/framework.py.
    *(SRC / "jobs" / f"{m}.py"
      for m in ("core", "records", "documents", "spec", "cron", "constraints", "model", "port")),
]
FORBIDDEN = {
    "grpc", "kazoo", "asyncio", "time", "random", "mesoslite._proto", "socket", "subprocess"
}
# The allocator takes its seeded Random from the view; constructing one is allowed there.
ALLOWED = {("allocator", "random")}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", PURE, ids=lambda p: str(p.relative_to(SRC)))
def test_pure_modules_do_no_io(path: Path) -> None:
    for name in imported_modules(path):
        for bad in FORBIDDEN:
            if name == bad or name.startswith(bad + "."):
                if (path.parent.name, bad) in ALLOWED:
                    continue
                pytest.fail(
                    f"{path.relative_to(SRC)} imports {name}: the pure core must not do I/O"
                )


JOBS = sorted((SRC / "jobs").glob("*.py"))
# Where the master meets the jobs framework: the port's adapter, and the Jobs gRPC servicer.
MASTER_MEETS_JOBS = {SRC / "master" / "jobs_port.py", SRC / "master" / "jobs_service.py"}
# The jobs framework reaches the master in process, never through the SDK or gRPC (the
# views' protobuf converters in jobs/convert.py serve the Jobs servicer and the CLI).
JOBS_SHELL_FORBIDDEN = {"grpc", "mesoslite._proto", "mesoslite.scheduler_api"}


def _imports_any(path: Path, prefixes: set[str]) -> list[str]:
    return sorted(
        n for n in imported_modules(path) for p in prefixes if n == p or n.startswith(p + ".")
    )


@pytest.mark.parametrize("path", JOBS, ids=lambda p: str(p.relative_to(SRC)))
def test_jobs_import_nothing_of_the_master(path: Path) -> None:
    bad = _imports_any(path, {"mesoslite.master"})
    assert not bad, f"{path.relative_to(SRC)} imports {bad}: reach the master through jobs/port.py"
    if path.name != "convert.py":
        bad = _imports_any(path, JOBS_SHELL_FORBIDDEN)
        assert not bad, f"{path.relative_to(SRC)} imports {bad}: the port is in process"


@pytest.mark.parametrize(
    "path", sorted((SRC / "master").rglob("*.py")), ids=lambda p: str(p.relative_to(SRC))
)
def test_only_the_jobs_port_of_the_master_imports_jobs(path: Path) -> None:
    if path in MASTER_MEETS_JOBS:
        return
    bad = _imports_any(path, {"mesoslite.jobs"})
    assert not bad, f"{path.relative_to(SRC)} imports {bad}: wire jobs in master/jobs_port.py"


def test_the_layering_check_sees_an_import_of_the_master_inside_a_function(
    tmp_path: Path,
) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from mesoslite.master.actor import MasterActor\n")
    assert _imports_any(module, {"mesoslite.master"}) == ["mesoslite.master.actor"]


# The product never leans on the test harness: the CLI and the local cluster behind
# `mesoslite local` import nothing of `mesoslite.testing`, and the local cluster nothing of
# the CLI (testing builds on both; issue 12 item 8). Both reach the master over gRPC only.
PRODUCT_NOT_TESTING = {
    **{p: {"mesoslite.testing", "mesoslite.master"} for p in sorted((SRC / "cli").glob("*.py"))},
    **{
        p: {"mesoslite.testing", "mesoslite.cli", "mesoslite.master"}
        for p in sorted((SRC / "local").glob("*.py"))
    },
}


def _imports_with_names(path: Path) -> set[str]:
    """Every module `path` imports, `from mesoslite import testing` counted as
    `mesoslite.testing`."""
    names = imported_modules(path)
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


@pytest.mark.parametrize(
    "path", sorted(PRODUCT_NOT_TESTING), ids=lambda p: str(p.relative_to(SRC))
)
def test_the_cli_and_the_local_cluster_do_not_import_the_test_harness(path: Path) -> None:
    assert (SRC / "local" / "cluster.py") in PRODUCT_NOT_TESTING  # the package exists
    forbidden = PRODUCT_NOT_TESTING[path]
    bad = sorted(
        n for n in _imports_with_names(path) for p in forbidden
        if n == p or n.startswith(p + ".")
    )
    assert not bad, (
        f"{path.relative_to(SRC)} imports {bad}: the product must not need testing/, and it "
        "reaches the master over gRPC"
    )
