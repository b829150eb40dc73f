"""`AgentState` on a virtual clock: launches, exits, kills, updates, health checks, recovery.

No process, socket or real timer: `AgentHarness` plays the shell (see harness.py).
"""

from __future__ import annotations

import signal

import pytest

from mesoslite.agent import effects as fx
from mesoslite.agent.recovered import RecoveredTask
from mesoslite.ids import AgentId, FrameworkId, TaskId
from mesoslite.model import HealthCheckSpec, StatusSource, TaskState, TaskStatus
from mesoslite.resources import parse_resources

from .harness import FW, AgentHarness, key, spec

SIGTERM, SIGKILL = -int(signal.SIGTERM), -int(signal.SIGKILL)


# ---------------------------------------------------------------------- the life of a task


def test_a_task_goes_staging_running_finished_and_is_forgotten_once_acknowledged() -> None:
    h = AgentHarness()
    effects = h.launch(spec("t1"))
    assert effects == [fx.StartProcess(key("t1"))]
    assert h.state.tasks[key("t1")].state == TaskState.STAGING
    assert h.state.free == parse_resources("cpus:1.9;mem:240")
    h.spawn("t1")
    h.exit("t1", 0)
    h.advance(0.01)
    # RUNNING and FINISHED made within the flush window travel in one message.
    assert [[s.state for s in m] for m in h.messages()] == [[TaskState.RUNNING, TaskState.FINISHED]]
    done = h.terminal("t1")
    assert (done.exit_code, done.reason, done.message) == (
        0,
        "COMMAND_EXITED",
        "command exited with status 0",
    )
    assert (done.agent_id, done.source, done.timestamp) == (
        "ag-1",
        StatusSource.AGENT,
        h.now - 0.01,
    )
    # Each update is checkpointed before it can be sent.
    checkpointed = [e.status for e in h.effects(fx.CheckpointUpdate)]
    assert checkpointed == list(h.sent("t1"))
    assert h.state.free == h.state.total  # freed when it ended, not when acknowledged
    assert h.state.registration()[1] == [(FW, spec("t1"), TaskState.FINISHED)]
    h.ack(done)  # acknowledges RUNNING too
    assert h.state.tasks == {}
    assert h.state.updates.pending_count == 0
    assert h.state.registration()[1] == []
    assert h.effects(fx.RemoveCheckpoint) == [fx.RemoveCheckpoint(key("t1"))]


def test_a_failing_or_signalled_command_is_task_failed_with_its_code() -> None:
    h = AgentHarness()
    h.start(spec("three"), spec("term"))
    h.exit("three", 3)
    h.exit("term", SIGTERM)
    h.advance(0.01)
    three, term = h.terminal("three"), h.terminal("term")
    assert (three.state, three.exit_code, three.message) == (
        TaskState.FAILED,
        3,
        "command exited with status 3",
    )
    assert (term.state, term.message) == (TaskState.FAILED, "command terminated by SIGTERM")


def test_a_launch_that_does_not_fit_is_task_error_at_once_and_changes_nothing() -> None:
    h = AgentHarness()
    h.launch(spec("big", "cpus:1.5;mem:16"))
    free = h.state.free
    effects = h.launch(spec("t2", "cpus:1"))
    assert not any(isinstance(e, fx.StartProcess) for e in effects)
    h.advance(0.01)
    error = h.terminal("t2")
    assert error.state == TaskState.ERROR
    assert "cpus: wants 1, has 0.5" in error.message
    assert h.state.free == free


def test_a_launch_of_a_task_already_running_is_ignored() -> None:
    h = AgentHarness()
    h.start(spec("t1"))
    assert h.launch(spec("t1")) == []
    assert h.states("t1") == [TaskState.RUNNING]


