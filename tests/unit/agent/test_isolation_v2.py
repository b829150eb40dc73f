"""cgroups v2 isolation on a file tree shaped like the unified hierarchy.

Hosts like ours have no memory or cpu controller in cgroups v2, so the kernel side cannot run
here; these tests pin the file protocol (delegation, limits, OOM detection) the agent speaks.
"""

from __future__ import annotations

from pathlib import Path

from mesoslite.agent.isolation import Isolator, delegate_v2, v2_own_dir
from mesoslite.resources import parse_resources

MOUNTINFO = (
    "25 30 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw\n"
    "26 30 0:23 / /proc rw,nosuid - proc proc rw\n"
)


def test_the_agents_own_v2_cgroup_is_found_from_proc() -> None:
    own = v2_own_dir("0::/system.slice/mesoslite-agent.service\n", MOUNTINFO)
    assert own == Path("/sys/fs/cgroup/system.slice/mesoslite-agent.service")
    assert v2_own_dir("0::/\n", MOUNTINFO) == Path("/sys/fs/cgroup")
    # A v1-only host: no "0::" line, or no cgroup2 mount.
    assert v2_own_dir("4:memory:/x\n", MOUNTINFO) is None
    assert v2_own_dir("0::/x\n", "26 30 0:23 / /proc rw - proc proc rw\n") is None


def test_memory_and_cpu_are_delegated_to_the_agents_directory(tmp_path: Path) -> None:
    (tmp_path / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    bases = delegate_v2(tmp_path, "mesoslite-abc")
    base = tmp_path / "mesoslite-abc"
    assert bases == {"cpu": base, "memory": base}
    assert (tmp_path / "cgroup.subtree_control").read_text() == "+cpu +memory"
    assert (base / "cgroup.subtree_control").read_text() == "+cpu +memory"


def test_without_memory_or_cpu_controllers_v2_is_not_used(tmp_path: Path) -> None:
    (tmp_path / "cgroup.controllers").write_text("cpuset io pids\n")
    assert delegate_v2(tmp_path, "mesoslite-abc") == {}
    assert delegate_v2(tmp_path / "missing", "mesoslite-abc") == {}


def test_a_task_gets_a_leaf_with_memory_max_and_cpu_max(tmp_path: Path) -> None:
    base = tmp_path / "mesoslite-abc"
    base.mkdir()
    isolator = Isolator({"cpu": base, "memory": base}, v2=True)
    assert isolator.kind == "cgroups-v2:cpu,memory" and not isolator.watches_memory
    (leaf,) = isolator.prepare("fw-1", "t-1", parse_resources("cpus:0.5;mem:64"))
    d = Path(leaf)
    assert d == base / "fw-1" / "t-1"
    assert (base / "fw-1" / "cgroup.subtree_control").read_text() == "+cpu +memory"
    assert (d / "memory.max").read_text() == str(64 * 1024 * 1024)
    assert (d / "memory.swap.max").read_text() == "0"
    assert (d / "cpu.max").read_text() == "50000 100000"
    assert 1 <= int((d / "cpu.weight").read_text()) <= 10000

    (d / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 0\n")
    assert not isolator.memory_limit_hit((leaf,))
    (d / "memory.events").write_text("low 0\nhigh 0\nmax 9\noom 2\noom_kill 1\n")
    assert isolator.memory_limit_hit((leaf,))
