"""Task sandboxes: `WORK/sandboxes/<framework_id>/<task_id>/{stdout,stderr}`, and reading them.

A sandbox is mode 0700 and, for a task run as another user, owned by that user with its
output files, so that no task reads another user's sandbox. A sandbox may thus hold what
its task put there (a symlink to /etc/shadow named `stdout`): the agent, often root, opens
its files with `O_NOFOLLOW` and reads regular files only.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from mesoslite.agent.constants import SANDBOX_FILES, SANDBOXES_DIR
from mesoslite.agent.users import TaskUser

SANDBOX_MODE = 0o700

# Ids become directory names: no separators, no leading dot (so never `.` or `..`). `\Z`,
# not `$`, which also matches before a final newline ("t\n" was a name; found by fuzzing).
SAFE_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:@-]{0,254}\Z")
# The most one read returns (the master asks for at most 1 MiB).
MAX_READ_BYTES = 4 * 1024 * 1024


def sandbox_path(work_dir: Path, framework_id: str, task_id: str) -> Path | None:
    """`WORK/sandboxes/<framework_id>/<task_id>`, or None if an id is unsafe as a name."""
    if not SAFE_NAME_RE.match(framework_id) or not SAFE_NAME_RE.match(task_id):
        return None
    # One Path made from one string: three `/` would parse three times (once per task).
    return Path(f"{work_dir}/{SANDBOXES_DIR}/{framework_id}/{task_id}")


def make_sandbox(sandbox: Path, user: TaskUser | None, *, parent_known: bool = False) -> None:
    """Create `sandbox` (mode 0700), owned by `user` if the task runs as one.

    Raises:
        OSError: it cannot be created (or given to the user).
    """
    if not parent_known:
        sandbox.parent.mkdir(parents=True, exist_ok=True)
    try:
        sandbox.mkdir(mode=SANDBOX_MODE)
    except FileExistsError:
        # A task id used again: its new run overwrites stdout and stderr, maybe as another
        # user. The parent is root's, so `sandbox` itself cannot be a task's symlink.
        os.chmod(sandbox, SANDBOX_MODE, follow_symlinks=False)
    if user is not None:
        os.chown(sandbox, user.uid, user.gid, follow_symlinks=False)


def give_to(user: TaskUser | None, *fds: int) -> None:
    """Make the open sandbox files `fds` the task user's (nothing if it runs as the agent)."""
    if user is not None:
        for fd in fds:
            os.fchown(fd, user.uid, user.gid)


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
        # NONBLOCK: a FIFO planted as `stdout` must not hang the reading thread.
        fd = os.open(sandbox / name, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
        with open(fd, "rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                return b"", 0, f"{name} of task {task_id!r} is not a regular file"
            size = st.st_size
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
