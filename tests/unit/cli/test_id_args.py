"""Ids, job names and roles typed on the command line are checked before any call (issue 11
item 7: a 20 KB task id to `task kill` failed inside gRPC with exit 70)."""

from __future__ import annotations

import subprocess
import sys

import pytest

# Nothing listens on port 1: a command that got as far as calling would exit 69.
MASTER = "127.0.0.1:1"
LONG = "a" * 20_000


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mesoslite.cli", "--master", MASTER, *args],
        capture_output=True, text=True, timeout=60, check=False,
    )


def test_a_20kb_task_id_to_task_kill_is_a_usage_error_naming_the_problem() -> None:
    result = cli("task", "kill", LONG)
    assert result.returncode == 2, result.stderr
    assert "task id too long: 20000 characters, at most 255" in result.stderr
    assert LONG not in result.stderr


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (("task", "kill", "fz-nl\n"), "task id must be 1-255 characters"),
        (("task", "logs", LONG), "task id too long"),
        (("task", "kill", "t1", "--framework", LONG), "framework id too long"),
        (("task", "list", "--framework", "fw x"), "framework id must be"),
        (("agent", "drain", LONG), "agent id too long"),
        (("agent", "gone", "ag-1\n"), "agent id must be"),
        (("framework", "explain", LONG), "framework id too long"),
        (("job", "status", "J" * 64), "job name too long: 64 characters, at most 63"),
        (("job", "kill", "Bad_Name"), "job name must be a DNS label"),
        (("role", "set-weight", "r" * 300, "2"), "role too long"),
        (("role", "set-quota", "Eng", "--guarantee", "cpus:1"), "role must be"),
    ],
)
def test_bad_ids_names_and_roles_are_refused_before_calling_the_master(
    args: tuple[str, ...], text: str
) -> None:
    result = cli(*args)
    assert result.returncode == 2, result.stderr
    assert text in result.stderr, result.stderr


def test_a_well_formed_id_gets_as_far_as_calling_the_master() -> None:
    # The check passes it on: the call then fails only because nobody listens.
    result = cli("task", "kill", "t-1.ok:x@y")
    assert result.returncode == 69, result.stderr
