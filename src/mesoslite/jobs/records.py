"""The jobs framework's bookkeeping: jobs, their runs, instances and attempts.

What is kept is bounded, because every job is a document in the registry, rewritten on
every change (`documents.py`): per instance only its current (or last) attempt; of ended
attempts only those that did not succeed (`HISTORY_KEEP`); of runs that ended and are not
the newest only a summary (`RunSummary`); and of runs past `keep_runs` only totals.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mesoslite.jobs.model import (
    AttemptView,
    InstanceState,
    InstanceView,
    JobSpec,
    JobState,
    JobView,
    RunState,
    RunTotals,
    RunView,
)

# Attempts that did not succeed, kept per job for `job history` (succeeded ones are read
# from their instances); a job's document stays bounded however often it retries.
HISTORY_KEEP = 100



def attempt_task_id(job: str, run_id: str, index: int, number: int) -> str:
    """The task id of an instance's attempt: `<job>.<run>.<index>.<number>`. Job names
    have no dots, so `job_of_task` reads the job back from any of its task ids."""
    return f"{job}.{run_id}.{index}.{number}"


def job_of_task(task_id: str) -> str:
    return task_id.split(".", 1)[0]


class _Counted:
    """Counts every assignment to a field (`changes`), so that `doc_cache` can tell that a
    text it kept is still this object's without comparing every field (issue 15). A slot
    outside the dataclass's fields: not in `fields()`, equality or `replace`."""

    __slots__ = ("changes",)
    changes: int

    def __setattr__(self, name: str, value: object) -> None:
        object.__setattr__(self, name, value)
        if name != "changes":
            object.__setattr__(self, "changes", getattr(self, "changes", 0) + 1)


class _Memo:
    """Holds `doc_cache`'s text of an instance (`doc_memo`), dropped by every assignment to
    a field of the instance; a slot outside the dataclass's fields, as `_Counted`'s."""

    __slots__ = ("doc_memo",)
    # (text, the attempt, its `changes`, a copy of its attributes), see `doc_cache`.
    doc_memo: tuple[str, Attempt | None, int, dict[str, str] | None] | None

    def __setattr__(self, name: str, value: object) -> None:
        object.__setattr__(self, name, value)
        if name != "doc_memo":
            object.__setattr__(self, "doc_memo", None)


@dataclass(slots=True)
class Attempt(_Counted):
    """One task launched for an instance."""

    task_id: str
    number: int
    agent_id: str = ""
    hostname: str = ""
    attributes: dict[str, str] = field(default_factory=dict)
    state: str = "TASK_STAGING"
    launched_at: float = 0.0
    finished_at: float | None = None
    exit_code: int | None = None
    healthy: bool | None = None
    message: str = ""

    def placement(self) -> dict[str, str]:
        return {**self.attributes, "hostname": self.hostname}


@dataclass(slots=True)
class Instance(_Memo):
    index: int
    state: InstanceState = InstanceState.WAITING
    version: int = 1  # the spec version its current attempt runs
    attempts: int = 0  # launched so far
    failures: int = 0  # failed attempts, counted against the retry limit
    current: Attempt | None = None
    next_attempt_at: float | None = None
    message: str = ""
    # Why we are killing it: "" (not killing), "kill", "replace" (rolling update or cron
    # replace), "deadline", "scale" (instances lowered), "sibling" (another instance failed).
    killing_for: str = ""

    @property
    def active(self) -> bool:
        return self.state in (InstanceState.STAGING, InstanceState.RUNNING, InstanceState.KILLING)


@dataclass(frozen=True, slots=True)
class RunSummary:
    """What an ended run that is not the newest keeps instead of its instances."""

    exit_codes: tuple[int | None, ...] = ()
    attempts: int = 0
    succeeded: int = 0  # instances
    failed: int = 0


class _AgentTable:
    """The agents a live run's document names by position (`documents`): append-only for
    the life of the run object, so that an instance's kept text stays right. A slot outside
    the dataclass's fields, as `_Memo`'s."""

    __slots__ = ("agent_table",)
    agent_table: dict[tuple[str, str], int]


