"""What the passing of time does to jobs: active deadlines, cron times that come due (run,
skipped or replacing a run), services kept at their count and rolled to a new spec, and
kills sent again. Pure; `now` is passed in."""

from __future__ import annotations

from mesoslite.ids import AgentId, TaskId
from mesoslite.jobs.book import JobBook, Kill, available, cron_run_id, cron_tz
from mesoslite.jobs.model import ConcurrencyPolicy, InstanceState, JobType, RunState
from mesoslite.jobs.records import Instance, Job, Run
from mesoslite.jobs.transitions import settle

# Missed cron times recorded one by one at most; more are summed up in one record.
MAX_SKIPPED_RECORDS = 20
KILL_RESEND_S = 5.0


def tick(book: JobBook, now: float) -> list[Kill]:
    kills: list[Kill] = []
    for job in list(book.jobs.values()):
        kills += tick_job(book, job, now)
        kills += _resend_kills(book, job, now)
    return kills


def _resend_kills(book: JobBook, job: Job, now: float) -> list[Kill]:
    """Kills lost on the way (a master restart) are sent again."""
    kills: list[Kill] = []
    for run in job.runs:
        for inst in run.instances:
            a = inst.current
            if (
                inst.state == InstanceState.KILLING
                and a is not None
                and now - book.kill_sent.get(a.task_id, 0.0) >= KILL_RESEND_S
            ):
                book.kill_sent[a.task_id] = now
                kills.append(Kill(TaskId(a.task_id), AgentId(a.agent_id)))
    return kills


def tick_job(book: JobBook, job: Job, now: float) -> list[Kill]:
    if job.state.terminal:
        return []
    kills: list[Kill] = []
    deadline = job.spec.active_deadline_s
    for run in job.active_runs():
        if deadline is not None and now - run.started_at > deadline:
            msg = f"active deadline of {deadline:g}s passed"
            kills += book.end_run(job, run, RunState.FAILED, msg, now, "deadline")
            kills += settle(book, job, run, now)
    if job.spec.type == JobType.CRON:
        kills += _cron(book, job, now)
    elif job.spec.type == JobType.SERVICE:
        kills += _converge_service(book, job, now)
    book.refresh_state(job)
    return kills


# ---------------------------------------------------------------------- cron


def _cron(book: JobBook, job: Job, now: float) -> list[Kill]:
    cron = job.spec.cron
    assert cron is not None
    if job.next_run_at is None or job.next_run_at > now:
        return []
    due, t = _due_times(book, job, now)
    kills: list[Kill] = []
    latest = due[-1]
    older = due[:-1]
    for s in older[-MAX_SKIPPED_RECORDS:]:
        late = now - s
        if cron.starting_deadline_s is not None and late > cron.starting_deadline_s:
            msg = f"missed by {late:.0f}s, more than starting_deadline_s"
        elif job.resumed_at is not None and s <= job.resumed_at:
            msg = "missed while suspended; a later time ran instead"
        else:
            msg = "missed while no master was leading; a later time ran instead"
        _skip(job, s, now, msg)
    if cron.starting_deadline_s is not None and now - latest > cron.starting_deadline_s:
        _skip(
            job,
            latest,
            now,
            f"missed by {now - latest:.0f}s, "
            f"more than starting_deadline_s ({cron.starting_deadline_s:g}s)",
        )
    else:
        kills += _fire(book, job, latest, now)
    job.last_scheduled = latest
    job.next_run_at = t
    book.dirty.add(job.name)
    book.prune(job)
    return kills


def _due_times(book: JobBook, job: Job, now: float) -> tuple[list[float], float | None]:
    """The cron times due since the last handled one (the newest few if very many), and
    the next time after `now`."""
    sched, tz = book.schedule(job), cron_tz(job)
    last = job.last_scheduled if job.last_scheduled is not None else job.submitted_at
    due = []
    t = sched.next_after(last, tz)
    while t is not None and t <= now:
        due.append(t)
        if len(due) > 10_000:
            due = due[-MAX_SKIPPED_RECORDS:]
        t = sched.next_after(t, tz)
    return due, t


def _fire(book: JobBook, job: Job, scheduled: float, now: float) -> list[Kill]:
    cron = job.spec.cron
    assert cron is not None
    active = job.active_runs()
    kills: list[Kill] = []
    if active and cron.concurrency == ConcurrencyPolicy.FORBID:
        _skip(job, scheduled, now, f"run {active[-1].run_id} still running (concurrency forbid)")
        return []
    if active and cron.concurrency == ConcurrencyPolicy.REPLACE:
        for run in active:
            kills += book.end_run(
                job,
                run,
                RunState.KILLED,
                "replaced by a newer run (concurrency replace)",
                now,
                "kill",
            )
    book.new_run(job, now, scheduled)
    return kills


def _skip(job: Job, scheduled: float, now: float, message: str) -> None:
    job.runs.append(
        Run(
            run_id=cron_run_id(scheduled),
            state=RunState.SKIPPED,
            scheduled_at=scheduled,
            started_at=now,
            finished_at=now,
            message=message,
        )
    )


# ---------------------------------------------------------------------- services


def _converge_service(book: JobBook, job: Job, now: float) -> list[Kill]:
    """Keep the instance count, and roll instances of an older spec version over to the
    new one, at most `max_unavailable` down at a time."""
    runs = job.active_runs()
    if not runs:
        return []
    run = runs[-1]
    kills = _scale(book, job, run)
    budget = (job.spec.service.max_unavailable if job.spec.service else 1) - sum(
        1 for i in run.instances if not available(job, i)
    )
    for inst in run.instances:
        if inst.version >= job.version or inst.killing_for:
            continue
        if not inst.active:
            inst.version = job.version
            book.dirty.add(job.name)
        elif budget > 0 and inst.current is not None and inst.state == InstanceState.RUNNING:
            budget -= 1
            inst.state, inst.killing_for = InstanceState.KILLING, "replace"
            kills.append(Kill(TaskId(inst.current.task_id), AgentId(inst.current.agent_id)))
            book.kill_sent[inst.current.task_id] = now
            book.dirty.add(job.name)
    return kills


def _scale(book: JobBook, job: Job, run: Run) -> list[Kill]:
    """Add instances up to the spec's count; kill (or drop) those past it."""
    kills: list[Kill] = []
    want = job.spec.instances
    have = [i for i in run.instances if i.killing_for != "scale"]
    for index in range(len(have), want):
        run.instances.append(Instance(index=index, version=job.version))
        book.work_added = True
        book.dirty.add(job.name)
    for inst in have[want:]:
        if inst.active and inst.current is not None:
            if inst.state != InstanceState.KILLING:
                inst.state, inst.killing_for = InstanceState.KILLING, "scale"
                kills.append(Kill(TaskId(inst.current.task_id), AgentId(inst.current.agent_id)))
        else:
            run.instances.remove(inst)
        book.dirty.add(job.name)
    return kills
