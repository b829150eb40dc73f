"""`JobsCore`: what the jobs framework decides, with no I/O (time is passed in).

The shell (`framework.py`) feeds it offers, status updates and clock ticks, persists the
jobs it marks dirty, and only then carries out what it returned (launches, kills): a task
is recorded in the registry before it is launched, and a cron time is recorded as handled
before its run starts, so a master restart or failover never runs a scheduled time twice.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from zoneinfo import ZoneInfo

from mesoslite.errors import AlreadyExistsError, ConflictError, NotFoundError
from mesoslite.ids import AgentId, OfferId, TaskId
from mesoslite.jobs.constraints import explain_unplaceable, violations
from mesoslite.jobs.cron import CronSchedule
from mesoslite.jobs.documents import job_from_doc
from mesoslite.jobs.model import (
    ConcurrencyPolicy,
    InstanceState,
    JobSpec,
    JobState,
    JobType,
    RestartPolicy,
    RunState,
)
from mesoslite.jobs.records import Attempt, Instance, Job, Run, attempt_view
from mesoslite.model import Offer, TaskSpec, TaskState, TaskStatus
from mesoslite.resources import format_resources

# What `job history` says of an attempt that was replaced without its end being known.
LATE_ENDS = frozenset({"TASK_UNREACHABLE", "TASK_LOST", "TASK_UNKNOWN"})

logger = logging.getLogger(__name__)

# Task states that say the task is gone for reasons of the cluster, not of the task: the
# attempt is replaced without counting against the retry limit.
LOST_STATES = frozenset(
    {TaskState.LOST, TaskState.GONE, TaskState.UNKNOWN, TaskState.DROPPED, TaskState.UNREACHABLE}
)
# A service instance that ran this long before ending starts again without backoff.
SERVICE_STABLE_S = 10.0
# Missed cron times recorded one by one at most; more are summed up in one record.
MAX_SKIPPED_RECORDS = 20
KILL_RESEND_S = 5.0


@dataclass(frozen=True, slots=True)
class Kill:
    task_id: TaskId
    agent_id: AgentId


@dataclass(slots=True)
class Placement:
    """The answer to a batch of offers: tasks to launch on some, the rest declined."""

    launches: list[tuple[Offer, list[TaskSpec]]] = field(default_factory=list)
    declined: list[Offer] = field(default_factory=list)


def offer_role(offer: Offer) -> str:
    return offer.allocation_role or "*"


class JobsCore:
    def __init__(self) -> None:
        self.jobs: dict[str, Job] = {}
        # task id -> (job name, run id, instance index), for every attempt ever launched and
        # still in a kept run, so a stale attempt that reports again is recognised and killed.
        self.by_task: dict[str, tuple[str, str, int]] = {}
        self.dirty: set[str] = set()
        self.removed: set[str] = set()  # jobs removed, not yet removed from the registry
        # Attempts whose state the master has not confirmed since we (re)subscribed.
        self.unconfirmed: set[str] = set()
        self._schedules: dict[str, tuple[str, CronSchedule]] = {}
        # Jobs whose state and message are recomputed before they are next read (a status
        # update of one of 1,000 instances does not scan the other 999).
        self._stale: set[str] = set()
        # Set when an instance may have become WAITING: the shell then asks for offers.
        self.work_added = False
        self._kill_sent: dict[str, float] = {}

    # ------------------------------------------------------------------ loading

    def load(self, docs: Mapping[str, str]) -> list[str]:
        """Load the jobs of the registry; returns the names whose document could not be read."""
        bad = []
        for name, doc in docs.items():
            try:
                job = job_from_doc(doc)
            except Exception as e:  # a document of an older or newer version, or corrupt
                logger.error("cannot load job %s from the registry: %s", name, e)
                bad.append(name)
                continue
            self.jobs[name] = job
            self._index(job)
        return bad

    def _index(self, job: Job) -> None:
        # Only attempts that have not ended: one that has (its update was recorded, its
        # acknowledgement maybe lost) is ignored if reported again, killed if running.
        for run in job.runs:
            for inst in run.instances:
                if inst.active and inst.current is not None:
                    self.by_task[inst.current.task_id] = (job.name, run.run_id, inst.index)

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
        self._forget(job)
        self.dirty.discard(name)
        self._stale.discard(name)
        self.removed.add(name)
        return job

    def restore(self, job: Job) -> None:
        """Undo a `remove` whose write failed."""
        self.removed.discard(job.name)
        if job.name not in self.jobs:
            self.jobs[job.name] = job
            self._index(job)

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
        for name in self._stale:
            if name in self.jobs:
                self._refresh_state(self.jobs[name])
        self._stale.clear()

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
            self._forget(old)
        self.removed.discard(spec.name)  # written over by this job's document
        job = Job(
            spec=spec, spec_yaml=spec_yaml, state=JobState.PENDING, submitted_at=now, updated_at=now
        )
        if spec.type == JobType.CRON:
            job.state = JobState.SCHEDULED
            job.last_scheduled = now
            job.next_run_at = self._schedule(job).next_after(now, _tz(job))
        else:
            self._new_run(job, now)
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
            self._forget(new)
        self.dirty.discard(name)
        self._stale.discard(name)
        if old is not None:
            self.jobs[name] = old
            self._index(old)

    def update(self, spec: JobSpec, spec_yaml: str, now: float) -> tuple[Job, list[Kill]]:
        job = self.check_update(spec)
        job.spec, job.spec_yaml = spec, spec_yaml
        job.version += 1
        job.updated_at = now
        self._schedules.pop(job.name, None)
        if spec.type == JobType.CRON:
            job.next_run_at = self._schedule(job).next_after(job.last_scheduled or now, _tz(job))
        self.dirty.add(job.name)
        return job, self._tick_job(job, now)

    def kill(self, name: str, now: float) -> tuple[Job, list[Kill]]:
        job = self.get(name)
        if job.state.terminal:
            return job, []
        kills: list[Kill] = []
        for run in job.active_runs():
            kills += self._end_run(job, run, RunState.KILLED, "killed by the user", now, "kill")
        job.state, job.message = JobState.KILLED, "killed by the user"
        job.next_run_at = None
        job.ended_at = now
        job.updated_at = now
        self.dirty.add(job.name)
        return job, kills

    # ------------------------------------------------------------------ offers

    def wants_offers(self, now: float) -> bool:
        return any(True for _ in self._waiting(now))

    def place(self, offers: Sequence[Offer], now: float) -> Placement:
        """Pack waiting instances into the offers, in submission order, honouring each
        job's resources, role and constraints."""
        left = {o.id: o.resources for o in offers}
        tasks: dict[OfferId, list[TaskSpec]] = {}
        unplaced: dict[str, list[Instance]] = {}
        # Where each job's instances are, kept up to date as this pass places more (only
        # jobs with constraints look).
        placed: dict[str, list[dict[str, str]]] = {}
        launched: dict[str, Job] = {}
        for job, run, inst in list(self._waiting(now)):
            spec = job.spec
            if spec.constraints and job.name not in placed:
                placed[job.name] = self._placements(job)
            chosen = None
            for offer in offers:
                if offer_role(offer) != spec.role or not left[offer.id].contains(spec.resources):
                    continue
                if not spec.constraints or violations(
                    spec.constraints, offer.hostname, offer.attributes, placed[job.name]
                ) is None:
                    chosen = offer
                    break
            if chosen is None:
                unplaced.setdefault(job.name, []).append(inst)
                continue
            left[chosen.id] = left[chosen.id] - spec.resources
            tasks.setdefault(chosen.id, []).append(self._launch(job, run, inst, chosen, now))
            launched[job.name] = job
            if spec.constraints:
                assert inst.current is not None
                placed[job.name].append(inst.current.placement())
        for job in launched.values():
            self._refresh_state(job)
        for name, insts in unplaced.items():
            reason = self._why_unplaced(self.jobs[name], offers)
            for inst in insts:
                if inst.message != reason:
                    inst.message = reason
                    self.dirty.add(name)
            self._refresh_state(self.jobs[name])
        out = Placement()
        for offer in offers:
            if offer.id in tasks:
                out.launches.append((offer, tasks[offer.id]))
            else:
                out.declined.append(offer)
        return out

    def _why_unplaced(self, job: Job, offers: Sequence[Offer]) -> str:
        spec = job.spec
        mine = [o for o in offers if offer_role(o) == spec.role]
        if not mine:
            return f"waiting for offers (role {spec.role})"
        fits = [o for o in mine if o.resources.contains(spec.resources)]
        if not fits:
            biggest = max(mine, key=lambda o: o.resources.scalar("cpus"))
            return (
                f"cannot be placed: no offer has {format_resources(spec.resources)} free "
                f"(largest: {format_resources(biggest.resources)} on {biggest.hostname})"
            )
        agents = [(o.hostname, dict(o.attributes)) for o in fits]
        return "cannot be placed: " + explain_unplaceable(
            spec.constraints, agents, self._placements(job)
        )

    def _launch(self, job: Job, run: Run, inst: Instance, offer: Offer, now: float) -> TaskSpec:
        spec = job.spec
        inst.attempts += 1
        task_id = f"{job.name}.{run.run_id}.{inst.index}.{inst.attempts}"
        inst.current = Attempt(
            task_id=task_id,
            number=inst.attempts,
            agent_id=offer.agent_id,
            hostname=offer.hostname,
            attributes=dict(offer.attributes),
            launched_at=now,
        )
        inst.state, inst.message, inst.version = InstanceState.STAGING, "", job.version
        inst.next_attempt_at = None
        self.by_task[task_id] = (job.name, run.run_id, inst.index)
        job.updated_at = now
        self.dirty.add(job.name)
        env = {
            **spec.command.environment,
            **spec.env,
            "MESOSLITE_JOB": job.name,
            "MESOSLITE_JOB_RUN": run.run_id,
            "MESOSLITE_JOB_INSTANCE": str(inst.index),
            "MESOSLITE_JOB_ATTEMPT": str(inst.attempts),
        }
        return TaskSpec(
            task_id=TaskId(task_id),
            command=replace(spec.command, environment=env),
            resources=spec.resources,
            name=f"{job.name}[{inst.index}]",
            agent_id=AgentId(offer.agent_id),
            kill_grace_period_s=spec.kill_grace_period_s,
            labels={**spec.labels, "job": job.name, "run": run.run_id},
            health_check=spec.health_check if spec.type == JobType.SERVICE else None,
        )

    def _placements(self, job: Job) -> list[dict[str, str]]:
        return [
            inst.current.placement()
            for run in job.active_runs()
            for inst in run.instances
            if inst.active and inst.current is not None
        ]

    def _waiting(self, now: float) -> Iterable[tuple[Job, Run, Instance]]:
        for job in sorted(self.jobs.values(), key=lambda j: j.submitted_at):
            if job.state.terminal:
                continue
            for run in job.active_runs():
                for inst in run.instances:
                    if inst.state == InstanceState.BACKOFF and (inst.next_attempt_at or 0) <= now:
                        inst.state, inst.next_attempt_at = InstanceState.WAITING, None
                        self.dirty.add(job.name)
                    if inst.state == InstanceState.WAITING:
                        yield job, run, inst

    # ------------------------------------------------------------------ status updates

    def on_update(self, status: TaskStatus, now: float) -> list[Kill]:
        self.unconfirmed.discard(status.task_id)
        where = self.by_task.get(status.task_id)
        orphan = [Kill(status.task_id, status.agent_id)] if not status.state.terminal else []
        if status.state.terminal and self._late_end(status):
            return []
        if where is None:
            return orphan  # not ours (a job that was resubmitted or lost): do not let it run
        job = self.jobs.get(where[0])
        run = next((r for r in job.runs if r.run_id == where[1]), None) if job else None
        inst = next((i for i in run.instances if i.index == where[2]), None) if run else None
        if (
            job is None
            or run is None
            or inst is None
            or inst.current is None
            or inst.current.task_id != status.task_id
        ):
            return orphan  # an attempt already replaced (e.g. it was unreachable)
        a = inst.current
        a.state = status.state.label
        if status.agent_id:
            a.agent_id = status.agent_id
        if status.healthy is not None:
            a.healthy = status.healthy
        self.dirty.add(job.name)
        job.updated_at = now
        kills: list[Kill] = []
        if not status.state.terminal:
            if status.state == TaskState.UNREACHABLE:
                # Start a replacement now; if the old one comes back it is killed as stale.
                self._record(job, run, inst, status, now)
                inst.current = None
                self._restart(job, inst, now, counted=False, why="its agent is unreachable")
            elif status.state == TaskState.RUNNING and inst.state == InstanceState.STAGING:
                inst.state = InstanceState.RUNNING
        else:
            a.finished_at = now
            a.exit_code = status.exit_code
            a.message = status.message
            self._record(job, run, inst, status, now)
            # Ended for good: a repeat of this update is acknowledged and ignored, and the
            # task coming back (a LOST one) is killed as unknown.
            self.by_task.pop(a.task_id, None)
            kills += self._attempt_ended(job, run, inst, status, now)
        self._stale.add(job.name)
        return kills

    def _late_end(self, status: TaskStatus) -> bool:
        """A replaced attempt (its agent was unreachable) reporting how it really ended, e.g.
        after its agent came back: `job history` says so instead of TASK_UNREACHABLE. It
        counts for nothing (its instance has moved on). True if it was such an attempt."""
        job = self.jobs.get(status.task_id.split(".", 1)[0])
        if job is None:
            return False
        for i, h in enumerate(job.history):
            if h.task_id == status.task_id and h.state in LATE_ENDS:
                why = " ".join(x for x in (status.reason, status.message) if x)
                job.history[i] = replace(
                    h, state=status.state.label, exit_code=status.exit_code,
                    message=f"ended after it was replaced ({h.state}){': ' + why if why else ''}",
                )
                self.by_task.pop(status.task_id, None)
                self.dirty.add(job.name)
                return True
        return False

    def _record(self, job: Job, run: Run, inst: Instance, status: TaskStatus, now: float) -> None:
        """Keep an attempt that did not succeed for `job history` (a succeeded one is read
        from its instance)."""
        a = inst.current
        assert a is not None
        if status.state == TaskState.FINISHED and (status.exit_code or 0) == 0:
            return
        job.record(
            replace(
                attempt_view(run.run_id, inst.index, a),
                state=status.state.label,
                finished_at=now,
                exit_code=status.exit_code,
                message=" ".join(x for x in (status.reason, status.message) if x),
            )
        )

    def _attempt_ended(
        self, job: Job, run: Run, inst: Instance, status: TaskStatus, now: float
    ) -> list[Kill]:
        spec, a = job.spec, inst.current
        assert a is not None
        why, inst.killing_for = inst.killing_for, ""
        self._kill_sent.pop(a.task_id, None)
        ok = status.state == TaskState.FINISHED and (status.exit_code or 0) == 0
        if why == "replace" and spec.type == JobType.SERVICE and run.state == RunState.RUNNING:
            inst.state, inst.failures, inst.version = InstanceState.WAITING, 0, job.version
            self.work_added = True
            inst.message = "restarting with the updated spec"
            return []
        if why == "scale":
            run.instances.remove(inst)
            return []
        if why:
            inst.state = InstanceState.FAILED if why == "deadline" else InstanceState.KILLED
            return self._settle(job, run, now)
        if run.state != RunState.RUNNING:
            inst.state = InstanceState.KILLED
            return self._settle(job, run, now)
        lost = status.state in LOST_STATES
        desc = _describe(status)
        if spec.type == JobType.SERVICE:
            restart = spec.service.restart if spec.service else RestartPolicy.ALWAYS
            if restart == RestartPolicy.NEVER or (restart == RestartPolicy.ON_FAILURE and ok):
                inst.state = InstanceState.SUCCEEDED if ok else InstanceState.FAILED
                inst.message = desc
                return self._settle(job, run, now)
            # One that ran a while starts again at once; one failing fast backs off.
            stable = now - a.launched_at >= SERVICE_STABLE_S
            if stable:
                inst.failures = 0
            self._restart(job, inst, now, counted=not lost and not stable, why=desc)
            return []
        if ok:
            inst.state, inst.message = InstanceState.SUCCEEDED, ""
            return self._settle(job, run, now)
        if not lost and inst.failures + 1 > spec.retries.limit:
            inst.failures += 1
            inst.state = InstanceState.FAILED
            inst.message = f"{desc}; no retries left ({spec.retries.limit} allowed)"
            return self._settle(job, run, now)
        self._restart(job, inst, now, counted=not lost, why=desc)
        return []

    def _restart(self, job: Job, inst: Instance, now: float, *, counted: bool, why: str) -> None:
        self.work_added = True
        if counted:
            inst.failures += 1
        delay = job.spec.retries.delay_before(inst.failures + 1) if counted else 0.0
        if delay > 0:
            inst.state, inst.next_attempt_at = InstanceState.BACKOFF, now + delay
            inst.message = f"{why}; attempt {inst.attempts + 1} in {delay:g}s"
        else:
            inst.state, inst.next_attempt_at = InstanceState.WAITING, None
            inst.message = f"{why}; starting again"

    def _settle(self, job: Job, run: Run, now: float) -> list[Kill]:
        """End the run once its outcome is known; kill what is left of a failed one."""
        kills: list[Kill] = []
        if run.state == RunState.RUNNING:
            failed = [i for i in run.instances if i.state == InstanceState.FAILED]
            if failed:
                msg = f"instance {failed[0].index} failed: {failed[0].message}"
                kills = self._end_run(job, run, RunState.FAILED, msg, now, "sibling")
            elif run.instances and all(i.state == InstanceState.SUCCEEDED for i in run.instances):
                run.state, run.finished_at, run.message = RunState.SUCCEEDED, now, ""
        if (
            run.state != RunState.RUNNING
            and job.spec.type != JobType.CRON
            and job.state != JobState.KILLED
        ):
            job.state = JobState(run.state.value)
            job.message = run.message
            if job.ended_at is None:
                job.ended_at = now
        self._prune(job)
        return kills

    def _end_run(
        self, job: Job, run: Run, state: RunState, message: str, now: float, why: str
    ) -> list[Kill]:
        run.state, run.finished_at, run.message = state, now, message
        kills = []
        for inst in run.instances:
            if inst.active and inst.current is not None:
                if inst.state != InstanceState.KILLING:
                    inst.state, inst.killing_for = InstanceState.KILLING, why
                    kills.append(Kill(TaskId(inst.current.task_id), AgentId(inst.current.agent_id)))
                    self._kill_sent[inst.current.task_id] = now
            elif not inst.state.terminal:
                inst.state = InstanceState.FAILED if why == "deadline" else InstanceState.KILLED
                inst.next_attempt_at = None
        self.dirty.add(job.name)
        return kills

    # ------------------------------------------------------------------ time

    def tick(self, now: float) -> list[Kill]:
        self.refresh()
        kills: list[Kill] = []
        for job in list(self.jobs.values()):
            kills += self._tick_job(job, now)
            # Kills lost on the way (a master restart) are sent again.
            for run in job.runs:
                for inst in run.instances:
                    a = inst.current
                    if (
                        inst.state == InstanceState.KILLING
                        and a is not None
                        and now - self._kill_sent.get(a.task_id, 0.0) >= KILL_RESEND_S
                    ):
                        self._kill_sent[a.task_id] = now
                        kills.append(Kill(TaskId(a.task_id), AgentId(a.agent_id)))
        return kills

    def _tick_job(self, job: Job, now: float) -> list[Kill]:
        if job.state.terminal:
            return []
        kills: list[Kill] = []
        deadline = job.spec.active_deadline_s
        for run in job.active_runs():
            if deadline is not None and now - run.started_at > deadline:
                msg = f"active deadline of {deadline:g}s passed"
                kills += self._end_run(job, run, RunState.FAILED, msg, now, "deadline")
                kills += self._settle(job, run, now)
        if job.spec.type == JobType.CRON:
            kills += self._cron(job, now)
        elif job.spec.type == JobType.SERVICE:
            kills += self._converge_service(job, now)
        self._refresh_state(job)
        return kills

    def _cron(self, job: Job, now: float) -> list[Kill]:
        cron = job.spec.cron
        assert cron is not None
        if job.next_run_at is None or job.next_run_at > now:
            return []
        sched, tz = self._schedule(job), _tz(job)
        last = job.last_scheduled if job.last_scheduled is not None else job.submitted_at
        due = []
        t = sched.next_after(last, tz)
        while t is not None and t <= now:
            due.append(t)
            if len(due) > 10_000:
                due = due[-MAX_SKIPPED_RECORDS:]
            t = sched.next_after(t, tz)
        kills: list[Kill] = []
        latest = due[-1]
        older = due[:-1]
        for s in older[-MAX_SKIPPED_RECORDS:]:
            late = now - s
            if cron.starting_deadline_s is not None and late > cron.starting_deadline_s:
                msg = f"missed by {late:.0f}s, more than starting_deadline_s"
            else:
                msg = "missed while no master was leading; a later time ran instead"
            self._skip(job, s, now, msg)
        if cron.starting_deadline_s is not None and now - latest > cron.starting_deadline_s:
            self._skip(
                job,
                latest,
                now,
                f"missed by {now - latest:.0f}s, "
                f"more than starting_deadline_s ({cron.starting_deadline_s:g}s)",
            )
        else:
            kills += self._fire(job, latest, now)
        job.last_scheduled = latest
        job.next_run_at = t
        self.dirty.add(job.name)
        self._prune(job)
        return kills

    def _fire(self, job: Job, scheduled: float, now: float) -> list[Kill]:
        cron = job.spec.cron
        assert cron is not None
        active = job.active_runs()
        kills: list[Kill] = []
        if active and cron.concurrency == ConcurrencyPolicy.FORBID:
            self._skip(
                job, scheduled, now, f"run {active[-1].run_id} still running (concurrency forbid)"
            )
            return []
        if active and cron.concurrency == ConcurrencyPolicy.REPLACE:
            for run in active:
                kills += self._end_run(
                    job,
                    run,
                    RunState.KILLED,
                    "replaced by a newer run (concurrency replace)",
                    now,
                    "kill",
                )
        self._new_run(job, now, scheduled)
        return kills

    def _skip(self, job: Job, scheduled: float, now: float, message: str) -> None:
        job.runs.append(
            Run(
                run_id=_cron_run_id(scheduled),
                state=RunState.SKIPPED,
                scheduled_at=scheduled,
                started_at=now,
                finished_at=now,
                message=message,
            )
        )

    def _new_run(self, job: Job, now: float, scheduled: float | None = None) -> Run:
        self.work_added = True
        job.run_counter += 1
        run_id = _cron_run_id(scheduled) if scheduled is not None else f"r{job.run_counter}"
        run = Run(
            run_id=run_id,
            scheduled_at=scheduled,
            started_at=now,
            instances=[Instance(index=i, version=job.version) for i in range(job.spec.instances)],
        )
        job.runs.append(run)
        self.dirty.add(job.name)
        return run

    def _converge_service(self, job: Job, now: float) -> list[Kill]:
        """Keep the instance count, and roll instances of an older spec version over to the
        new one, at most `max_unavailable` down at a time."""
        kills: list[Kill] = []
        runs = job.active_runs()
        if not runs:
            return []
        run = runs[-1]
        want = job.spec.instances
        have = [i for i in run.instances if i.killing_for != "scale"]
        for index in range(len(have), want):
            run.instances.append(Instance(index=index, version=job.version))
            self.work_added = True
            self.dirty.add(job.name)
        for inst in have[want:]:
            if inst.active and inst.current is not None:
                if inst.state != InstanceState.KILLING:
                    inst.state, inst.killing_for = InstanceState.KILLING, "scale"
                    kills.append(Kill(TaskId(inst.current.task_id), AgentId(inst.current.agent_id)))
            else:
                run.instances.remove(inst)
            self.dirty.add(job.name)
        budget = (job.spec.service.max_unavailable if job.spec.service else 1) - sum(
            1 for i in run.instances if not self._available(job, i)
        )
        for inst in run.instances:
            if inst.version >= job.version or inst.killing_for:
                continue
            if not inst.active:
                inst.version = job.version
                self.dirty.add(job.name)
            elif budget > 0 and inst.current is not None and inst.state == InstanceState.RUNNING:
                budget -= 1
                inst.state, inst.killing_for = InstanceState.KILLING, "replace"
                kills.append(Kill(TaskId(inst.current.task_id), AgentId(inst.current.agent_id)))
                self._kill_sent[inst.current.task_id] = now
                self.dirty.add(job.name)
        return kills

    def _available(self, job: Job, inst: Instance) -> bool:
        if inst.state != InstanceState.RUNNING or inst.current is None:
            return False
        return job.spec.health_check is None or inst.current.healthy is True

    # ------------------------------------------------------------------ state

    def _refresh_state(self, job: Job) -> None:
        if job.state.terminal:
            return
        if job.spec.type == JobType.CRON:
            job.state = JobState.SCHEDULED
            job.message = ""
            return
        runs = job.active_runs()
        if not runs:
            return
        insts = runs[-1].instances
        if job.spec.type == JobType.SERVICE:
            good = sum(1 for i in insts if self._available(job, i) and i.version == job.version)
            job.state = JobState.HEALTHY if good >= job.spec.instances else JobState.DEPLOYING
        elif any(i.attempts for i in insts):
            job.state = JobState.RUNNING
        waiting = [i for i in insts if i.state in (InstanceState.WAITING, InstanceState.BACKOFF)]
        job.message = (
            f"instance {waiting[0].index}: {waiting[0].message}"
            if (waiting and waiting[0].message)
            else ""
        )

    def _prune(self, job: Job) -> None:
        """Keep what a user needs of ended runs: the newest whole, older ended ones summed
        up once none of their tasks runs, and past `keep_runs` only the job's totals."""
        if job.spec.type == JobType.CRON and job.spec.cron is not None:
            for run in job.drop_runs(job.spec.cron.keep_runs):
                self._unindex(run.instances)
        for run in job.runs[:-1]:
            instances = run.instances
            if run.summarize():
                self._unindex(instances)

    def _unindex(self, instances: Iterable[Instance]) -> None:
        for inst in instances:
            if inst.current is not None:
                self.by_task.pop(inst.current.task_id, None)

    def _forget(self, job: Job) -> None:
        for run in job.runs:
            self._unindex(run.instances)
        self._schedules.pop(job.name, None)

    def _schedule(self, job: Job) -> CronSchedule:
        assert job.spec.cron is not None
        expr = job.spec.cron.schedule
        cached = self._schedules.get(job.name)
        if cached is None or cached[0] != expr:
            cached = (expr, CronSchedule.parse(expr))
            self._schedules[job.name] = cached
        return cached[1]


def _tz(job: Job) -> ZoneInfo:
    assert job.spec.cron is not None
    return ZoneInfo(job.spec.cron.timezone)


def _cron_run_id(scheduled: float) -> str:
    return f"c{int(scheduled)}"


def _describe(status: TaskStatus) -> str:
    text = status.state.label
    if status.exit_code is not None:
        text += f" (exit code {status.exit_code})"
    if status.reason and status.reason != "COMMAND_EXITED":
        text += f" {status.reason}"
    return text

