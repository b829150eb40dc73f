"""`Isolator`: enforces a task's memory and cpu with cgroups v1 where the host allows it,
else watches memory with psutil.

Design:
- Found once at start (`detect_isolator`): for each of the v1 `memory` and `cpu`
  controllers, the agent's own cgroup (`/proc/self/cgroup`) under the controller's mount
  (`/proc/self/mountinfo`), and in it a directory `mesoslite-<hash of the work dir>` the agent
  can create. Each task gets a cgroup per controller, taken from a pool of reused ones
  (`<that>/pool/<n>`, `cgroup_pool.py`; v2 makes `<framework_id>/<task_id>`), with
  `memory.limit_in_bytes` (and `memory.memsw.limit_in_bytes` where swap accounting exists)
  from its `mem`, `cpu.cfs_quota_us` and `cpu.shares` from its `cpus`. The task's process
  (the supervisor's child, or the wrapper) joins them before it execs or forks the command, so
  nothing the task starts escapes them: in v1 by writing "0" to their `tasks` (it is
  single-threaded then), which spares the kernel's threadgroup lock and its RCU grace period
  (5-15 ms on a quiet machine, through `cgroup.procs`); in v2 through `cgroup.procs`.
- A task over its memory limit is killed by the kernel's OOM killer inside its cgroup;
  `memory.oom_control`'s `oom_kill` count (or `memory.failcnt` reaching the limit) says so
  afterwards, and the agent reports TASK_FAILED with reason MEMORY_LIMIT.
- cgroups v2 where v1 has no memory or cpu hierarchy and the unified hierarchy offers them
  (`cgroup.controllers` of the agent's own cgroup): `mesoslite-<hash>` under the agent's
  cgroup gets the controllers delegated (`cgroup.subtree_control`), each task a leaf
  `<framework_id>/<task_id>` with `memory.max` (and `memory.swap.max` 0) and `cpu.max`/
  `cpu.weight`; an OOM kill shows in `memory.events`. A cgroup may delegate controllers only
  while it holds no process itself, so if the agent's own cgroup refuses (EBUSY), the agent
  moves itself into a leaf `mesoslite-<hash>-agent` beside it and tries once more.
  (Hosts like ours have no v2 controllers, so this path is tested on a file tree only.)
- Where no cgroup hierarchy works (not root, no mount), `psutil` sums the resident
  memory of each task's process tree every `WATCH_INTERVAL_S` and the agent kills a task
  over its limit (cpu is then not enforced). `kind` names what is used; the agent reports
  it as its `isolation` attribute (registration, `mesoslite agent list`).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
from pathlib import Path

import psutil

from mesoslite.agent.cgroup_pool import CgroupPool
from mesoslite.resources import Resources

logger = logging.getLogger(__name__)

MB = 1024 * 1024
CFS_PERIOD_US = 100_000
WATCH_INTERVAL_S = 0.25
CONTROLLERS = ("memory", "cpu")


class Isolator:
    """Creates, inspects and removes per-task cgroups (see the module docstring)."""

    def __init__(self, bases: dict[str, Path], *, v2: bool = False) -> None:
        # controller -> the agent's directory in that hierarchy (one shared directory in v2)
        self.bases = bases
        self.v2 = v2
        # Task cgroups whose removal failed (EBUSY: the task's last process was not reaped
        # yet); tried again at the next removal and at close. A leak costs every later
        # launch: thousands of dead memory cgroups made mkdir several times slower.
        self._leftover: set[str] = set()
        # v1: task cgroups are reused across tasks (`cgroup_pool.py`, issue 15).
        self.pool = CgroupPool(bases) if bases and not v2 else None

    @property
    def kind(self) -> str:
        if not self.bases:
            return "psutil"
        return ("cgroups-v2:" if self.v2 else "cgroups-v1:") + ",".join(sorted(self.bases))

    @property
    def watches_memory(self) -> bool:
        """True when memory is not enforced by a cgroup and psutil must watch it."""
        return "memory" not in self.bases

    def prepare(self, framework_id: str, task_id: str, resources: Resources) -> tuple[str, ...]:
        """Make the task's cgroups with their limits; returns their directories."""
        mem_mb = resources.scalar("mem")
        cpus = resources.scalar("cpus")
        if self.v2:
            return self._prepare_v2(framework_id, task_id, mem_mb, cpus)
        if self.pool is not None:
            return self.pool.take(mem_mb, cpus)
        out: list[str] = []
        for controller, base in self.bases.items():
            d = base / framework_id / task_id
            try:
                d.mkdir(parents=True, exist_ok=True)
                if controller == "memory" and mem_mb > 0:
                    limit = str(int(mem_mb * MB))
                    _write(d / "memory.limit_in_bytes", limit)
                    with contextlib.suppress(OSError):
                        _write(d / "memory.memsw.limit_in_bytes", limit)
                elif controller == "cpu" and cpus > 0:
                    _write(d / "cpu.cfs_period_us", str(CFS_PERIOD_US))
                    _write(d / "cpu.cfs_quota_us", str(max(1000, int(cpus * CFS_PERIOD_US))))
                    _write(d / "cpu.shares", str(max(2, int(cpus * 1024))))
            except OSError as e:
                logger.warning("cannot set up cgroup path=%s: %s", d, e.strerror or e)
                continue
            out.append(str(d))
        return tuple(out)

    def _prepare_v2(
        self, framework_id: str, task_id: str, mem_mb: float, cpus: float
    ) -> tuple[str, ...]:
        base = next(iter(self.bases.values()))
        fdir, d = base / framework_id, base / framework_id / task_id
        enable = " ".join("+" + c for c in sorted(self.bases))
        try:
            fdir.mkdir(exist_ok=True)
            _write(fdir / "cgroup.subtree_control", enable)  # the task's leaf gets them
            d.mkdir(exist_ok=True)
            if "memory" in self.bases and mem_mb > 0:
                _write(d / "memory.max", str(int(mem_mb * MB)))
                with contextlib.suppress(OSError):
                    _write(d / "memory.swap.max", "0")
            if "cpu" in self.bases and cpus > 0:
                quota = max(1000, int(cpus * CFS_PERIOD_US))
                _write(d / "cpu.max", f"{quota} {CFS_PERIOD_US}")
                # cpu.shares (2..262144) to cpu.weight (1..10000), as systemd converts them.
                shares = max(2, min(262_144, int(cpus * 1024)))
                _write(d / "cpu.weight", str(1 + (shares - 2) * 9999 // 262_142))
        except OSError as e:
            logger.warning("cannot set up cgroup path=%s: %s", d, e.strerror or e)
            return ()
        return (str(d),)

    def chown(self, cgroups: tuple[str, ...], uid: int, gid: int) -> None:
        """Let a task running as another user put its wrapper into its cgroups."""
        for cg in cgroups:
            for name in ("cgroup.procs", "tasks"):  # the wrappers join v1 cgroups via `tasks`
                with contextlib.suppress(OSError):
                    os.chown(os.path.join(cg, name), uid, gid)

    def memory_limit_hit(self, cgroups: tuple[str, ...]) -> bool:
        """True if the kernel OOM-killed something in the task's memory cgroup."""
        name = "memory.events" if self.v2 else "memory.oom_control"
        memory = self.bases.get("memory")
        # v1: only the memory controller's cgroup has the file (no failed open for the rest).
        prefix = "" if self.v2 or memory is None else f"{memory}/"
        for cg in cgroups:
            if not cg.startswith(prefix):
                continue
            try:
                with open(cg + "/" + name) as f:  # at every task's end: no Path
                    text = f.read()
            except OSError:
                continue
            for line in text.splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill" and value.strip() not in ("", "0"):
                    return True
        return False

    def remove(self, cgroups: tuple[str, ...]) -> None:
        """Give the task's cgroups back to the pool, or remove them (empty by now: the
        launcher killed what was left)."""
        if self.pool is not None and self.pool.give_back(cgroups):
            cgroups = ()
        retry, self._leftover = self._leftover, set()
        for cg in (*cgroups, *retry):
            try:
                os.rmdir(cg)
            except FileNotFoundError:
                pass
            except OSError:
                self._leftover.add(cg)
                continue
            with contextlib.suppress(OSError):
                os.rmdir(os.path.dirname(cg))  # the framework's, once empty

    @property
    def has_leftovers(self) -> bool:
        """True while a task cgroup whose removal failed (busy) waits to be removed."""
        return bool(self._leftover)

    def close(self) -> None:
        """Remove the agent's empty cgroup directories (those of running tasks stay, for the
        next agent to find)."""
        if self.pool is not None:
            self.pool.close()
        self.remove(())
        for base in set(self.bases.values()):
            try:
                children = [p for p in base.iterdir() if p.is_dir()]
            except OSError:
                continue
            for fdir in children:
                with contextlib.suppress(OSError):
                    os.rmdir(fdir)
            with contextlib.suppress(OSError):
                os.rmdir(base)


def remove_agent_cgroups(work_dir: Path) -> None:
    """Remove every empty cgroup directory of the agent of `work_dir`, deepest first: what
    an agent that was SIGKILLed (or stopped leaving its tasks, which then ended) left."""
    for base in set(detect_isolator(work_dir).bases.values()):
        for dirpath, _dirs, _files in sorted(os.walk(base), key=lambda w: -len(w[0])):
            with contextlib.suppress(OSError):
                os.rmdir(dirpath)


def tree_rss_bytes(pid: int) -> int:
    """Resident memory of a process and all its descendants (psutil fallback)."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss
    return total


def detect_isolator(work_dir: Path, *, enabled: bool = True) -> Isolator:
    """The cgroups this agent can use, found now; none if `enabled` is False."""
    if not enabled:
        return Isolator({})
    tag = "mesoslite-" + hashlib.sha1(str(work_dir.resolve()).encode()).hexdigest()[:12]
    bases: dict[str, Path] = {}
    own = _own_cgroups()
    mounts = _v1_mounts()
    if not any(c in own and c in mounts for c in CONTROLLERS):
        found = _v2_own_dir()
        if found is not None:
            v2 = delegate_v2(found, tag)
            if v2:
                return Isolator(v2, v2=True)
    for controller in CONTROLLERS:
        if controller not in own or controller not in mounts:
            continue
        mount_point, mount_root = mounts[controller]
        rel = os.path.relpath(own[controller], mount_root)
        base = Path(mount_point) / ("" if rel == "." else rel) / tag
        try:
            base.mkdir(exist_ok=True)
        except OSError as e:
            logger.info("cgroups v1 %s not usable path=%s: %s", controller, base, e.strerror or e)
            continue
        bases[controller] = base
    return Isolator(bases)


def delegate_v2(own_dir: Path, tag: str) -> dict[str, Path]:
    """`own_dir/tag` with the memory and cpu controllers delegated to its children, as
    {controller: that directory}; empty if the unified hierarchy cannot give them."""
    try:
        available = set((own_dir / "cgroup.controllers").read_text().split())
    except OSError:
        return {}
    wanted = sorted(c for c in CONTROLLERS if c in available)
    if not wanted:
        return {}
    base = own_dir / tag
    enable = " ".join("+" + c for c in wanted)
    try:
        base.mkdir(exist_ok=True)
        try:
            _write(own_dir / "cgroup.subtree_control", enable)
        except OSError as e:
            if e.errno != errno.EBUSY:
                raise
            # "No internal processes": move the agent into a leaf beside `base`, then retry.
            leaf = own_dir / f"{tag}-agent"
            leaf.mkdir(exist_ok=True)
            _write(leaf / "cgroup.procs", str(os.getpid()))
            _write(own_dir / "cgroup.subtree_control", enable)
        _write(base / "cgroup.subtree_control", enable)
    except OSError as e:
        logger.info("cgroups v2 not usable path=%s: %s", base, e.strerror or e)
        return {}
    return {c: base for c in wanted}


def _v2_own_dir() -> Path | None:
    """The agent's own cgroup in the unified (v2) hierarchy, if it is mounted."""
    try:
        cgroup_text = Path("/proc/self/cgroup").read_text()
        mountinfo_text = Path("/proc/self/mountinfo").read_text()
    except OSError:
        return None
    return v2_own_dir(cgroup_text, mountinfo_text)


def v2_own_dir(cgroup_text: str, mountinfo_text: str) -> Path | None:
    """Parse `/proc/self/cgroup` ("0::/path") and `/proc/self/mountinfo` (fstype cgroup2)."""
    own = next(
        (line[3:] for line in cgroup_text.splitlines() if line.startswith("0::")), None
    )
    if own is None:
        return None
    for line in mountinfo_text.splitlines():
        left, sep, right = line.partition(" - ")
        fields, rfields = left.split(), right.split()
        if sep and rfields and rfields[0] == "cgroup2" and len(fields) >= 5:
            rel = os.path.relpath(own, fields[3])
            return Path(fields[4]) / ("" if rel == "." else rel)
    return None


def _own_cgroups() -> dict[str, str]:
    out: dict[str, str] = {}
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3 or not parts[1]:
            continue  # the v2 line ("0::/path")
        for controller in parts[1].split(","):
            out[controller] = parts[2]
    return out


def _v1_mounts() -> dict[str, tuple[str, str]]:
    """controller -> (mount point, root of the hierarchy seen there)."""
    out: dict[str, tuple[str, str]] = {}
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fields, rfields = left.split(), right.split()
        if len(rfields) < 3 or rfields[0] != "cgroup":
            continue
        for opt in rfields[2].split(","):
            if opt in CONTROLLERS and opt not in out:
                out[opt] = (fields[4], fields[3])
    return out


def _write(path: Path, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)
