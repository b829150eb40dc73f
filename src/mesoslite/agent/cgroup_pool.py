"""`CgroupPool`: cgroups v1 (memory + cpu) made once and reused across tasks (issue 15).

Making and removing a memory cgroup is the dear part of a task's isolation (~0.5 ms a mkdir,
~0.3 ms a rmdir, per controller, more on a loaded host; and every removed memory cgroup
lingers in the kernel a while). So a task takes a slot, `pool/<n>` under each controller's
base directory, and gives it back when it ends:
- Limits are set at each take, and only where they differ from what the slot holds (a slot
  remembers what it was given), so a slot reused by a task of the same shape costs no write.
  A raised memory limit is written `memsw` first, a lowered one `memory` first (the kernel
  refuses `memory.limit_in_bytes` above `memory.memsw.limit_in_bytes`).
- A slot goes back into the pool only when every controller's `cgroup.procs` is empty and
  its `oom_kill` count is 0: a cgroup that still holds a process is never reused, and one
  whose task was OOM-killed is removed rather than reused, so `Isolator.memory_limit_hit`
  counts the current task's kills only.
- The pool holds at most `size` free slots; beyond that a slot given back is removed.
- Slot names are made with `mkdir` without `exist_ok`: a name still held by a task of an
  earlier agent (recovered, running) is skipped, never shared.
- cgroups v1 only: v2 has no rename-free reuse problem of its own, and no host here to test it.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterable
from pathlib import Path

logger = logging.getLogger(__name__)

POOL_DIR = "pool"
DEFAULT_POOL_SIZE = 64
MB = 1024 * 1024
CFS_PERIOD_US = 100_000
UNLIMITED = "-1"

Limits = dict[str, str]


class CgroupPool:
    """Free task cgroups, one directory per controller each (see the module docstring)."""

    def __init__(self, bases: dict[str, Path], size: int = DEFAULT_POOL_SIZE) -> None:
        self.bases = bases
        self.size = size
        self._free: list[tuple[str, ...]] = []
        # What each slot was given, by its directories: only changes are written.
        self._limits: dict[tuple[str, ...], Limits] = {}
        self._next = 0

    @property
    def free_count(self) -> int:
        return len(self._free)

    def take(self, mem_mb: float, cpus: float) -> tuple[str, ...]:
        """A slot with these limits (0: none); () if no cgroup could be made."""
        slot = self._free.pop() if self._free else self._make()
        if not slot:
            return ()
        try:
            self._set_limits(slot, wanted_limits(mem_mb, cpus))
        except OSError as e:
            logger.warning("cannot set cgroup limits path=%s: %s", slot[0], e.strerror or e)
            self._remove(slot)
            return ()
        return slot

    def give_back(self, slot: tuple[str, ...]) -> bool:
        """Keep `slot` for a later task; False if it is not the pool's to keep (not a slot,
        still holds a process, OOM-killed something, or the pool is full): remove it."""
        ours = slot in self._limits  # made (and limited) by this pool: no path check
        if not ours and (
            len(slot) != len(self.bases)
            or not all(os.path.basename(os.path.dirname(d)) == POOL_DIR for d in slot)
        ):
            return False
        if len(self._free) >= self.size or not _reusable(zip(self.bases, slot, strict=True)):
            self._limits.pop(slot, None)
            return False
        self._free.append(slot)
        return True

    def close(self) -> None:
        """Remove the free slots, and the empty ones an earlier agent left (the kernel
        refuses to remove a slot that holds a process: a running task's stays, for the
        next agent)."""
        for slot in self._free:
            self._remove(slot)
        self._free.clear()
        for base in self.bases.values():
            with contextlib.suppress(OSError):
                for d in (base / POOL_DIR).iterdir():
                    with contextlib.suppress(OSError):
                        os.rmdir(d)

    def _make(self) -> tuple[str, ...]:
        for _ in range(1000):
            name, self._next = str(self._next), self._next + 1
            made: list[str] = []
            try:
                for base in self.bases.values():
                    d = base / POOL_DIR / name
                    d.parent.mkdir(exist_ok=True)
                    d.mkdir()
                    made.append(str(d))
            except FileExistsError:
                self._remove(tuple(made))  # held by an earlier agent's task: next name
                continue
            except OSError as e:
                logger.warning("cannot make a task cgroup: %s", e.strerror or e)
                self._remove(tuple(made))
                return ()
            return tuple(made)
        return ()

    def _set_limits(self, slot: tuple[str, ...], wanted: Limits) -> None:
        held = self._limits.setdefault(slot, {})
        for controller, d in zip(self.bases, slot, strict=True):
            for name in _order(controller, held, wanted):
                if held.get(name) == wanted[name]:
                    continue
                try:
                    _write(Path(d, name), wanted[name])
                except OSError:
                    if name != "memory.memsw.limit_in_bytes":  # no swap accounting here
                        raise
                held[name] = wanted[name]

    def _remove(self, slot: tuple[str, ...]) -> None:
        self._limits.pop(slot, None)
        for d in slot:
            with contextlib.suppress(OSError):
                os.rmdir(d)


def wanted_limits(mem_mb: float, cpus: float) -> Limits:
    """Every limit file a slot's task depends on, reset to the default where not asked."""
    mem = str(int(mem_mb * MB)) if mem_mb > 0 else UNLIMITED
    return {
        "memory.limit_in_bytes": mem,
        "memory.memsw.limit_in_bytes": mem,
        "cpu.cfs_period_us": str(CFS_PERIOD_US),
        "cpu.cfs_quota_us": str(max(1000, int(cpus * CFS_PERIOD_US))) if cpus > 0 else UNLIMITED,
        "cpu.shares": str(max(2, int(cpus * 1024))) if cpus > 0 else "1024",
    }


def _order(controller: str, held: Limits, wanted: Limits) -> list[str]:
    """The limit files of one controller, in an order the kernel accepts."""
    if controller == "memory":
        mem, memsw = "memory.limit_in_bytes", "memory.memsw.limit_in_bytes"
        raised = _bytes(wanted[mem]) > _bytes(held.get(mem, UNLIMITED))
        return [memsw, mem] if raised else [mem, memsw]
    if controller == "cpu":
        return ["cpu.cfs_period_us", "cpu.cfs_quota_us", "cpu.shares"]
    return []


def _bytes(value: str) -> float:
    return float("inf") if value == UNLIMITED else float(value)


def _reusable(dirs: Iterable[tuple[str, str]]) -> bool:
    """No process left in any of the slot's cgroups (controller, directory), and no OOM kill
    in its memory one. Read with plain `os` calls: this runs at every task's end."""
    for controller, d in dirs:
        try:
            if _read(d + "/cgroup.procs").strip():
                return False
        except OSError:
            return False
        if controller == "memory":
            try:
                text = _read(d + "/memory.oom_control")
            except FileNotFoundError:
                continue  # no OOM accounting here
            except OSError:
                return False
            if _oom_kills(text) != 0:
                return False
    return True


def _read(path: str) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return os.read(fd, 65536)
    finally:
        os.close(fd)


def _oom_kills(text: bytes) -> int | None:
    """The `oom_kill` count of `memory.oom_control`; None if unknown (treated as used)."""
    for line in text.splitlines():
        name, _, value = line.partition(b" ")
        if name == b"oom_kill":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _write(path: Path, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)
