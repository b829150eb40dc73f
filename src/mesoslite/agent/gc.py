"""Sandbox garbage collection: remove the sandboxes of tasks the agent is done with, by age.

Design:
- A sandbox (`WORK/sandboxes/<framework>/<task>/`) stays after its task is forgotten (its
  terminal update acknowledged), so that its output can still be read. It is removed once
  it has not changed for the agent's `sandbox_gc_age_s`, shortened as the work dir's disk
  fills up, as Mesos's `gc_disk_headroom`: age x max(0, 1 - headroom - used fraction). So
  an agent whose disk is nearly full removes old sandboxes at once.
- Sandboxes of tasks the agent still holds (running, or with updates not acknowledged)
  are never removed. Runs in a worker thread (`collect` blocks: it walks and deletes).
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Collection
from pathlib import Path

from mesoslite.agent.constants import SANDBOX_FILES, SANDBOXES_DIR

logger = logging.getLogger(__name__)

# Keep this fraction of the work dir's disk free: sandboxes age faster as it shrinks.
DISK_HEADROOM = 0.1


def effective_age_s(max_age_s: float, disk_used_fraction: float) -> float:
    """The age past which a sandbox goes, given how full the disk is."""
    return max_age_s * max(0.0, 1.0 - DISK_HEADROOM - disk_used_fraction)


def disk_used_fraction(path: Path) -> float:
    usage = shutil.disk_usage(path)
    return usage.used / usage.total if usage.total else 0.0


def collect(
    work_dir: Path, live: Collection[tuple[str, str]], max_age_s: float, now: float
) -> list[Path]:
    """Remove old sandboxes of tasks not in `live` ((framework_id, task_id) pairs).

    Returns:
        The sandboxes removed.
    """
    root = work_dir / SANDBOXES_DIR
    if not root.is_dir():
        return []
    age_s = effective_age_s(max_age_s, disk_used_fraction(work_dir))
    removed: list[Path] = []
    for fdir in root.iterdir():
        if not fdir.is_dir():
            continue
        for tdir in fdir.iterdir():
            if (fdir.name, tdir.name) in live or not tdir.is_dir():
                continue
            if now - _last_change(tdir) >= age_s:
                shutil.rmtree(tdir, ignore_errors=True)
                removed.append(tdir)
        try:
            fdir.rmdir()  # the framework's, once empty
        except OSError:
            pass
    if removed:
        logger.info(
            "removed old sandboxes count=%d age_s=%.0f (of %.0f, disk fill counted)",
            len(removed),
            age_s,
            max_age_s,
        )
    return removed


def _last_change(sandbox: Path) -> float:
    latest = 0.0
    for p in (sandbox, *(sandbox / name for name in SANDBOX_FILES)):
        try:
            latest = max(latest, os.stat(p).st_mtime)
        except OSError:
            pass
    return latest
