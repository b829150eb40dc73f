"""`CheckpointStore`: tasks and updates read back as written, acks applied, torn lines skipped."""

from __future__ import annotations

from pathlib import Path

from mesoslite.agent.checkpoint import CheckpointStore
from mesoslite.ids import AgentId, FrameworkId, TaskId
from mesoslite.model import (
    CommandSpec,
    HealthCheckSpec,
    StatusSource,
    TaskSpec,
    TaskState,
    TaskStatus,
)
from mesoslite.resources import parse_resources

FW = FrameworkId("fw-1")


def status(task: str, state: TaskState, uuid: bytes, **kw: object) -> TaskStatus:
    return TaskStatus(
        TaskId(task), FW, AgentId("ag-1"), state, "m", "r", StatusSource.AGENT, uuid,
        1.5, **kw,  # type: ignore[arg-type]
    )


def test_a_task_and_its_unacknowledged_updates_are_recovered_in_order(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    spec = TaskSpec(
        TaskId("t1"), CommandSpec.of_argv(["sleep", "9"], environment={"A": "1"}),
        parse_resources("cpus:0.5;mem:32;ports:[31000-31001]"), name="n",
        kill_grace_period_s=2, labels={"l": "v"},
        health_check=HealthCheckSpec("command", command="true"),
        allocation_role="eng/ml",  # kept so a new master accounts it to the same role (#4)
    )
    exit_file = store.prepare_launch(FW, "t1")
    assert exit_file == tmp_path / "meta" / FW / "t1" / "exit_status"
    store.save_task(spec, FW, 1234, 5678, ["/cg/a"])
    running = status("t1", TaskState.RUNNING, b"1" * 16, healthy=True)
    done = status("t1", TaskState.FAILED, b"2" * 16, exit_code=3)
    store.append_update(running)
    store.append_update(done)
    store.append_ack(FW, "t1", running.uuid)
    with open(tmp_path / "meta" / FW / "t1" / "updates", "a") as f:
        f.write('{"u": {"task_id": "t1", "fram')  # the agent was killed mid-write
    exit_file.write_text("3\n")
    [r] = store.recover()
    assert (r.spec, r.pid, r.start_ticks, r.cgroups) == (spec, 1234, 5678, ["/cg/a"])
    assert r.updates == [running, done]
    assert r.pending == [done]
    assert r.exit_status == 3
    store.remove(FW, "t1")
    assert store.recover() == []
    assert not (tmp_path / "meta" / FW).exists()


def test_updates_of_a_task_that_never_ran_are_kept_too(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    error = status("bad", TaskState.ERROR, b"3" * 16)
    store.append_update(error)
    [r] = store.recover()
    assert (r.spec, r.pending, r.last_state) == (None, [error], TaskState.ERROR)