@dataclass(slots=True)
class Run(_AgentTable):
    run_id: str
    state: RunState = RunState.RUNNING
    scheduled_at: float | None = None
    started_at: float = 0.0
    finished_at: float | None = None
    instances: list[Instance] = field(default_factory=list)
    message: str = ""
    summary: RunSummary | None = None  # set (and `instances` emptied) by `summarize`

    def view(self) -> RunView:
        s = self.summary or self.summed()
        return RunView(
            run_id=self.run_id,
            state=self.state,
            scheduled_at=self.scheduled_at,
            started_at=self.started_at,
            finished_at=self.finished_at,
            exit_codes=s.exit_codes,
            attempts=s.attempts,
            message=self.message,
        )

    def summed(self) -> RunSummary:
        if self.summary is not None:
            return self.summary
        return RunSummary(
            exit_codes=tuple(i.current.exit_code if i.current else None for i in self.instances),
            attempts=sum(i.attempts for i in self.instances),
            succeeded=sum(1 for i in self.instances if i.state == InstanceState.SUCCEEDED),
            failed=sum(1 for i in self.instances if i.state == InstanceState.FAILED),
        )

    def summarize(self) -> bool:
        """Drop the instances of an ended run none of whose tasks still runs."""
        if self.summary is not None or self.state == RunState.RUNNING:
            return False
        if any(i.active for i in self.instances):
            return False
        self.summary, self.instances = self.summed(), []
        return True


@dataclass(slots=True)
class Job:
    spec: JobSpec
    spec_yaml: str
    state: JobState
    submitted_at: float
    updated_at: float
    version: int = 1
    runs: list[Run] = field(default_factory=list)
    history: list[AttemptView] = field(default_factory=list)  # attempts that did not succeed
    message: str = ""
    ended_at: float | None = None  # when it became SUCCEEDED, FAILED or KILLED
    older_runs: RunTotals = RunTotals()
    # Cron: the latest scheduled time already handled (run or skipped); never handled twice.
    last_scheduled: float | None = None
    next_run_at: float | None = None
    run_counter: int = 0
    # Cron: `job suspend` (None while next_run_at is unset), and the last `job resume`, so
    # that the times missed in between are reported as such.
    suspended_at: float | None = None
    resumed_at: float | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    def active_runs(self) -> list[Run]:
        return [r for r in self.runs if r.state == RunState.RUNNING]

    def view(self) -> JobView:
        active = self.active_runs()
        shown = active[-1] if active else (self.runs[-1] if self.runs else None)
        return JobView(
            name=self.name,
            type=self.spec.type,
            state=self.state,
            spec_yaml=self.spec_yaml,
            instances_wanted=self.spec.instances,
            submitted_at=self.submitted_at,
            updated_at=self.updated_at,
            version=self.version,
            message=self.message,
            next_run_at=self.next_run_at,
            instances=tuple(instance_view(i) for i in shown.instances) if shown else (),
            runs=tuple(r.view() for r in self.runs),
            older_runs=self.older_runs,
        )

    def record(self, attempt: AttemptView) -> None:
        """Keep an attempt that did not succeed for `job history` (the newest `HISTORY_KEEP`)."""
        self.history.append(attempt)
        del self.history[:-HISTORY_KEEP]

    def attempt_history(self) -> list[AttemptView]:
        """`job history`: the kept attempts that did not succeed and the current (or last)
        attempt of every instance of the kept runs, by start time."""
        seen = {h.task_id for h in self.history}
        last = [
            attempt_view(run.run_id, inst.index, inst.current)
            for run in self.runs
            for inst in run.instances
            if inst.current is not None and inst.current.task_id not in seen
        ]
        return sorted([*self.history, *last], key=lambda h: h.started_at or 0.0)

    def drop_runs(self, keep: int) -> list[Run]:
        """Drop the oldest ended runs past `keep`, summing them up; returns them."""
        ended = [r for r in self.runs if r.state != RunState.RUNNING]
        drop = ended[: max(0, len(ended) - keep)]
        for run in drop:
            s = run.summed()
            self.older_runs = self.older_runs.add(run.view(), s.succeeded, s.failed)
        gone = {id(r) for r in drop}
        self.runs = [r for r in self.runs if id(r) not in gone]
        return drop


def attempt_view(run_id: str, index: int, a: Attempt) -> AttemptView:
    return AttemptView(
        run_id=run_id,
        instance=index,
        attempt=a.number,
        task_id=a.task_id,
        state=a.state,
        hostname=a.hostname,
        started_at=a.launched_at,
        finished_at=a.finished_at,
        exit_code=a.exit_code,
        message=a.message,
    )


def instance_view(i: Instance) -> InstanceView:
    a = i.current
    return InstanceView(
        index=i.index,
        state=i.state,
        attempt=i.attempts,
        task_id=a.task_id if a else "",
        agent_id=a.agent_id if a else "",
        hostname=a.hostname if a else "",
        started_at=a.launched_at if a else None,
        exit_code=a.exit_code if a else None,
        healthy=a.healthy if a else None,
        next_attempt_at=i.next_attempt_at,
        message=i.message,
    )
