"""`ExitLog`: the exit codes task wrappers append, so that a task ending while the agent is
down still reports its real code.

Each wrapper (`wrappers/`) appends one line `<tag> <code>\\n` (code: the exit status, or
-signal) to `WORK/meta/exits` when its command ends; the tag is the launch's, from the
checkpoint log's `L` record. One small `O_APPEND` write per task, no file of its own. The
wrapper of a task run as another user stays root (only its command is switched, `users.py`),
so it appends here too.

The agent reads the file only for tasks it did not reap itself (adopted after a restart): the
codes of its own children come from `waitpid`. So the file is rotated (`exits` renamed to
`exits.old`, the previous `exits.old` dropped) at checkpoint compaction when no adopted task
is left; a wrapper that opened `exits` just before writes into `exits.old`, which is read too.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

EXITS_FILE = "exits"


@dataclass(frozen=True, slots=True)
class ExitSink:
    """Where one task's wrapper writes its exit code: `path`, on the line of `tag` ("": the
    whole file is the code, the old layout's `exit_status`)."""

    path: Path
    tag: str


class ExitLog:
    """Reads the codes the wrappers wrote (see the module docstring)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.old = path.with_name(path.name + ".old")

    def read(self, sink: ExitSink) -> int | None:
        """The code written for `sink`, None if none was (yet)."""
        if not sink.tag:
            return _whole_file_code(sink.path)
        if sink.path != self.path:
            return _codes(sink.path).get(sink.tag)
        for path in (self.path, self.old):
            code = _codes(path).get(sink.tag)
            if code is not None:
                return code
        return None

    def rotate(self) -> None:
        """Start a new file; the current one becomes `exits.old`."""
        with contextlib.suppress(FileNotFoundError):
            os.replace(self.path, self.old)


def read_exit_status(sink: ExitSink | None) -> int | None:
    """The code the task's wrapper wrote (or -signal), None if it wrote none."""
    if sink is None:
        return None
    return ExitLog(sink.path).read(sink)


def _codes(path: Path) -> dict[str, int]:
    """tag -> code, the last line of a tag winning; torn or foreign lines are skipped."""
    try:
        data = path.read_bytes()
    except OSError:
        return {}
    out: dict[str, int] = {}
    for line in data.decode("ascii", "replace").split("\n"):
        tag, _, code = line.partition(" ")
        with contextlib.suppress(ValueError):
            out[tag] = int(code)
    return out


def _whole_file_code(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None
