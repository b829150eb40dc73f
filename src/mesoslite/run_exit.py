"""The code `mesoslite run` exits with for its task's end: one rule for both of its paths,
the CLI's gRPC path (`cli/run.py`) and the master's `POST /run` (`master/run_now.py`).

The sysexits codes live here, not in `cli/exit_codes.py` (which takes them from here),
because importing anything of the `mesoslite.cli` package loads click, which the master's
side must not need.
"""

from __future__ import annotations

import signal

from mesoslite.model import TaskState, TaskStatus

EXIT_REJECTED = 65  # EX_DATAERR
EXIT_UNAVAILABLE = 69  # EX_UNAVAILABLE
EXIT_INTERNAL = 70  # EX_SOFTWARE
EXIT_TEMPFAIL = 75  # EX_TEMPFAIL
EXIT_INTERRUPTED = 130  # Ctrl-C, as a shell reports it


def exit_code_of(status: TaskStatus, killed: bool = False) -> int:
    """The exit code for the task's terminal `status`; `killed`: the user stopped it."""
    code = status.exit_code
    if killed:
        return EXIT_INTERRUPTED
    if code is not None and code < 0:
        return 128 - code  # killed by a signal: 128 + signal, as a shell reports it
    if status.state == TaskState.KILLED:
        # It exited by itself on SIGTERM; still, it was killed, not finished.
        return 128 + signal.SIGTERM
    if code is not None:
        return min(code, 255)
    if status.state in (TaskState.ERROR, TaskState.DROPPED, TaskState.FAILED):
        return EXIT_REJECTED
    return EXIT_UNAVAILABLE  # lost, gone, unreachable
