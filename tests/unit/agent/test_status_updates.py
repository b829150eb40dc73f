"""`StatusUpdateManager`: updates are kept in order per task until acknowledged, and resent."""

from __future__ import annotations

from mesoslite.agent.status_updates import StatusUpdateManager
from mesoslite.ids import AgentId, FrameworkId, TaskId
from mesoslite.model import StatusSource, TaskState, TaskStatus

FW = FrameworkId("fw-1")
RETRY_S = 5.0


def status(task: str, state: TaskState, fw: FrameworkId = FW) -> TaskStatus:
    return TaskStatus(TaskId(task), fw, AgentId("ag-1"), state, source=StatusSource.AGENT)


def states(updates: list[TaskStatus]) -> list[tuple[str, TaskState]]:
    return [(u.task_id, u.state) for u in updates]


def test_each_update_gets_a_fresh_16_byte_uuid() -> None:
    m = StatusUpdateManager(RETRY_S)
    uuids = {m.add(status(f"t{i}", TaskState.RUNNING), 0.0).uuid for i in range(1000)}
    assert len(uuids) == 1000
    assert all(len(u) == 16 for u in uuids)


def test_updates_are_kept_in_order_per_task_until_acknowledged() -> None:
    m = StatusUpdateManager(RETRY_S)
    running = m.add(status("t1", TaskState.RUNNING), 0.0)
    m.add(status("t2", TaskState.RUNNING), 0.0)
    finished = m.add(status("t1", TaskState.FINISHED), 0.0)
    assert m.pending_count == 3
    assert states(m.pending_of((FW, TaskId("t1")))) == [
        ("t1", TaskState.RUNNING),
        ("t1", TaskState.FINISHED),
    ]
    assert m.acknowledge(FW, TaskId("t1"), running.uuid)
    assert m.pending_of((FW, TaskId("t1"))) == [finished]
    assert m.acknowledge(FW, TaskId("t1"), finished.uuid)
    assert not m.has_pending((FW, TaskId("t1")))
    assert m.has_pending((FW, TaskId("t2")))
    assert m.pending_count == 1


def test_acknowledging_a_later_update_drops_the_earlier_ones_of_that_task_only() -> None:
    m = StatusUpdateManager(RETRY_S)
    m.add(status("t1", TaskState.RUNNING), 0.0)
    other = m.add(status("t2", TaskState.RUNNING), 0.0)
    finished = m.add(status("t1", TaskState.FINISHED), 0.0)
    assert m.acknowledge(FW, TaskId("t1"), finished.uuid)
    assert not m.has_pending((FW, TaskId("t1")))
    assert m.pending_of((FW, TaskId("t2"))) == [other]
    assert m.pending_count == 1


def test_unknown_or_repeated_acknowledgements_change_nothing() -> None:
    m = StatusUpdateManager(RETRY_S)
    running = m.add(status("t1", TaskState.RUNNING), 0.0)
    assert not m.acknowledge(FW, TaskId("t1"), b"x" * 16)
    assert not m.acknowledge(FW, TaskId("nope"), running.uuid)
    assert not m.acknowledge(FrameworkId("fw-2"), TaskId("t1"), running.uuid)
    assert m.acknowledge(FW, TaskId("t1"), running.uuid)
    assert not m.acknowledge(FW, TaskId("t1"), running.uuid)
    assert m.pending_count == 0


def test_nothing_is_due_before_the_retry_interval() -> None:
    m = StatusUpdateManager(RETRY_S)
    m.add(status("t1", TaskState.RUNNING), 0.0)
    assert m.due(RETRY_S - 0.01) == []


def test_a_due_stream_is_resent_whole_and_in_order_then_waits_again() -> None:
    m = StatusUpdateManager(RETRY_S)
    m.add(status("t1", TaskState.RUNNING), 0.0)
    m.add(status("t2", TaskState.RUNNING), 3.0)
    # t1's FINISHED is younger than the retry interval, but goes with its stream, after RUNNING.
    m.add(status("t1", TaskState.FINISHED), 4.0)
    assert states(m.due(5.0)) == [("t1", TaskState.RUNNING), ("t1", TaskState.FINISHED)]
    assert m.due(5.0) == []
    assert states(m.due(8.0)) == [("t2", TaskState.RUNNING)]
    assert states(m.due(10.0)) == [("t1", TaskState.RUNNING), ("t1", TaskState.FINISHED)]


def test_resent_updates_keep_their_uuids() -> None:
    m = StatusUpdateManager(RETRY_S)
    first = m.add(status("t1", TaskState.RUNNING), 0.0)
    assert m.due(RETRY_S) == [first]
    assert m.resend_all(RETRY_S) == [first]


def test_acknowledged_updates_are_not_resent() -> None:
    m = StatusUpdateManager(RETRY_S)
    running = m.add(status("t1", TaskState.RUNNING), 0.0)
    finished = m.add(status("t1", TaskState.FINISHED), 0.0)
    m.acknowledge(FW, TaskId("t1"), running.uuid)
    assert m.due(RETRY_S) == [finished]
    m.acknowledge(FW, TaskId("t1"), finished.uuid)
    assert m.due(10 * RETRY_S) == []
    assert m.resend_all(10 * RETRY_S) == []


def test_a_stream_emptied_and_refilled_starts_a_new_retry_clock() -> None:
    m = StatusUpdateManager(RETRY_S)
    running = m.add(status("t1", TaskState.RUNNING), 0.0)
    m.acknowledge(FW, TaskId("t1"), running.uuid)
    m.add(status("t1", TaskState.FINISHED), 4.0)
    assert m.due(5.0) == []
    assert states(m.due(9.0)) == [("t1", TaskState.FINISHED)]


def test_resend_all_sends_everything_or_only_the_given_frameworks_and_restarts_the_clock() -> None:
    m = StatusUpdateManager(RETRY_S)
    fw2 = FrameworkId("fw-2")
    m.add(status("t1", TaskState.RUNNING), 0.0)
    m.add(status("t2", TaskState.RUNNING, fw2), 0.0)
    m.add(status("t1", TaskState.FAILED), 0.0)
    assert states(m.resend_all(1.0, [fw2])) == [("t2", TaskState.RUNNING)]
    assert states(m.resend_all(1.0)) == [
        ("t1", TaskState.RUNNING),
        ("t1", TaskState.FAILED),
        ("t2", TaskState.RUNNING),
    ]
    assert m.due(5.5) == []
    assert len(m.due(6.0)) == 3
