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