def test_a_spawn_that_fails_is_reported_with_the_launchers_state_and_frees_the_task() -> None:
    h = AgentHarness()
    h.launch(spec("t1"))
    h.run(h.state.launch_failed(key("t1"), TaskState.FAILED, "LAUNCH_FAILED", "no such", h.now))
    h.advance(0.01)
    assert (h.terminal("t1").state, h.terminal("t1").message) == (TaskState.FAILED, "no such")
    assert h.state.free == h.state.total


def test_killing_an_unknown_task_answers_task_dropped() -> None:
    h = AgentHarness()
    h.kill("ghost")
    h.advance(0.01)
    assert (h.terminal("ghost").state, h.terminal("ghost").reason) == (
        TaskState.DROPPED,
        "RECONCILIATION",
    )


def test_a_task_killed_before_its_process_started_is_killed_and_never_spawned() -> None:
    h = AgentHarness()
    h.launch(spec("t1"))
    h.kill("t1")
    assert h.state.wants_start(key("t1")) is None
    h.advance(0.01)
    assert h.terminal("t1").message == "killed before it started"
    assert h.signals("t1") == []


def test_shutdown_framework_kills_only_that_frameworks_tasks() -> None:
    h = AgentHarness()
    h.start(spec("a"))
    h.start(spec("b"), fw=FrameworkId("fw-2"))
    h.run(h.state.shutdown_framework(FW, h.now))
    assert h.signals("a") == [(h.now, False)]
    assert [e.key for e in h.effects(fx.SignalTask)] == [key("a")]


# ---------------------------------------------------------------------- kills and grace


def test_a_kill_sends_sigterm_then_sigkill_when_the_grace_period_is_over() -> None:
    h = AgentHarness(kill_grace_period_s=3.0)
    h.start(spec("t1"))
    t0 = h.now
    h.kill("t1")
    assert h.effects(fx.CheckpointKilling) == [fx.CheckpointKilling(key("t1"))]
    assert h.signals("t1") == [(t0, False)]
    h.advance(2.9)
    assert h.signals("t1") == [(t0, False)]
    h.advance(0.2)
    assert h.signals("t1") == [(t0, False), (t0 + 3.0, True)]
    h.exit("t1", SIGKILL)
    h.advance(0.01)
    done = h.terminal("t1")
    assert (done.state, done.reason, done.exit_code) == (TaskState.KILLED, "TASK_KILLED", SIGKILL)
    assert done.message == "killed; command terminated by SIGKILL"


def test_a_task_ending_within_its_grace_is_not_sigkilled() -> None:
    h = AgentHarness()
    h.start(spec("t1", kill_grace_period_s=1.0))  # the task's own grace beats the agent's
    h.kill("t1")
    h.exit("t1", SIGTERM)
    assert fx.KillTimer(key("t1")) not in h.timers()
    h.advance(10)
    assert [force for _, force in h.signals("t1")] == [False]
    assert h.terminal("t1").exit_code == SIGTERM


def test_a_shorter_second_kill_cuts_the_first_ones_grace_and_a_longer_one_does_not_extend() -> None:
    h = AgentHarness()
    h.start(spec("t1"))
    t0 = h.now
    h.kill("t1", 60.0)
    h.kill("t1", 0.2)
    h.kill("t1", 30.0)
    h.advance(0.3)
    assert h.signals("t1") == [(t0, False), (t0 + 0.2, True)]
    assert len(h.effects(fx.CheckpointKilling)) == 1


def test_the_memory_watch_sigkills_a_task_over_its_mem_and_reports_memory_limit() -> None:
    h = AgentHarness()
    h.start(spec("hog", "cpus:0.5;mem:64"), spec("ok", "cpus:0.1;mem:16"))
    assert set(h.state.memory_watched()) == {(key("hog"), 64.0), (key("ok"), 16.0)}
    assert h.run(h.state.memory_used(key("ok"), 16 * 2**20)) == []
    h.run(h.state.memory_used(key("hog"), 65 * 2**20))
    assert h.signals("hog") == [(h.now, True)]
    assert key("hog") not in dict(h.state.memory_watched())
    h.exit("hog", SIGKILL)
    h.advance(0.01)
    done = h.terminal("hog")
    assert (done.state, done.reason) == (TaskState.FAILED, "MEMORY_LIMIT")
    assert done.message == "killed: over its memory limit of 64 MB (command terminated by SIGKILL)"


