"""The `mesoslite` CLI's exit codes, and the code for each kind of error.

Scripts branch on these, so they are part of the CLI's contract: never renumber one. Where a
`sysexits.h` code fits we use it (as dramatiq's `RET_*` and many Unix tools do), so that the
numbers mean something to people who have not read this file. `mesoslite run` also exits
with the task's own exit code, which may collide with these; it documents how to tell them
apart.
"""

from __future__ import annotations

from mesoslite import run_exit
from mesoslite.errors import MesosliteError

EXIT_OK = 0
# Something failed that is not one of the cases below, e.g. a daemon of `mesoslite local`
# died.
EXIT_FAILURE = 1
# Bad usage: click's own code for a bad flag, and ours when the master answers
# INVALID_ARGUMENT, since the fix is in what the user typed.
EXIT_USAGE = 2
# EX_DATAERR: the master understood the request and refused it given its state
# (FAILED_PRECONDITION, ALREADY_EXISTS), e.g. a duplicate task id.
EXIT_REJECTED = run_exit.EXIT_REJECTED
# EX_NOINPUT: the named task, framework or agent does not exist (NOT_FOUND).
EXIT_NOT_FOUND = 66
# EX_UNAVAILABLE: the master cannot be reached, or is not leading (UNAVAILABLE).
EXIT_UNAVAILABLE = run_exit.EXIT_UNAVAILABLE
# EX_SOFTWARE: the master failed internally (INTERNAL, UNKNOWN); a bug to report.
EXIT_INTERNAL = run_exit.EXIT_INTERNAL
# EX_TEMPFAIL: a deadline passed (DEADLINE_EXCEEDED); trying again may work.
EXIT_TEMPFAIL = run_exit.EXIT_TEMPFAIL
# EX_NOPERM: the principal may not do this (PERMISSION_DENIED).
EXIT_NOPERM = 77
# 128 + SIGINT, as shells report a command stopped by Ctrl-C.
EXIT_INTERRUPTED = 130

_BY_STATUS = {
    "INVALID_ARGUMENT": EXIT_USAGE,
    "NOT_FOUND": EXIT_NOT_FOUND,
    "FAILED_PRECONDITION": EXIT_REJECTED,
    "ALREADY_EXISTS": EXIT_REJECTED,
    "PERMISSION_DENIED": EXIT_NOPERM,
    "UNAUTHENTICATED": EXIT_NOPERM,  # no or wrong --principal/--secret-file
    "UNAVAILABLE": EXIT_UNAVAILABLE,
    "DEADLINE_EXCEEDED": EXIT_TEMPFAIL,
    "RESOURCE_EXHAUSTED": EXIT_USAGE,  # a message over the size limit: send less
}


def exit_code_for(err: MesosliteError) -> int:
    """The exit code for an error, from the gRPC status its class carries."""
    return _BY_STATUS.get(err.status, EXIT_INTERNAL)
