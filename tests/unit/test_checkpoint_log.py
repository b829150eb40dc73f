"""`CheckpointLog`: one append-only file per agent, read back exactly after a crash at any
write, compacted by rename, and migrated from the old directory-per-task layout (#15)."""

from __future__ import annotations

from pathlib import Path

from mesoslite.agent.checkpoint import CheckpointStore
from mesoslite.agent.checkpoint_log import CheckpointLog, read_checkpoints
from mesoslite.agent.exit_log import ExitLog, ExitSink, read_exit_status
from mesoslite.ids import AgentId, FrameworkId, TaskId
from mesoslite.model import CommandSpec, StatusSource, TaskSpec, TaskState, TaskStatus
from mesoslite.resources import parse_resources

FW = FrameworkId("fw-1")


def spec(task: str) -> TaskSpec:
    return TaskSpec(TaskId(task), CommandSpec.of_argv(["sleep", "9"]), parse_resources("cpus:1"))


def status(task: str, state: TaskState, n: int) -> TaskStatus:
    uuid = bytes([n]) * 16
    return TaskStatus(
        TaskId(task), FW, AgentId("a"), state, "m", "r", StatusSource.AGENT, uuid, 1.0
    )


def launch(log: CheckpointLog, task: str, pid: int = 100) -> ExitSink:
    sink = log.prepare_launch(FW, task)
    assert sink is not None
    log.save_task(spec(task), FW, pid, 7, [f"/cg/{task}"])
    return sink


def test_records_reach_the_file_only_when_flushed_and_read_back_in_order(tmp_path: Path) -> None:
    log = CheckpointLog(tmp_path)
    sink = launch(log, "t1")
    running, done = status("t1", TaskState.RUNNING, 1), status("t1", TaskState.FAILED, 2)
    log.append_update(running)
    log.append_update(done)
    log.append_ack(FW, "t1", running.uuid)
    log.mark_killing(FW, "t1")
    assert log.path.stat().st_size == 0  # buffered: one write per batch
    log.flush()
    (tmp_path / "meta" / "exits").write_text(f"{sink.tag} 3\n")
    [r] = CheckpointLog(tmp_path).recover()
    assert (r.spec, r.pid, r.start_ticks, r.cgroups) == (spec("t1"), 100, 7, ["/cg/t1"])
    assert (r.updates, r.pending, r.kill_requested, r.exit_status) == (
        [running, done],
        [done],
        True,
        3,
    )
    log.remove(FW, "t1")
    log.flush()
    assert CheckpointLog(tmp_path).recover() == []


def test_a_torn_last_record_is_skipped_and_the_next_record_still_reads(tmp_path: Path) -> None:
    log = CheckpointLog(tmp_path)
    launch(log, "t1")
    log.close()
    with open(log.path, "a") as f:
        f.write('{"f":"fw-1","t":"t2","o":"L","spec":{"task_')  # killed mid-write
    log = CheckpointLog(tmp_path)
    assert [r.task_id for r in log.recover()] == ["t1"]
    launch(log, "t3")
    log.close()
    assert [r.task_id for r in CheckpointLog(tmp_path).recover()] == ["t1", "t3"]


def test_the_log_is_compacted_to_its_live_records_and_the_exit_log_rotated(tmp_path: Path) -> None:
    log = CheckpointLog(tmp_path)
    log.compact_min_bytes = 4096
    keep = launch(log, "keep")
    log.append_update(status("keep", TaskState.RUNNING, 1))
    (tmp_path / "meta" / "exits").write_text(f"{keep.tag} 5\n")
    for i in range(100):
        launch(log, f"t{i}")
        log.remove(FW, f"t{i}")
        log.flush()
    assert log.path.stat().st_size < 4096
    assert (tmp_path / "meta" / "exits.old").exists()  # rotated, and still read:
    assert read_exit_status(keep) == 5
    [r] = CheckpointLog(tmp_path).recover()
    assert (r.task_id, [u.state for u in r.pending]) == ("keep", [TaskState.RUNNING])


def test_a_crash_between_compaction_steps_loses_nothing(tmp_path: Path) -> None:
    log = CheckpointLog(tmp_path)
    launch(log, "a")
    launch(log, "b")
    log.remove(FW, "a")
    log.close()
    before = log.path.read_bytes()
    # Killed while writing log.new (before the rename that commits it): log is whole.
    (tmp_path / "meta" / "log.new").write_bytes(before[:40])
    assert [r.task_id for r in CheckpointLog(tmp_path).recover()] == ["b"]
    assert not (tmp_path / "meta" / "log.new").exists()
    # Killed after the rename: the compacted log alone holds the live task.
    log = CheckpointLog(tmp_path)
    log.compact()
    log.close()
    assert len(log.path.read_bytes()) < len(before)
    assert [r.task_id for r in CheckpointLog(tmp_path).recover()] == ["b"]


