"""A task cgroup that cannot be removed yet (busy) is removed at a later removal."""

from __future__ import annotations

from pathlib import Path

import pytest

from mesoslite.agent.isolation import Isolator


def test_a_busy_task_directory_is_removed_at_the_next_removal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Plain directories stand in for cgroups: rmdir behaves the same, and "busy" is a file
    # inside (rmdir fails with ENOTEMPTY as a cgroup with a process fails with EBUSY).
    iso = Isolator({"memory": tmp_path})
    first, second = tmp_path / "fw" / "t1", tmp_path / "fw" / "t2"
    first.mkdir(parents=True)
    second.mkdir()
    (first / "busy").touch()
    iso.remove((str(first),))
    assert first.exists()
    (first / "busy").unlink()
    iso.remove((str(second),))
    assert not first.exists() and not second.exists() and not (tmp_path / "fw").exists()
