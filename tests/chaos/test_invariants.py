"""The chaos invariant checkers find the violations they exist for (on a hand-written ledger
and real processes), so that a chaos scenario passing means something."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

from mesoslite.jobs.model import (
    AttemptView,
    InstanceState,
    InstanceView,
    JobState,
    JobType,
    JobView,
    RunState,
    RunView,
)
from mesoslite.testing.chaos import Ledger, task_processes
from mesoslite.testing.invariants import (
    TaskRecord,
    cron_times_not_once,
    history_succeeded_twice,
    stale_tasks,
    succeeded_twice,
    twice_while_cut_off,
    updates_lost,
)
from mesoslite.testing.local_cluster import MARKER_ENV


def run_wrapped(ledger: Ledger, body: str, task_id: str, job: str, run: str, i: int) -> int:
    env = {**os.environ, "MESOSLITE_TASK_ID": task_id, "MESOSLITE_JOB": job,
           "MESOSLITE_JOB_RUN": run, "MESOSLITE_JOB_INSTANCE": str(i)}
    return subprocess.run(["sh", "-c", ledger.wrap(body)], env=env).returncode


def job_view(name: str, instances: list[InstanceView], runs: tuple[RunView, ...] = ()) -> JobView:
    return JobView(name, JobType.BATCH, JobState.SUCCEEDED, "", len(instances), 0.0, 0.0,
                   instances=tuple(instances), runs=runs)


def test_the_ledger_records_each_real_start_and_exit_code(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "led ger")
    assert run_wrapped(ledger, "exit 3", "j.r1.0.1", "j", "r1", 0) == 3
    assert run_wrapped(ledger, "true", "j.r1.0.2", "j", "r1", 0) == 0
    recs = ledger.records()
    assert (recs["j.r1.0.1"].starts, recs["j.r1.0.1"].exit_codes) == (1, [3])
    assert recs["j.r1.0.2"].succeeded
    assert succeeded_twice(recs.values()) == []


def test_an_instance_that_exited_0_twice_is_reported(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger")
    run_wrapped(ledger, "true", "j.r1.4.1", "j", "r1", 4)
    run_wrapped(ledger, "true", "j.r1.4.2", "j", "r1", 4)
    assert succeeded_twice(ledger.records().values()) == [
        "instance j/r1[4] succeeded 2 times, one after the other (tasks j.r1.4.1, j.r1.4.2)"
    ]
    history = [AttemptView("r1", 4, n, f"j.r1.4.{n}", "TASK_FINISHED") for n in (1, 2)]
    assert len(history_succeeded_twice("j", history)) == 1


def test_runs_twice_at_once_are_told_from_runs_one_after_the_other(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger")
    env = {**os.environ, "MESOSLITE_JOB": "j", "MESOSLITE_JOB_RUN": "r1",
           "MESOSLITE_JOB_INSTANCE": "0"}
    procs = [subprocess.Popen(["sh", "-c", ledger.wrap("sleep 0.3")],
                              env={**env, "MESOSLITE_TASK_ID": f"j.r1.0.{n}"}) for n in (1, 2)]
    assert [p.wait() for p in procs] == [0, 0]
    [found] = succeeded_twice(ledger.records().values())
    assert "succeeded 2 times, overlapping" in found


def test_a_reported_end_that_differs_from_the_real_exit_is_a_lost_update(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger")
    run_wrapped(ledger, "exit 1", "j.r1.0.1", "j", "r1", 0)
    view = job_view("j", [InstanceView(0, InstanceState.SUCCEEDED, 1, "j.r1.0.1")])
    run_wrapped(ledger, "true", "j.r1.2.1", "j", "r1", 2)
    history = [AttemptView("r1", 0, 1, "j.r1.0.1", "TASK_FINISHED"),
               AttemptView("r1", 1, 1, "j.r1.1.1", "TASK_RUNNING"),
               AttemptView("r1", 2, 1, "j.r1.2.1", "TASK_UNREACHABLE")]
    lost = updates_lost(view, history, ledger.records())
    # SUCCEEDED but exit 1 (twice), one still RUNNING, one UNREACHABLE that exited 0.
    assert len(lost) == 4, lost


def test_a_cron_time_run_twice_or_missing_is_reported() -> None:
    from mesoslite.testing.invariants import TaskRecord

    records = [TaskRecord("c.c60.0.1", "c", "c60", 0, 1, [0]),
               TaskRecord("c.c60.0.2", "c", "c60", 0, 1, [0]),
               TaskRecord("c.c240.0.1", "c", "c240", 0, 1, [0])]
    runs = (RunView("c120", RunState.SKIPPED, scheduled_at=120.0),)
    view = job_view("c", [], runs)
    assert cron_times_not_once(view, records) == [
        "cron c time c60 started 2 times", "cron c time c180 neither ran nor was recorded",
    ]


def test_a_task_process_the_cluster_does_not_count_as_running_is_stale() -> None:
    marker = uuid.uuid4().hex
    env = {**os.environ, MARKER_ENV: marker, "MESOSLITE_TASK_ID": "stale.r1.0.1"}
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"], env=env)
    try:
        deadline = time.monotonic() + 5
        while not task_processes(marker) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [p.pid for p in task_processes(marker)] == [proc.pid]
        assert stale_tasks(marker, running=["stale.r1.0.1"]) == []
        assert len(stale_tasks(marker, running=[])) == 1
    finally:
        proc.kill()
        proc.wait()
    assert task_processes(marker) == []


def test_a_second_success_is_told_apart_by_whether_the_first_ended_while_cut_off() -> None:
    def rec(task: str, i: int, start: float, end: float) -> TaskRecord:
        return TaskRecord(task, "j", "r1", i, starts=1, exit_codes=[0],
                          started_at=start, ended_at=end)

    records = [
        rec("j.r1.0.1", 0, 100.0, 104.0), rec("j.r1.0.2", 0, 103.0, 105.0),  # ended cut off
        rec("j.r1.1.1", 1, 100.0, 130.0), rec("j.r1.1.2", 1, 103.0, 105.0),  # ran on after
        rec("j.r1.2.1", 2, 100.0, 101.0),  # once
    ]
    windows = [("agent_partition", 102.0, 106.0)]
    assert twice_while_cut_off(records, windows, settle_s=5.0) == (1, 1)
    assert twice_while_cut_off(records, [], settle_s=5.0) == (0, 2)
