"""`JobBook`: the jobs framework's state (jobs, the task index, what to write) and the steps
every part of `JobsCore` shares: indexing attempts, starting and ending runs, a job's state.

It is pure: time is passed in. `placement`, `transitions` and `ticks` decide on it; `core`
is the façade the shell calls.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from mesoslite.ids import AgentId, TaskId
from mesoslite.jobs.cron import CronSchedule
from mesoslite.jobs.model import InstanceState, JobState, JobType, RunState
from mesoslite.jobs.records import Instance, Job, Run


@dataclass(frozen=True, slots=True)
class Kill:
    task_id: TaskId
    agent_id: AgentId


class JobBook:
    def __init__(self) -> None:
        self.jobs: dict[str, Job] = {}
        # task id -> (job name, run id, instance index), for every attempt ever launched and
        # still in a kept run, so a stale attempt that reports again is recognised and killed.
        self.by_task: dict[str, tuple[str, str, int]] = {}
        self.dirty: set[str] = set()
        # Jobs whose state and message are recomputed before they are next read (a status
        # update of one of 1,000 instances does not scan the other 999).
        self.stale: set[str] = set()
        # Set when an instance may have become WAITING: the shell then asks for offers.
        self.work_added = False
        self.kill_sent: dict[str, float] = {}
        # id(run) -> (the run, how many of its leading instances are SUCCEEDED), so that a
        # batch of successes does not scan every instance (`transitions._settle_success`).
        self.succeeded_upto: dict[int, tuple[Run, int]] = {}
        self._schedules: dict[str, tuple[str, CronSchedule]] = {}

    # ------------------------------------------------------------------ the task index

    def index(self, job: Job) -> None:
        # Only attempts that have not ended: one that has (its update was recorded, its
        # acknowledgement maybe lost) is ignored if reported again, killed if running.
        for run in job.runs:
            for inst in run.instances:
                if inst.active and inst.current is not None:
                    self.by_task[inst.current.task_id] = (job.name, run.run_id, inst.index)

    def unindex(self, instances: Iterable[Instance]) -> None:
        for inst in instances:
            if inst.current is not None:
                self.by_task.pop(inst.current.task_id, None)

    def forget(self, job: Job) -> None:
        for run in job.runs:
            self.unindex(run.instances)
        self._schedules.pop(job.name, None)

    # ------------------------------------------------------------------ cron schedules

    def schedule(self, job: Job) -> CronSchedule:
        assert job.spec.cron is not None
        expr = job.spec.cron.schedule
        cached = self._schedules.get(job.name)
        if cached is None or cached[0] != expr:
            cached = (expr, CronSchedule.parse(expr))
            self._schedules[job.name] = cached
        return cached[1]

    def drop_schedule(self, name: str) -> None:
        self._schedules.pop(name, None)

    # ------------------------------------------------------------------ runs

    def new_run(self, job: Job, now: float, scheduled: float | None = None) -> Run:
        self.work_added = True
        job.run_counter += 1
        run_id = cron_run_id(scheduled) if scheduled is not None else f"r{job.run_counter}"
        run = Run(
            run_id=run_id,
            scheduled_at=scheduled,
            started_at=now,
            instances=[Instance(index=i, version=job.version) for i in range(job.spec.instances)],
        )
        job.runs.append(run)
        self.dirty.add(job.name)
        return run

    def end_run(
        self, job: Job, run: Run, state: RunState, message: str, now: float, why: str
    ) -> list[Kill]:
        run.state, run.finished_at, run.message = state, now, message
        self.succeeded_upto.pop(id(run), None)
        kills = []
        for inst in run.instances:
            if inst.active and inst.current is not None:
                if inst.state != InstanceState.KILLING:
                    inst.state, inst.killing_for = InstanceState.KILLING, why
                    kills.append(Kill(TaskId(inst.current.task_id), AgentId(inst.current.agent_id)))
                    self.kill_sent[inst.current.task_id] = now
            elif not inst.state.terminal:
                inst.state = InstanceState.FAILED if why == "deadline" else InstanceState.KILLED
                inst.next_attempt_at = None
        self.dirty.add(job.name)
        return kills

    def prune(self, job: Job) -> None:
        """Keep what a user needs of ended runs: the newest whole, older ended ones summed
        up once none of their tasks runs, and past `keep_runs` only the job's totals."""
        if job.spec.type == JobType.CRON and job.spec.cron is not None:
            for run in job.drop_runs(job.spec.cron.keep_runs):
                self.unindex(run.instances)
        for run in job.runs[:-1]:
            instances = run.instances
            if run.summarize():
                self.unindex(instances)

    # ------------------------------------------------------------------ a job's state

    def refresh_state(self, job: Job) -> None:
        if job.state.terminal:
            return
        if job.spec.type == JobType.CRON:
            job.state = JobState.SCHEDULED if job.suspended_at is None else JobState.SUSPENDED
            job.message = ""
            return
        runs = job.active_runs()
        if not runs:
            return
        insts = runs[-1].instances
        if job.spec.type == JobType.SERVICE:
            good = sum(1 for i in insts if available(job, i) and i.version == job.version)
            job.state = JobState.HEALTHY if good >= job.spec.instances else JobState.DEPLOYING
        elif any(i.attempts for i in insts):
            job.state = JobState.RUNNING
        # Only the first waiting instance is named: stop there (this runs per update batch).
        first = next((i for i in insts if i.state in _WAITING), None)
        job.message = f"instance {first.index}: {first.message}" if first and first.message else ""


_WAITING = (InstanceState.WAITING, InstanceState.BACKOFF)  # a tuple: identity, no Enum hash


def available(job: Job, inst: Instance) -> bool:
    """Whether a service instance counts as up (running, and healthy if checked)."""
    if inst.state != InstanceState.RUNNING or inst.current is None:
        return False
    return job.spec.health_check is None or inst.current.healthy is True


def cron_tz(job: Job) -> ZoneInfo:
    assert job.spec.cron is not None
    return ZoneInfo(job.spec.cron.timezone)


def cron_run_id(scheduled: float) -> str:
    return f"c{int(scheduled)}"
