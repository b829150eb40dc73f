"""The pure core imports no I/O: no grpc, kazoo, asyncio, clocks, randomness or protobuf.
Jobs and master meet at one place: jobs/ imports nothing of master/, and only the master's
jobs port (and the Jobs servicer) import jobs/. Imports run one way: no cycle between the
packages of mesoslite, nor between the modules of master/ (see #12)."""

from __future__ import annotations

import ast
from collections.abc import Iterable
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
    SRC / "master" / "books.py",
    SRC / "master" / "agent_book.py",
    SRC / "master" / "framework_book.py",
    SRC / "master" / "task_book.py",
    SRC / "master" / "tasks.py",
    SRC / "master" / "accept.py",
    SRC / "master" / "allocation.py",
    SRC / "master" / "frameworks.py",
    SRC / "master" / "agents.py",
    SRC / "master" / "preemption.py",
    SRC / "master" / "preemption_book.py",
    SRC / "resources.py",
    SRC / "model.py",
    # The jobs framework's decisions; its I/O is jobs/framework.py.
    *(SRC / "jobs" / f"{m}.py"
      for m in ("core", "records", "documents", "spec", "cron", "constraints", "model", "port",
                "book", "placement", "transitions", "ticks", "spec_yaml", "spec_values",
                "spec_fields", "spec_constraints", "plan", "steer")),
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


# -- import cycles


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    """The absolute module an `ImportFrom` names (relative imports resolved)."""
    if not node.level:
        return node.module or ""
    base = module.split(".")
    base = base[: len(base) - node.level + (1 if is_package else 0)]
    return ".".join([*base, node.module] if node.module else base)


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the modules of `root`'s package it imports (anywhere in the file, also
    under `TYPE_CHECKING`: a cycle for the type checker is a cycle for the reader)."""
    modules = {_module_name(p, root): p for p in root.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(node, name, path.name == "__init__.py")
                # `from pkg import mod` imports the module `pkg.mod` when there is one.
                targets = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in modules]
                targets = targets or [base]
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of `graph` as its path (first node repeated at the end), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start)
            if found:
                return found
    return None


def package_graph(graph: dict[str, set[str]], depth: int) -> dict[str, set[str]]:
    """The graph between packages: each module folded into its first `depth` name parts."""
    def fold(name: str) -> str:
        return ".".join(name.split(".")[:depth])

    folded: dict[str, set[str]] = {}
    for name, targets in graph.items():
        edges = folded.setdefault(fold(name), set())
        edges.update(fold(t) for t in targets if fold(t) != fold(name))
    return folded


def _only(graph: dict[str, set[str]], names: Iterable[str]) -> dict[str, set[str]]:
    keep = set(names)
    return {n: {t for t in ts if t in keep} for n, ts in graph.items() if n in keep}


# Package imports that close a cycle today, each with the issue that will end it; do not add.
# Package edges a cycle may use for now (none: the local clusters moved to mesoslite.local).
KNOWN_PACKAGE_EDGES: set[tuple[str, str]] = set()


def test_no_import_cycle_inside_the_master() -> None:
    graph = import_graph(SRC)
    master = [n for n in graph if n.startswith("mesoslite.master.")]
    cycle = find_cycle(_only(graph, master))
    assert cycle is None, "import cycle in master/: " + " -> ".join(cycle or ())


def test_no_import_cycle_between_packages() -> None:
    graph = package_graph(import_graph(SRC), depth=2)
    graph.pop("mesoslite", None)  # the package's own __init__ re-exports its parts
    for name, edges in graph.items():
        edges.discard("mesoslite")
        edges -= {t for n, t in KNOWN_PACKAGE_EDGES if n == name}
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle between packages: " + " -> ".join(cycle or ())


def test_the_cycle_check_finds_a_cycle_and_names_its_path(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg import b\n")
    (pkg / "b.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                              "    from pkg.c import C\n")
    (pkg / "c.py").write_text("from . import a\n")
    (pkg / "d.py").write_text("import pkg.a\n")
    assert find_cycle(import_graph(pkg)) == ["pkg.a", "pkg.b", "pkg.c", "pkg.a"]
    (pkg / "c.py").write_text("")
    assert find_cycle(import_graph(pkg)) is None

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