# ---------------------------------------------------------------------- updates


def test_unacknowledged_updates_are_resent_in_order_every_retry_period_until_acknowledged() -> None:
    h = AgentHarness(status_update_retry_s=5.0)
    h.start(spec("t1"))
    h.exit("t1", 0)
    h.advance(0.01)
    first = h.terminal("t1")
    h.advance(4.9)
    assert len(h.sent("t1")) == 2
    h.advance(1.5)  # due 5 s after it was sent, seen at the next retry tick (every 1.25 s)
    assert h.states("t1") == [TaskState.RUNNING, TaskState.FINISHED] * 2
    assert h.sent("t1")[3].uuid == first.uuid
    h.advance(5.5)
    assert len(h.sent("t1")) == 6
    h.ack(first)
    h.advance(60)
    assert len(h.sent("t1")) == 6
    before = len(h.log)
    h.run(h.state.reconcile([], h.now))
    assert h.log[before:] == []


def test_an_update_that_waited_unsent_is_not_resent_the_moment_it_is_first_sent() -> None:
    h = AgentHarness(status_update_retry_s=0.3)
    h.launch(spec("t1"))
    h.spawn("t1")
    # A loop iteration longer than the retry period: the resend check comes before the
    # flush window's timer, with the update still unsent.
    h.run(h.state.timer_fired(fx.RetryTimer(), h.now + 1.0))
    assert [len(m) for m in h.messages()] == [1]


def test_updates_wait_while_disconnected_and_all_go_at_once_on_registration() -> None:
    h = AgentHarness(connect=False)
    h.start(spec("a"), spec("b"))
    h.advance(30)  # retries do nothing without a master
    assert h.messages() == []
    assert h.effects(fx.SaveAgentId) == []
    h.connect()
    assert h.effects(fx.SaveAgentId) == [fx.SaveAgentId(AgentId("ag-1"))]
    assert [(s.task_id, s.state) for s in h.messages()[0]] == [
        ("a", TaskState.RUNNING),
        ("b", TaskState.RUNNING),
    ]
    h.run(h.state.registered(AgentId("ag-1"), h.now))  # same id again: not saved again
    assert len(h.effects(fx.SaveAgentId)) == 1


def test_twenty_updates_made_together_travel_in_one_message() -> None:
    h = AgentHarness()
    h.start(*(spec(f"t{i}", "cpus:0.01;mem:1") for i in range(20)))
    assert [len(m) for m in h.messages()] == [20]


# ---------------------------------------------------------------------- health checks


HC = HealthCheckSpec(
    "command",
    command="true",
    delay_s=1.0,
    interval_s=2.0,
    timeout_s=1.0,
    grace_period_s=0.0,
    consecutive_failures=3,
)


def checks(h: AgentHarness) -> list[float]:
    return [t for t, e in h.log if isinstance(e, fx.RunHealthCheck)]


def test_health_checks_run_after_their_delay_then_every_interval_after_each_result() -> None:
    h = AgentHarness()
    h.start(spec("t1", health_check=HC))
    t0 = h.now - 0.01
    h.advance(0.98)
    assert checks(h) == []
    h.advance(0.02)
    assert checks(h) == [pytest.approx(t0 + 1.0)]
    h.advance(0.5)  # the check takes half a second
    h.health("t1", True, "command exited with status 0")
    h.advance(2.0)
    assert checks(h) == [pytest.approx(t0 + 1.0), pytest.approx(t0 + 3.5)]
    healthy = [s for s in h.sent("t1") if s.healthy]
    assert [(s.state, s.reason) for s in healthy] == [
        (TaskState.RUNNING, "TASK_HEALTH_CHECK_STATUS_UPDATED")
    ]