def test_the_old_layout_is_migrated_once_and_its_exit_file_still_counts(tmp_path: Path) -> None:
    old = CheckpointStore(tmp_path)
    exit_file = old.prepare_launch(FW, "t1")
    assert exit_file is not None
    old.save_task(spec("t1"), FW, 4242, 9, ["/cg/x"])
    running = status("t1", TaskState.RUNNING, 1)
    old.append_update(running)
    old.append_ack(FW, "t1", running.uuid)
    old.mark_killing(FW, "t1")
    old.append_update(status("never-ran", TaskState.ERROR, 2))
    exit_file.write_text("-15\n")  # its wrapper, still running the old way, wrote this
    for _ in range(2):  # the second open finds it migrated already: no duplicates
        log = CheckpointLog(tmp_path)
        found = {r.task_id: r for r in log.recover()}
        assert set(found) == {"t1", "never-ran"}
        t1 = found[TaskId("t1")]
        assert (t1.pid, t1.updates, t1.pending, t1.kill_requested) == (4242, [running], [], True)
        assert t1.exit_status == -15
        assert read_exit_status(log.exit_sink(FW, "t1")) == -15
        log.close()
    assert sorted(p.name for p in (tmp_path / "meta" / FW / "t1").iterdir()) == ["exit_status"]
    log.remove(FW, "t1")
    assert not (tmp_path / "meta" / FW / "t1").exists()
    log.close()
    assert [r.task_id for r in read_checkpoints(tmp_path)] == ["never-ran"]


def test_exit_codes_are_found_by_tag_in_the_exit_log_or_its_rotated_file(tmp_path: Path) -> None:
    # Every wrapper appends to the agent's one exit log (a task run as another user too: its
    # wrapper stays root), so there is no file of a task's own to look in.
    exits = ExitLog(tmp_path / "exits")
    (tmp_path / "exits.old").write_text("cc 12\n")
    (tmp_path / "exits").write_text("aa 0\nbb -9\naa 3\ntorn")
    assert [exits.read(ExitSink(exits.path, t)) for t in ("aa", "bb", "cc", "dd")] == [
        3,
        -9,
        12,
        None,
    ]
    assert read_exit_status(ExitSink(exits.path, "cc")) == 12


def test_records_are_written_in_the_same_format_as_before_the_cheaper_encoding(
    tmp_path: Path,
) -> None:
    # Issue 15 (agentcost): records are built from a prefix per task; the lines must stay
    # those the reference encoding (`_line`, one `json.dumps` of the whole record) gives, so
    # a log written by either agent version reads back the same.
    from mesoslite.agent.checkpoint import spec_to_json, status_to_json
    from mesoslite.agent.checkpoint_log import _line

    log = CheckpointLog(tmp_path)
    sink = launch(log, "t1")
    odd = TaskStatus(
        TaskId("t1"),
        FW,
        AgentId("a"),
        TaskState.FAILED,
        'é "q"\n\\',
        "r",
        StatusSource.AGENT,
        bytes(range(16)),
        1.5,
        exit_code=-9,
        healthy=False,
    )
    log.append_update(odd)
    log.append_ack(FW, "t1", odd.uuid)
    log.mark_killing(FW, "t1")
    log.remove(FW, "t1")
    log.flush()
    expected = [
        _line(FW, "t1", {"o": "P", "x": sink.tag}),  # with its tag (unrecorded launches)
        _line(
            FW,
            "t1",
            {
                "o": "L",
                "spec": spec_to_json(spec("t1")),
                "pid": 100,
                "st": 7,
                "cg": ["/cg/t1"],
                "x": sink.tag,
            },
        ),
        _line(FW, "t1", {"o": "U", "s": status_to_json(odd)}),
        _line(FW, "t1", {"o": "A", "a": odd.uuid.hex()}),
        _line(FW, "t1", {"o": "K"}),
        _line(FW, "t1", {"o": "R"}),
    ]
    assert log.path.read_text().splitlines(keepends=True) == expected
    # Ids that cannot be checkpointed write nothing, as before.
    log.append_ack(FW, "../x", b"\0" * 16)
    log.flush()
    assert log.path.read_text().splitlines(keepends=True) == expected
