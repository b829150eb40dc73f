"""`JobsCore`: what the jobs framework decides, with no I/O (time is passed in).

The shell (`framework.py`) feeds it offers, status updates and clock ticks, persists the
jobs it marks dirty, and only then carries out what it returned (launches, kills): a task
is recorded in the registry before it is launched, and a cron time is recorded as handled
before its run starts, so a master restart or failover never runs a scheduled time twice.

`JobsCore` is the façade: user requests, loading and removal live here; the decisions are
in `placement` (offers), `transitions` (status updates) and `ticks` (time), all working on
one `JobBook` (`book`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from mesoslite.errors import AlreadyExistsError, ConflictError, NotFoundError
from mesoslite.ids import AgentId, TaskId
from mesoslite.jobs import placement, steer, ticks, transitions
from mesoslite.jobs.book import JobBook, Kill, cron_tz
from mesoslite.jobs.documents import job_from_doc
from mesoslite.jobs.model import JobSpec, JobState, JobType, RunState
from mesoslite.jobs.placement import Placement
from mesoslite.jobs.records import Job
from mesoslite.model import Offer, TaskStatus

__all__ = ["JobsCore", "Kill", "Placement"]

logger = logging.getLogger(__name__)


class JobsCore:
    def __init__(self) -> None:
        self.book = JobBook()
        self.removed: set[str] = set()  # jobs removed, not yet removed from the registry
        # Attempts whose state the master has not confirmed since we (re)subscribed.
        self.unconfirmed: set[str] = set()

    @property
    def jobs(self) -> dict[str, Job]:
        return self.book.jobs

    @property
    def by_task(self) -> dict[str, tuple[str, str, int]]:
        return self.book.by_task

    @property
    def dirty(self) -> set[str]:
        return self.book.dirty

    @property
    def work_added(self) -> bool:
        """Set when an instance may have become WAITING: the shell then asks for offers."""
        return self.book.work_added

    @work_added.setter
    def work_added(self, value: bool) -> None:
        self.book.work_added = value

    # ------------------------------------------------------------------ loading

    def load(self, docs: Mapping[str, str]) -> list[str]:
        """Load the jobs of the registry; returns the names whose document could not be read."""
        bad = []
        for name, doc in docs.items():
            try:
                job = job_from_doc(doc)
            except Exception as e:  # a document of an older or newer version, or corrupt
                logger.error("cannot load a job from the registry job=%s: %s", name, e)
                bad.append(name)
                continue
            self.jobs[name] = job
            self.book.index(job)
        return bad

    def active_attempts(self) -> list[tuple[TaskId, AgentId]]:
        out = []
        for job in self.jobs.values():
            for run in job.runs:
                for inst in run.instances:
                    if inst.active and inst.current is not None:
                        out.append((TaskId(inst.current.task_id), AgentId(inst.current.agent_id)))
        return out

    def take_dirty(self) -> list[Job]:
        jobs = [self.jobs[n] for n in sorted(self.dirty) if n in self.jobs]
        self.dirty.clear()
        return jobs

    # ------------------------------------------------------------------ removal

    def check_remove(self, name: str) -> Job:
        """Raise what `remove` would raise, changing nothing; returns the job."""
        job = self.get(name)
        if not job.state.terminal:
            raise ConflictError(
                f"job {name!r} is {job.state.value}: kill it first (`mesoslite job kill {name}`)"
            )
        if any(i.active for r in job.runs for i in r.instances):
            raise ConflictError(
                f"job {name!r} has ended but tasks of it are still being killed: "
                "remove it once they have ended"
            )
        return job

    def remove(self, name: str) -> Job:
        """Forget an ended job; its name is in `removed` until the shell has written that."""
        job = self.check_remove(name)
        del self.jobs[name]
        self.book.forget(job)
        self.dirty.discard(name)
        self.book.stale.discard(name)
        self.removed.add(name)
        return job

    def restore(self, job: Job) -> None:
        """Undo a `remove` whose write failed."""
        self.removed.discard(job.name)
        if job.name not in self.jobs:
            self.jobs[job.name] = job
            self.book.index(job)

    def expired(self, now: float, retention_s: float) -> list[str]:
        """Ended jobs older than `retention_s` (0: kept for ever) whose tasks have all ended."""
        if retention_s <= 0:
            return []
        out = []
        for job in self.jobs.values():
            ended = job.ended_at if job.ended_at is not None else job.updated_at
            if job.state.terminal and now - ended >= retention_s:
                if not any(i.active for r in job.runs for i in r.instances):
                    out.append(job.name)
        return out

    def take_removed(self) -> list[str]:
        names = sorted(self.removed)
        self.removed.clear()
        return names

    # ------------------------------------------------------------------ user requests

    def get(self, name: str) -> Job:
        job = self.jobs.get(name)
        if job is None:
            raise NotFoundError(f"no job named {name!r}")
        self.refresh()
        return job

    def refresh(self) -> None:
        """Bring the state and message of jobs changed by status updates up to date."""
        for name in self.book.stale:
            if name in self.jobs:
                self.book.refresh_state(self.jobs[name])
        self.book.stale.clear()

    def check_submit(self, spec: JobSpec) -> None:
        """Raise what `submit` would raise, changing nothing."""
        old = self.jobs.get(spec.name)
        if old is not None and not old.state.terminal:
            raise AlreadyExistsError(
                f"job {spec.name!r} exists and is {old.state.value}: "
                "change it with `mesoslite job update`, or end it with `mesoslite job kill`"
            )

    def submit(self, spec: JobSpec, spec_yaml: str, now: float) -> Job:
        self.check_submit(spec)
        old = self.jobs.get(spec.name)
        if old is not None:
            self.book.forget(old)
        self.removed.discard(spec.name)  # written over by this job's document
        job = Job(
            spec=spec, spec_yaml=spec_yaml, state=JobState.PENDING, submitted_at=now, updated_at=now
        )
        if spec.type == JobType.CRON:
            job.state = JobState.SCHEDULED
            job.last_scheduled = now
            job.next_run_at = self.book.schedule(job).next_after(now, cron_tz(job))
        else:
            self.book.new_run(job, now)
        self.jobs[spec.name] = job
        self.dirty.add(job.name)
        return job

    def check_update(self, spec: JobSpec) -> Job:
        """Raise what `update` would raise, changing nothing; returns the job."""
        job = self.get(spec.name)
        if job.state.terminal:
            raise ConflictError(
                f"job {spec.name!r} has ended ({job.state.value}): submit it again instead"
            )
        if spec.type != job.spec.type:
            raise ConflictError(
                f"job {spec.name!r} is a {job.spec.type.value} job; its type cannot change to "
                f"{spec.type.value} (kill it and submit the new one)"
            )
        return job

    def withdraw(self, name: str, old: Job | None) -> None:
        """Undo a `submit` whose write failed: put back the job it replaced, if any."""
        new = self.jobs.pop(name, None)
        if new is not None:
            self.book.forget(new)
        self.dirty.discard(name)
        self.book.stale.discard(name)
        if old is not None:
            self.jobs[name] = old
            self.book.index(old)

    def update(self, spec: JobSpec, spec_yaml: str, now: float) -> tuple[Job, list[Kill]]:
        job = self.check_update(spec)
        job.spec, job.spec_yaml = spec, spec_yaml
        job.version += 1
        job.updated_at = now
        self.book.drop_schedule(job.name)
        if spec.type == JobType.CRON and job.suspended_at is None:
            job.next_run_at = self.book.schedule(job).next_after(
                job.last_scheduled or now, cron_tz(job)
            )
        self.dirty.add(job.name)
        return job, ticks.tick_job(self.book, job, now)

    def kill(self, name: str, now: float) -> tuple[Job, list[Kill]]:
        job = self.get(name)
        if job.state.terminal:
            return job, []
        kills: list[Kill] = []
        for run in job.active_runs():
            kills += self.book.end_run(job, run, RunState.KILLED, "killed by the user", now, "kill")
        job.state, job.message = JobState.KILLED, "killed by the user"
        job.next_run_at = None
        job.ended_at = now
        job.updated_at = now
        self.dirty.add(job.name)
        return job, kills

    # ------------------------------------------------------------------ cron steering

    def suspend(self, name: str, now: float) -> Job:
        job = self.get(name)
        steer.suspend(self.book, job, now)
        return job

    def resume(self, name: str, now: float) -> Job:
        job = self.get(name)
        steer.resume(self.book, job, now)
        return job

    def run_now(self, name: str, now: float) -> tuple[Job, list[Kill]]:
        job = self.get(name)
        return job, steer.run_now(self.book, job, now)

    # ------------------------------------------------------------------ offers

    def wants_offers(self, now: float) -> bool:
        return any(True for _ in placement.waiting(self.book, now))

    def place(self, offers: Sequence[Offer], now: float) -> Placement:
        """Pack waiting instances into the offers, in submission order, honouring each
        job's resources, role and constraints."""
        return placement.place(self.book, offers, now)

    # ------------------------------------------------------------------ status updates

    def on_update(self, status: TaskStatus, now: float) -> list[Kill]:
        self.unconfirmed.discard(status.task_id)
        return transitions.on_update(self.book, status, now)

    def on_updates(self, statuses: Sequence[TaskStatus], now: float) -> list[Kill]:
        """Apply a batch of updates in order (see `transitions.on_updates`)."""
        for status in statuses:
            self.unconfirmed.discard(status.task_id)
        return transitions.on_updates(self.book, statuses, now)

    # ------------------------------------------------------------------ time

    def tick(self, now: float) -> list[Kill]:
        self.refresh()
        return ticks.tick(self.book, now)