def test_consecutive_health_check_failures_kill_the_task_as_unhealthy() -> None:
    h = AgentHarness(kill_grace_period_s=1.0)
    h.start(spec("t1", health_check=HC))
    h.advance(1.0)
    h.health("t1", True)
    for _ in range(3):
        h.advance(2.0)
        h.health("t1", False, "command exited with status 1")
    assert h.signals("t1") == [(h.now, False)]
    h.advance(5.0)
    assert len(checks(h)) == 4  # no check once the kill began
    h.exit("t1", SIGKILL)
    assert h.effects(fx.StopHealthCheck) == [fx.StopHealthCheck(key("t1"))]
    h.advance(0.01)
    done = h.terminal("t1")
    assert (done.state, done.reason, done.healthy) == (TaskState.KILLED, "TASK_UNHEALTHY", False)
    assert "3 consecutive failures, the last: command exited with status 1" in done.message
    unhealthy = {s.uuid for s in h.sent("t1") if s.healthy is False and not s.state.terminal}
    assert len(unhealthy) == 1  # reported once, when it changed (resent until acknowledged)
    assert not any(isinstance(t, fx.HealthTimer) for t in h.timers())


def test_failures_within_the_health_grace_period_neither_count_nor_are_reported() -> None:
    h = AgentHarness()
    lenient = HealthCheckSpec(
        "tcp", port=1, interval_s=0.1, grace_period_s=30, consecutive_failures=2
    )
    h.start(spec("deaf", health_check=lenient))
    for _ in range(20):
        h.advance(0.1)
        h.health("deaf", False, "connection refused")
    assert {s.healthy for s in h.sent("deaf")} == {None}
    assert h.signals("deaf") == []


# ---------------------------------------------------------------------- stopping


def test_a_stopping_agent_kills_waiting_launches_and_with_cleanup_its_running_tasks() -> None:
    h = AgentHarness(recover="cleanup", kill_grace_period_s=2.0)
    h.start(spec("running", kill_grace_period_s=5.0))
    h.launch(spec("waiting"))
    effects, longest = h.state.begin_stop(h.now)
    h.run(effects)
    assert longest == 5.0
    assert h.signals("running") == [(h.now, False)]
    h.launch(spec("late"))
    h.run(h.state.flush(h.now))
    assert (h.terminal("waiting").state, h.terminal("waiting").message) == (
        TaskState.KILLED,
        "agent is stopping",
    )
    assert (h.terminal("late").state, h.terminal("late").message) == (
        TaskState.ERROR,
        "the agent is stopping",
    )


def test_a_reconnect_agent_stopping_leaves_running_tasks_alone() -> None:
    h = AgentHarness(recover="reconnect")
    h.start(spec("running"))
    effects, longest = h.state.begin_stop(h.now)
    assert (effects, longest) == ([], 0.0)


# ---------------------------------------------------------------------- recovery


def status(task_id: str, state: TaskState, uuid: bytes) -> TaskStatus:
    return TaskStatus(
        TaskId(task_id), FW, AgentId("ag-1"), state, source=StatusSource.AGENT, uuid=uuid
    )


def recovered(
    task_id: str, *updates: TaskStatus, pending: int = -1, kill_requested: bool = False
) -> RecoveredTask:
    """A checkpoint read back: the updates made, the last `pending` of them unacknowledged."""
    r = RecoveredTask(
        FW,
        TaskId(task_id),
        spec=spec(task_id),
        pid=100,
        start_ticks=7,
        updates=list(updates),
        kill_requested=kill_requested,
    )
    r.pending = list(updates) if pending < 0 else list(updates)[len(updates) - pending :]
    return r


