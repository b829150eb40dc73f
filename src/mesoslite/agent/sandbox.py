"""Task sandboxes: `WORK/sandboxes/<framework_id>/<task_id>/{stdout,stderr}`, and reading them."""

from __future__ import annotations

import os
import re
from pathlib import Path

from mesoslite.agent.constants import SANDBOX_FILES, SANDBOXES_DIR

# Ids become directory names: no separators, no leading dot (so never `.` or `..`). `\Z`,
# not `$`, which also matches before a final newline ("t\n" was a name; found by fuzzing).
SAFE_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:@-]{0,254}\Z")
# The most one read returns (the master asks for at most 1 MiB).
MAX_READ_BYTES = 4 * 1024 * 1024


def sandbox_path(work_dir: Path, framework_id: str, task_id: str) -> Path | None:
    """`WORK/sandboxes/<framework_id>/<task_id>`, or None if an id is unsafe as a name."""
    if not SAFE_NAME_RE.match(framework_id) or not SAFE_NAME_RE.match(task_id):
        return None
    return work_dir / SANDBOXES_DIR / framework_id / task_id


def read_sandbox_file(
    work_dir: Path, framework_id: str, task_id: str, name: str, offset: int, length: int
) -> tuple[bytes, int, str]:
    """Read `length` bytes at `offset` of a task's `stdout` or `stderr`.

    Blocking: run it in a worker thread. It reads only the file, so it needs no agent state
    and works for tasks the agent has forgotten (their sandboxes stay on disk).

    Returns:
        (data, size of the file when read, error text or "").
    """
    if name not in SANDBOX_FILES:
        return b"", 0, f"name must be one of {', '.join(SANDBOX_FILES)}, got {name!r}"
    sandbox = sandbox_path(work_dir, framework_id, task_id)
    if sandbox is None:
        return b"", 0, f"task {task_id!r} has no sandbox on this agent"
    try:
        with open(sandbox / name, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if offset >= size:
                return b"", size, ""
            f.seek(offset)
            return f.read(min(length, MAX_READ_BYTES)), size, ""
    except FileNotFoundError:
        if not sandbox.is_dir():
            return b"", 0, f"task {task_id!r} has no sandbox on this agent"
        return b"", 0, f"{name} of task {task_id!r} does not exist"
    except OSError as e:
        return b"", 0, f"cannot read {name} of task {task_id!r}: {e.strerror or e}"
