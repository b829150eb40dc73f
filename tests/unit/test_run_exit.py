"""`mesoslite run`'s exit code for its task's end: one rule for the CLI's gRPC path and the
master's POST /run (both call `run_exit.exit_code_of`)."""

from __future__ import annotations

import pytest

from mesoslite.cli import exit_codes
from mesoslite.ids import AgentId, FrameworkId, TaskId
from mesoslite.model import TaskState, TaskStatus
from mesoslite.run_exit import exit_code_of


def status(state: TaskState, code: int | None) -> TaskStatus:
    return TaskStatus(TaskId("t"), FrameworkId("f"), AgentId("a"), state, exit_code=code)


@pytest.mark.parametrize(
    ("state", "code", "killed", "expected"),
    [
        (TaskState.FINISHED, 0, False, 0),
        (TaskState.FAILED, 3, False, 3),
        (TaskState.FAILED, 300, False, 255),
        (TaskState.FAILED, -9, False, 137),  # a signal: 128 + N
        (TaskState.KILLED, 0, False, 143),  # exited by itself on SIGTERM: still killed
        (TaskState.FAILED, None, False, exit_codes.EXIT_REJECTED),  # never ran
        (TaskState.LOST, None, False, exit_codes.EXIT_UNAVAILABLE),
        (TaskState.KILLED, None, True, 130),  # Ctrl-C
    ],
)
def test_the_exit_code_of_a_run(
    state: TaskState, code: int | None, killed: bool, expected: int
) -> None:
    assert exit_code_of(status(state, code), killed) == expected
