"""Protobuf and gRPC stop at the agent's edge (`master_link.py`); its bookkeeping does no I/O."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

AGENT = Path(__file__).resolve().parents[3] / "src" / "mesoslite" / "agent"
EDGE = {"master_link.py"}
PURE = {"status_updates.py", "probe.py", "messages.py", "constants.py"}


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", sorted(AGENT.glob("*.py")), ids=lambda p: p.name)
def test_only_the_master_link_speaks_protobuf(path: Path) -> None:
    if path.name in EDGE:
        return
    bad = {n for n in imported(path) if n.startswith(("grpc", "mesoslite._proto"))}
    assert not bad, f"{path.name} imports {sorted(bad)}"


@pytest.mark.parametrize("name", sorted(PURE))
def test_bookkeeping_modules_do_no_io(name: str) -> None:
    forbidden = ("asyncio", "subprocess", "socket", "time", "grpc", "mesoslite._proto")
    bad = {n for n in imported(AGENT / name) if n.split(".")[0] in forbidden or n in forbidden}
    assert not bad, f"{name} imports {sorted(bad)}"


# The pure core (issue 12): `AgentState` and what it is built from. The shell (`actor.py`)
# imports it, never the reverse.
CORE = {
    "state.py",
    "task_book.py",
    "recovery.py",
    "recovered.py",
    "effects.py",
    "outcome.py",
    "health_state.py",
    "status_updates.py",
    "constants.py",
}
CORE_FORBIDDEN = (
    "asyncio",
    "subprocess",
    "socket",
    "time",
    "threading",
    "concurrent",
    "os",
    "shutil",
    "pathlib",
    "grpc",
    "kazoo",
    "mesoslite._proto",
    "mesoslite.clock",
)


def agent_modules_imported(path: Path) -> set[str]:
    """`from mesoslite.agent import x` names module `mesoslite.agent.x`."""
    return {
        f"mesoslite.agent.{a.name}"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ImportFrom) and node.module == "mesoslite.agent"
        for a in node.names
    }


@pytest.mark.parametrize("name", sorted(CORE))
def test_the_agent_core_does_no_io_and_imports_only_the_core(name: str) -> None:
    names = imported(AGENT / name) | agent_modules_imported(AGENT / name)
    bad = {n for n in names if n.split(".")[0] in CORE_FORBIDDEN or n in CORE_FORBIDDEN}
    agent = {n for n in names if n.startswith("mesoslite.agent")}
    outside = {
        n for n in agent if n != "mesoslite.agent" and f"{n.rsplit('.', 1)[1]}.py" not in CORE
    }
    assert not bad, f"{name} imports {sorted(bad)}"
    assert not outside, f"{name} imports the shell: {sorted(outside)}"
