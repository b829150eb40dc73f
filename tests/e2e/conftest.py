"""Fixtures for running the CLI as a user does: a real cluster (`cluster`, with its logs in
failed tests' reports) and the installed `mesoslite` script."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from mesoslite.testing.pytest_plugin import cluster, pytest_runtest_makereport

__all__ = ["cluster", "mesoslite", "pytest_runtest_makereport"]

# The console script of the venv running the tests, as a user would type it.
MESOSLITE = Path(sys.executable).parent / "mesoslite"


CliRunner = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def mesoslite() -> CliRunner:
    """`mesoslite(*args, master=None)`: run the CLI, return the completed process (text)."""

    def run(*args: str, master: str | None = None, timeout_s: float = 30.0
            ) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if k != "MESOSLITE_MASTER"}
        if master is not None:
            env["MESOSLITE_MASTER"] = master
        return subprocess.run(
            [str(MESOSLITE), *args], env=env, capture_output=True, text=True, timeout=timeout_s
        )

    return run
