"""What a task's exit code means: its terminal state, reason and message."""

from __future__ import annotations

import signal

from mesoslite.model import REASON_COMMAND_EXITED, REASON_TASK_KILLED, TaskState


def exit_outcome(code: int, *, killed: bool) -> tuple[TaskState, str, str]:
    """The terminal state, reason and message of a task whose process ended with `code`."""
    if killed:
        return TaskState.KILLED, REASON_TASK_KILLED, f"killed; {describe_exit(code)}"
    if code == 0:
        return TaskState.FINISHED, REASON_COMMAND_EXITED, describe_exit(code)
    return TaskState.FAILED, REASON_COMMAND_EXITED, describe_exit(code)


def describe_exit(code: int) -> str:
    """`command exited with status 3` or `command terminated by SIGTERM` (code -15)."""
    if code >= 0:
        return f"command exited with status {code}"
    try:
        name = signal.Signals(-code).name
    except ValueError:
        name = f"signal {-code}"
    return f"command terminated by {name}"