def test_recovery_adopts_live_processes_reports_ended_ones_and_resends_pending_updates() -> None:
    h = AgentHarness(connect=False)
    running = status("live", TaskState.RUNNING, b"1" * 16)
    found = [
        recovered("live", running),
        recovered("ended", status("ended", TaskState.RUNNING, b"2" * 16), pending=0),
        recovered("silent", status("silent", TaskState.RUNNING, b"3" * 16), pending=0),
        recovered("done", status("done", TaskState.FINISHED, b"4" * 16), pending=0),
    ]
    found.append(RecoveredTask(FW, TaskId("unrecorded")))
    effects = h.recover(found)
    adopts = [e for e in effects if isinstance(e, fx.AdoptProcess)]
    assert [e.key for e in adopts] == [key("live"), key("ended"), key("silent")]
    assert adopts[0] == fx.AdoptProcess(key("live"), 100, 7, ())
    assert fx.RemoveCheckpoint(key("done")) in effects
    h.run(h.state.adopted(key("live"), True, None, h.now))
    h.run(h.state.adopted(key("ended"), False, 3, h.now))
    h.run(h.state.adopted(key("silent"), False, None, h.now))
    h.connect()
    (message,) = h.messages()
    assert message[0] == running  # resent as it was, uuid unchanged
    assert h.state.tasks[key("live")].state == TaskState.RUNNING
    ended = h.terminal("ended")
    assert (ended.state, ended.exit_code, ended.message) == (
        TaskState.FAILED,
        3,
        "command exited with status 3 (while the agent was down)",
    )
    assert (h.terminal("silent").state, h.terminal("silent").reason) == (
        TaskState.FAILED,
        "AGENT_RESTARTED",
    )
    assert (h.terminal("unrecorded").state, h.terminal("unrecorded").reason) == (
        TaskState.LOST,
        "AGENT_RESTARTED",
    )
    # Only the live task holds resources.
    assert h.state.free == h.state.total - spec("live").resources


def test_a_task_being_killed_when_the_agent_died_is_killed_again_or_reported_killed() -> None:
    h = AgentHarness()
    h.recover(
        [
            recovered("alive", status("alive", TaskState.RUNNING, b"1" * 16), kill_requested=True),
            recovered("gone", status("gone", TaskState.RUNNING, b"2" * 16), kill_requested=True),
        ]
    )
    h.run(h.state.adopted(key("alive"), True, None, h.now))
    h.run(h.state.adopted(key("gone"), False, SIGTERM, h.now))
    assert h.signals("alive") == [(h.now, False)]
    h.advance(3.01)
    assert h.signals("alive")[-1] == (h.now - 0.01, True)  # the grace restarts
    gone = h.terminal("gone")
    assert (gone.state, gone.message) == (TaskState.KILLED, "killed; command terminated by SIGTERM")


def test_a_cleanup_agent_kills_what_it_recovers_and_a_process_without_status_is_killed() -> None:
    h = AgentHarness(recover="cleanup")
    h.recover([recovered("t1", status("t1", TaskState.RUNNING, b"1" * 16))])
    h.run(h.state.adopted(key("t1"), True, None, h.now))
    assert [force for _, force in h.signals("t1")] == [False]
    h.exit("t1", SIGKILL, status_lost=True)
    h.advance(0.01)
    done = h.terminal("t1")
    assert (done.state, done.message) == (
        TaskState.KILLED,
        "the task's process ended; its exit status is lost",
    )


def test_a_recovered_task_that_no_longer_fits_is_kept_but_not_counted() -> None:
    h = AgentHarness(resources=parse_resources("cpus:0.05;mem:256"))
    h.recover([recovered("t1", status("t1", TaskState.RUNNING, b"1" * 16))])
    h.run(h.state.adopted(key("t1"), True, None, h.now))
    assert h.state.free == parse_resources("cpus:0.05;mem:256")
    h.exit("t1", 0)
    assert h.state.free == parse_resources("cpus:0.05;mem:256")
