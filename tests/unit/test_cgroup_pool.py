"""`CgroupPool`: task cgroups reused with their limits reset, never while they hold a process
or after an OOM kill, and never more than the pool's size (#15)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mesoslite.agent.cgroup_pool import CgroupPool
from mesoslite.agent.isolation import detect_isolator

MB = 1024 * 1024


def tree(tmp_path: Path) -> dict[str, Path]:
    """Two controller directories on a plain file tree (the kernel's rules aside)."""
    bases = {"memory": tmp_path / "memory", "cpu": tmp_path / "cpu"}
    for b in bases.values():
        b.mkdir()
    return bases


def empty_cgroup(slot: tuple[str, ...]) -> None:
    for d in slot:
        Path(d, "cgroup.procs").write_text("")
    Path(slot[0], "memory.oom_control").write_text("oom_kill_disable 0\noom_kill 0\n")


def test_a_slot_is_reused_and_only_changed_limits_are_written(tmp_path: Path) -> None:
    pool = CgroupPool(tree(tmp_path))
    slot = pool.take(64, 0.5)
    mem, cpu = Path(slot[0]), Path(slot[1])
    assert (mem / "memory.limit_in_bytes").read_text() == str(64 * MB)
    assert (cpu / "cpu.cfs_quota_us").read_text() == "50000"
    empty_cgroup(slot)
    assert pool.give_back(slot)
    (cpu / "cpu.shares").write_text("sentinel")
    assert pool.take(64, 0.5) == slot  # the same shape: nothing written
    assert (cpu / "cpu.shares").read_text() == "sentinel"
    assert pool.give_back(slot)
    assert pool.take(0, 2) == slot  # another shape: every limit reset
    assert (mem / "memory.limit_in_bytes").read_text() == "-1"
    assert ((cpu / "cpu.cfs_quota_us").read_text(), (cpu / "cpu.shares").read_text()) == (
        "200000",
        "2048",
    )


def test_a_slot_holding_a_process_or_after_an_oom_kill_is_not_reused(tmp_path: Path) -> None:
    pool = CgroupPool(tree(tmp_path))
    busy, oomed = pool.take(64, 1), pool.take(64, 1)
    empty_cgroup(busy)
    empty_cgroup(oomed)
    Path(busy[1], "cgroup.procs").write_text("4242\n")
    Path(oomed[0], "memory.oom_control").write_text("oom_kill_disable 0\noom_kill 1\n")
    assert not pool.give_back(busy)
    assert not pool.give_back(oomed)
    assert pool.free_count == 0
    assert pool.take(64, 1) not in (busy, oomed)


def test_the_pool_is_bounded_and_skips_names_of_an_earlier_agent(tmp_path: Path) -> None:
    bases = tree(tmp_path)
    (bases["memory"] / "pool" / "0").mkdir(parents=True)  # an earlier agent's task holds it
    pool = CgroupPool(bases, size=2)
    slots = [pool.take(1, 0.1) for _ in range(3)]
    assert [Path(s[0]).name for s in slots] == ["1", "2", "3"]
    assert not (bases["cpu"] / "pool" / "0").exists()  # its half-made twin was removed
    for s in slots:
        empty_cgroup(s)
    assert [pool.give_back(s) for s in slots] == [True, True, False]
    pool.close()  # (on this plain tree the files in them keep the directories)
    assert pool.free_count == 0


def test_cgroups_that_are_not_pool_slots_are_left_to_the_caller(tmp_path: Path) -> None:
    pool = CgroupPool(tree(tmp_path))
    other = tmp_path / "memory" / "fw" / "t1"
    other.mkdir(parents=True)
    assert not pool.give_back((str(other),))


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
def test_on_real_cgroups_memory_limits_go_up_and_down_on_reuse(tmp_path: Path) -> None:
    iso = detect_isolator(tmp_path)
    if iso.pool is None or "memory" not in iso.bases:
        iso.close()
        pytest.skip("no cgroup v1 memory hierarchy")
    try:
        slot = iso.prepare("fw", "a", _res("cpus:0.5;mem:64"))
        mem = next(Path(d) for d in slot if "/memory/" in d)
        iso.remove(slot)
        # Raised above memsw's old value: refused by the kernel unless memsw goes first.
        assert iso.prepare("fw", "b", _res("cpus:1;mem:128")) == slot
        assert (mem / "memory.limit_in_bytes").read_text().strip() == str(128 * MB)
        iso.remove(slot)
        assert iso.prepare("fw", "c", _res("cpus:1;mem:32")) == slot
        assert (mem / "memory.limit_in_bytes").read_text().strip() == str(32 * MB)
        iso.remove(slot)
    finally:
        iso.close()
    assert not any(b.exists() for b in iso.bases.values())


def _res(text: str):  # type: ignore[no-untyped-def]
    from mesoslite.resources import parse_resources

    return parse_resources(text)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
def test_on_real_cgroups_slots_an_earlier_agent_left_are_skipped_then_removed(
    tmp_path: Path,
) -> None:
    killed = detect_isolator(tmp_path)  # an agent SIGKILLed with a free slot: no close
    if killed.pool is None or "memory" not in killed.bases:
        killed.close()
        pytest.skip("no cgroup v1 memory hierarchy")
    left = killed.prepare("fw", "a", _res("cpus:0.5;mem:64"))
    iso = detect_isolator(tmp_path)
    try:
        assert iso.pool is not None
        taken = iso.prepare("fw", "b", _res("cpus:0.5;mem:64"))
        assert taken and not set(taken) & set(left)
        iso.remove(taken)
    finally:
        iso.close()
    assert not any(Path(d).exists() for d in (*left, *taken))
    assert not any(b.exists() for b in iso.bases.values())
