"""Invariants a cluster must keep through faults, checked from ground truth (issue 11).

The ground truth is a `Ledger`: a file on the host that every task appends to itself, one
line when it starts and one when its command ends, with its real exit code::

    S <epoch_s> <task_id> <job> <run> <instance>
    E <epoch_s> <task_id> <job> <run> <instance> <exit_code>

A task killed before its command ends writes no `E` line. The checkers compare that file
with what the jobs framework reports (`job status`, `job history`) and with the processes
still alive (`/proc`), and each returns a list of violations: empty means the invariant held.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from mesoslite.jobs.model import AttemptView, InstanceState, JobView
from mesoslite.local.base import MARKER_ENV

TASK_ID_ENV = "MESOSLITE_TASK_ID"
# Task states that say the command ended with this exit code (0 / not 0).
SUCCESS_STATES = frozenset({"TASK_FINISHED"})
FAILURE_STATES = frozenset({"TASK_FAILED"})
NON_TERMINAL_STATES = frozenset({"TASK_STAGING", "TASK_STARTING", "TASK_RUNNING"})
# States that say "we do not know how it ended": wrong for a task whose process did end.
UNKNOWN_END_STATES = frozenset({
    "TASK_UNREACHABLE", "TASK_LOST", "TASK_GONE", "TASK_UNKNOWN", "TASK_DROPPED",
})


@dataclass
class TaskRecord:
    """What the ledger says one task (one process tree) really did."""

    task_id: str
    job: str
    run: str
    instance: int
    starts: int = 0
    exit_codes: list[int] = field(default_factory=list)
    started_at: float = 0.0  # the first start, by the host's clock
    ended_at: float = 0.0  # the last end

    @property
    def succeeded(self) -> bool:
        return 0 in self.exit_codes


class Ledger:
    """A file that the tasks of a run append to (their command does it: ground truth)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def wrap(self, body: str) -> str:
        """A shell command that records its start, runs `body`, records `body`'s exit code."""
        key = f'"${TASK_ID_ENV} $MESOSLITE_JOB $MESOSLITE_JOB_RUN $MESOSLITE_JOB_INSTANCE"'
        led = _shell_quote(str(self.path))
        return (
            f'K={key}; echo "S $(date +%s.%N) $K" >> {led}; ( {body} ); rc=$?; '
            f'echo "E $(date +%s.%N) $K $rc" >> {led}; exit $rc'
        )

    def records(self) -> dict[str, TaskRecord]:
        """Per task id, what its process did; malformed (torn) lines are ignored."""
        out: dict[str, TaskRecord] = {}
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return out
        for line in text.splitlines():
            p = line.split()
            if len(p) != (6 if p[:1] == ["S"] else 7) or p[0] not in ("S", "E"):
                continue
            try:
                at, instance = float(p[1]), int(p[5])
                code = int(p[6]) if p[0] == "E" else None
            except ValueError:
                continue
            rec = out.setdefault(p[2], TaskRecord(p[2], p[3], p[4], instance))
            if code is None:
                rec.starts += 1
                rec.started_at = rec.started_at or at
            else:
                rec.exit_codes.append(code)
                rec.ended_at = at
        return out

    def batch_spec(
        self, name: str, *, instances: int, body: str = "true", cpus: float = 0.1,
        mem: float = 16, retries: int = 0,
    ) -> str:
        """The YAML of a batch job whose tasks run `body` and record themselves here."""
        spec = {
            "name": name, "type": "batch", "instances": instances,
            "command": self.wrap(body), "resources": {"cpus": cpus, "mem": mem},
            "retries": {"limit": retries, "backoff_s": 0.5},
        }
        return yaml.safe_dump(spec, sort_keys=False)

    def cron_spec(self, name: str, *, schedule: str = "* * * * *", body: str = "true") -> str:
        """The YAML of a cron job (keeping 100 runs) whose tasks record themselves here."""
        spec = {
            "name": name, "type": "cron", "command": self.wrap(body),
            "resources": {"cpus": 0.1, "mem": 16},
            "schedule": schedule, "keep_runs": 100,
        }
        return yaml.safe_dump(spec, sort_keys=False)


def _shell_quote(s: str) -> str:
    return "'" + s.replace("'", "'\\''") + "'"


# ---------------------------------------------------------------- invariants


def _successes(records: Iterable[TaskRecord]) -> dict[tuple[str, str, int], list[TaskRecord]]:
    """Each instance (job, run, index) -> its tasks, once per exit 0 they had."""
    wins: dict[tuple[str, str, int], list[TaskRecord]] = defaultdict(list)
    for r in records:
        wins[(r.job, r.run, r.instance)].extend(r for c in r.exit_codes if c == 0)
    return wins


def succeeded_twice(records: Iterable[TaskRecord]) -> list[str]:
    """Instances (job, run, index) whose command really exited 0 more than once.

    Each says whether the runs overlapped (an original was still running when its
    replacement started: it should have been killed) or came one after the other (the
    first ended while nobody could hear of it, e.g. its agent cut off).
    """
    out = []
    for (job, run, i), recs in sorted(_successes(records).items()):
        if len(recs) > 1:
            recs.sort(key=lambda r: r.started_at)
            how = "overlapping" if overlapping(recs) else "one after the other"
            ids = ", ".join(r.task_id for r in recs)
            out.append(f"instance {job}/{run}[{i}] succeeded {len(recs)} times, {how} "
                       f"(tasks {ids})")
    return out


