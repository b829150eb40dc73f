"""An operator steering a cron job: `job suspend`, `job resume` and `job run-now`. Pure;
`now` is passed in.

Suspension stops new runs only (the running ones go on, as Kubernetes' `suspend` does).
It is kept in the job's document, so it survives a failover. While suspended the job has no
next time; `resume` recomputes it from the last time handled, so the times missed in
between come due at once and follow `starting_deadline_s` like any missed time (`ticks`):
the latest runs if it is within the deadline (or there is none), the rest are skipped.
"""

from __future__ import annotations

from mesoslite.errors import ConflictError
from mesoslite.jobs.book import JobBook, Kill, cron_tz
from mesoslite.jobs.model import ConcurrencyPolicy, JobType, RunState
from mesoslite.jobs.records import Job


def check_cron(job: Job, verb: str) -> None:
    """Raise `ConflictError` unless `job` is a cron job that has not ended."""
    if job.spec.type != JobType.CRON:
        raise ConflictError(
            f"job {job.name!r} is a {job.spec.type.value} job: only cron jobs can be {verb}"
        )
    if job.state.terminal:
        raise ConflictError(f"job {job.name!r} has ended ({job.state.value}): nothing to steer")


def suspend(book: JobBook, job: Job, now: float) -> bool:
    """Start no run until `resume`; False if it was suspended already (nothing changes)."""
    check_cron(job, "suspended")
    if job.suspended_at is not None:
        return False
    job.suspended_at, job.next_run_at, job.updated_at = now, None, now
    book.refresh_state(job)
    book.dirty.add(job.name)
    return True


def resume(book: JobBook, job: Job, now: float) -> bool:
    """Run on schedule again; False if it was not suspended (nothing changes)."""
    check_cron(job, "resumed")
    if job.suspended_at is None:
        return False
    last = job.last_scheduled if job.last_scheduled is not None else job.submitted_at
    job.suspended_at, job.resumed_at, job.updated_at = None, now, now
    # The first time after the last one handled: in the past if some were missed, so the
    # next tick handles them under the starting deadline.
    job.next_run_at = book.schedule(job).next_after(last, cron_tz(job))
    book.refresh_state(job)
    book.dirty.add(job.name)
    return True


def run_now(book: JobBook, job: Job, now: float) -> list[Kill]:
    """Start one run outside the schedule, under the job's concurrency policy: forbid
    refuses while a run is active (`ConflictError`, nothing changes), replace kills the
    active runs, allow adds a run beside them. Returns the tasks to kill."""
    check_cron(job, "run now")
    assert job.spec.cron is not None
    active = job.active_runs()
    policy = job.spec.cron.concurrency
    if active and policy == ConcurrencyPolicy.FORBID:
        raise ConflictError(
            f"job {job.name!r} has run {active[-1].run_id} running and its concurrency "
            "policy is forbid: wait for it to end, or kill the job"
        )
    kills: list[Kill] = []
    if active and policy == ConcurrencyPolicy.REPLACE:
        for run in active:
            kills += book.end_run(
                job, run, RunState.KILLED, "replaced by a run started now (concurrency replace)",
                now, "kill",
            )
    run = book.new_run(job, now)
    run.message = "started by `mesoslite job run-now`"
    job.updated_at = now
    book.prune(job)
    return kills
