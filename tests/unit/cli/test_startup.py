"""The CLI starts fast: the group and `--help` import neither grpc nor protobuf."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("grpc", "google.protobuf", "mesoslite._proto", "yaml", "psutil")


# Runs the CLI in a fresh interpreter, then lists every loaded module. (`-X importtime`
# misses modules loaded with `importlib.import_module`, as lazy subcommands are.)
SCRIPT = """
import sys
from mesoslite.cli import cli
try:
    cli.main(sys.argv[1:], prog_name="mesoslite")
except SystemExit:
    pass
print("\\n".join(sorted(sys.modules)), file=sys.stderr)
"""


def imported_by(*args: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, *args], capture_output=True, text=True, check=True
    )
    return set(done.stderr.split())


@pytest.mark.parametrize(
    "args",
    [("--help",), ("agent", "--help"), ("agent", "list", "--help"), ("task", "logs", "--help"),
     ("framework", "list", "--help"), ("local", "--help")],
)
def test_help_imports_no_grpc_or_protobuf(args: tuple[str, ...]) -> None:
    names = imported_by(*args)
    assert "click" in names
    heavy = sorted(n for n in names if n.startswith(HEAVY))
    assert not heavy, f"`mesoslite {' '.join(args)}` imported {heavy[:5]}"


def test_a_read_command_loads_only_its_own_noun() -> None:
    names = imported_by("task", "list", "--help")
    assert "mesoslite.cli.task" in names
    assert not names & {"mesoslite.cli.agent", "mesoslite.cli.run", "mesoslite.cli.local"}
    assert "asyncio" not in names