def twice_while_cut_off(
    records: Iterable[TaskRecord], windows: Sequence[tuple[str, float, float]], settle_s: float
) -> tuple[int, int]:
    """Of the instances that succeeded more than once: how many had every earlier success end
    while its agent was cut off (within a fault window, or `settle_s` after it, the time a
    returning agent takes to re-register and be told to kill), and how many did not (an
    original that ran on after its agent was back: it should have been killed)."""
    cut_off = other = 0
    for recs in _successes(records).values():
        if len(recs) < 2:
            continue
        recs.sort(key=lambda r: r.started_at)  # the originals first, their replacement last
        unseen = all(
            any(start <= r.ended_at <= end + settle_s for _, start, end in windows)
            for r in recs[:-1]
        )
        cut_off, other = (cut_off + 1, other) if unseen else (cut_off, other + 1)
    return cut_off, other


def overlapping(recs: Sequence[TaskRecord]) -> bool:
    """True if some run started before an earlier-started one had ended."""
    return any(b.started_at < a.ended_at for a, b in zip(recs, recs[1:], strict=False))


def history_succeeded_twice(job: str, history: Sequence[AttemptView]) -> list[str]:
    """Instances that the jobs framework's `job history` counts as finished more than once."""
    wins: dict[tuple[str, int], list[str]] = defaultdict(list)
    for a in history:
        if a.state in SUCCESS_STATES:
            wins[(a.run_id, a.instance)].append(a.task_id)
    return [
        f"job history of {job} has {run}[{i}] finished {len(ids)} times ({', '.join(ids)})"
        for (run, i), ids in sorted(wins.items()) if len(ids) > 1
    ]


def updates_lost(
    view: JobView, history: Sequence[AttemptView], records: dict[str, TaskRecord]
) -> list[str]:
    """Tasks of an ended job whose reported end does not match what their process did.

    Each instance's last task and every attempt in the history must say FINISHED iff the
    ledger has exit 0 for it, FAILED iff a non-zero exit; an attempt still running (or
    staging) after the job ended, or left UNREACHABLE (LOST, ...) although its process
    ended with an exit code, means an update was lost.
    """
    out: list[str] = []
    for inst in view.instances:
        rec = records.get(inst.task_id)
        real = rec.exit_codes if rec is not None else []
        if inst.state == InstanceState.SUCCEEDED and 0 not in real:
            out.append(f"{view.name}[{inst.index}] {inst.task_id} reported SUCCEEDED, "
                       f"but its process exited with {real or 'nothing (never ended)'}")
        if inst.state == InstanceState.FAILED and real and all(c == 0 for c in real):
            out.append(f"{view.name}[{inst.index}] {inst.task_id} reported FAILED, "
                       "but its process exited 0")
    for a in history:
        real = records[a.task_id].exit_codes if a.task_id in records else []
        if a.state in NON_TERMINAL_STATES and view.state.terminal:
            out.append(f"{view.name} attempt {a.task_id} still {a.state} after the job ended")
        elif a.state in SUCCESS_STATES and 0 not in real:
            out.append(f"{view.name} attempt {a.task_id} {a.state}, process exited {real}")
        elif a.state in FAILURE_STATES and real and 0 in real:
            out.append(f"{view.name} attempt {a.task_id} {a.state}, process exited 0")
        elif a.state in UNKNOWN_END_STATES and real:
            out.append(f"{view.name} attempt {a.task_id} left {a.state}, process exited {real}")
    return out


def cron_times_not_once(view: JobView, records: Iterable[TaskRecord]) -> list[str]:
    """Scheduled times of a cron job that ran twice, or that neither ran nor were skipped.

    Run ids of cron runs are `c<scheduled epoch>`; times are a minute apart (schedule
    `* * * * *`). Every minute between the first and the last seen must appear once: as a
    started run in the ledger, or as a run the framework recorded (skipped ones included).
    """
    starts: dict[str, int] = defaultdict(int)
    for r in records:
        if r.job == view.name:
            starts[r.run] += r.starts
    out = [f"cron {view.name} time {run} started {n} times"
           for run, n in sorted(starts.items()) if n > 1]
    seen = {int(run[1:]) for run in starts if run[1:].isdigit()}
    seen |= {int(r.scheduled_at) for r in view.runs if r.scheduled_at is not None}
    if seen:
        for t in range(min(seen), max(seen) + 1, 60):
            if t not in seen:
                out.append(f"cron {view.name} time c{t} neither ran nor was recorded")
    return out


@dataclass(frozen=True)
class TaskProcess:
    pid: int
    task_id: str
    cmdline: str
    sandbox: str = ""


def task_processes(marker: str) -> list[TaskProcess]:
    """Live task processes (with a `MESOSLITE_TASK_ID`) that carry this cluster's marker."""
    out: list[TaskProcess] = []
    want = f"{MARKER_ENV}={marker}".encode()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/environ", "rb") as f:
                env = f.read().split(b"\0")
            if want not in env:
                continue
            with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                if f.read().rsplit(b")", 1)[-1].split()[0] == b"Z":
                    continue  # a zombie has ended; its parent has yet to reap it
        except OSError:
            continue  # gone meanwhile, or not ours to read
        found = dict(e.decode(errors="replace").split("=", 1) for e in env if b"=" in e)
        if found.get(TASK_ID_ENV):
            out.append(TaskProcess(int(entry.name), found[TASK_ID_ENV], cmd,
                                   found.get("MESOSLITE_SANDBOX", "")))
    return out


def stale_tasks(marker: str, running: Iterable[str] = ()) -> list[str]:
    """Task processes alive that the cluster does not count as running (`running` ids)."""
    known = set(running)
    return [f"task {p.task_id} still running as pid {p.pid}: {p.cmdline[:120]}"
            for p in task_processes(marker) if p.task_id not in known]
