"""What a task's status update does to its job: attempts that end, retries and their
backoff, service restarts, and a run that settles once its outcome is known. Pure."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from mesoslite.jobs.book import JobBook, Kill
from mesoslite.jobs.model import InstanceState, JobState, JobType, RestartPolicy, RunState
from mesoslite.jobs.records import Instance, Job, Run, attempt_view, job_of_task
from mesoslite.model import REASON_PREEMPTED, TaskState, TaskStatus

# Task states that say the task is gone for reasons of the cluster, not of the task: the
# attempt is replaced without counting against the retry limit.
LOST_STATES = frozenset(
    {TaskState.LOST, TaskState.GONE, TaskState.UNKNOWN, TaskState.DROPPED, TaskState.UNREACHABLE}
)
# A service instance that ran this long before ending starts again without backoff.
SERVICE_STABLE_S = 10.0
# What `job history` says of an attempt that was replaced without its end being known.
LATE_ENDS = frozenset({"TASK_UNREACHABLE", "TASK_LOST", "TASK_UNKNOWN"})


# Runs whose last instance may have succeeded, settled once at the end of a batch of
# updates (keyed by `id(run)`): settling scans every instance of the run.
SettleLater = dict[int, tuple[Job, Run]]


def on_updates(book: JobBook, statuses: Iterable[TaskStatus], now: float) -> list[Kill]:
    """Apply a batch of status updates in order, as `on_update` one by one would, but
    scan a run for success once per batch instead of once per update (O(n) per batch, not
    O(n^2) per job). Deferring only the success check changes nothing: once every instance
    of a run succeeded, no task of it is indexed, so no later update of the batch reaches it.
    """
    later: SettleLater = {}
    kills: list[Kill] = []
    for status in statuses:
        kills += on_update(book, status, now, settle_later=later)
    for job, run in later.values():
        kills += _settle_success(book, job, run, now)
    return kills


def _settle_success(book: JobBook, job: Job, run: Run, now: float) -> list[Kill]:
    """`settle` after instances succeeded, without scanning every instance each batch: the
    run's leading instances known SUCCEEDED are counted (`book.succeeded_upto`), and only
    the ones after them are looked at. Once every one looks SUCCEEDED (or one FAILED),
    `settle` judges the run on all of them, so a count gone wrong (instances removed by a
    scale-down) can delay nothing, only cost that scan."""
    if run.state != RunState.RUNNING:
        return settle(book, job, run, now)
    held = book.succeeded_upto.get(id(run))
    k = held[1] if held is not None and held[0] is run else 0
    instances = run.instances
    while k < len(instances) and instances[k].state == InstanceState.SUCCEEDED:
        k += 1
    book.succeeded_upto[id(run)] = (run, k)
    if k == len(instances) or instances[k].state == InstanceState.FAILED:
        return settle(book, job, run, now)
    book.prune(job)  # as `settle` would, the run going on
    return []


def on_update(
    book: JobBook, status: TaskStatus, now: float, *, settle_later: SettleLater | None = None
) -> list[Kill]:
    """Apply a status update; returns the tasks to kill (stale attempts, a failed run's).
    With `settle_later`, a run an instance of which succeeded is put there to be settled by
    the caller instead of now."""
    where = book.by_task.get(status.task_id)
    orphan = [Kill(status.task_id, status.agent_id)] if not status.state.terminal else []
    if status.state.terminal and _late_end(book, status):
        return []
    if where is None:
        return orphan  # not ours (a job that was resubmitted or lost): do not let it run
    job = book.jobs.get(where[0])
    run = next((r for r in job.runs if r.run_id == where[1]), None) if job else None
    inst = _instance(run, where[2]) if run else None
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
    book.dirty.add(job.name)
    job.updated_at = now
    kills: list[Kill] = []
    if not status.state.terminal:
        if status.state == TaskState.UNREACHABLE:
            # Start a replacement now; if the old one comes back it is killed as stale.
            _record(job, run, inst, status, now)
            inst.current = None
            restart(book, job, inst, now, counted=False, why="its agent is unreachable")
        elif status.state == TaskState.RUNNING and inst.state == InstanceState.STAGING:
            inst.state = InstanceState.RUNNING
    else:
        a.finished_at = now
        a.exit_code = status.exit_code
        a.message = status.message
        _record(job, run, inst, status, now)
        # Ended for good: a repeat of this update is acknowledged and ignored, and the
        # task coming back (a LOST one) is killed as unknown.
        book.by_task.pop(a.task_id, None)
        kills += _attempt_ended(book, job, run, inst, status, now, settle_later)
    book.stale.add(job.name)
    return kills


def _instance(run: Run, index: int) -> Instance | None:
    """The run's instance `index`: at that position unless instances were scaled away."""
    if index < len(run.instances) and run.instances[index].index == index:
        return run.instances[index]
    return next((i for i in run.instances if i.index == index), None)


def _late_end(book: JobBook, status: TaskStatus) -> bool:
    """A replaced attempt (its agent was unreachable) reporting how it really ended, e.g.
    after its agent came back: `job history` says so instead of TASK_UNREACHABLE. It
    counts for nothing (its instance has moved on). True if it was such an attempt."""
    job = book.jobs.get(job_of_task(status.task_id))
    if job is None:
        return False
    for i, h in enumerate(job.history):
        if h.task_id == status.task_id and h.state in LATE_ENDS:
            why = " ".join(x for x in (status.reason, status.message) if x)
            job.history[i] = replace(
                h, state=status.state.label, exit_code=status.exit_code,
                message=f"ended after it was replaced ({h.state}){': ' + why if why else ''}",
            )
            book.by_task.pop(status.task_id, None)
            book.dirty.add(job.name)
            return True
    return False


def _record(job: Job, run: Run, inst: Instance, status: TaskStatus, now: float) -> None:
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
    book: JobBook, job: Job, run: Run, inst: Instance, status: TaskStatus, now: float,
    settle_later: SettleLater | None = None,
) -> list[Kill]:
    a = inst.current
    assert a is not None
    why, inst.killing_for = inst.killing_for, ""
    book.kill_sent.pop(a.task_id, None)
    if why == "replace" and job.spec.type == JobType.SERVICE and run.state == RunState.RUNNING:
        inst.state, inst.failures, inst.version = InstanceState.WAITING, 0, job.version
        book.work_added = True
        inst.message = "restarting with the updated spec"
        return []
    if why == "scale":
        run.instances.remove(inst)
        return []
    if why:
        inst.state = InstanceState.FAILED if why == "deadline" else InstanceState.KILLED
        return settle(book, job, run, now)
    if run.state != RunState.RUNNING:
        inst.state = InstanceState.KILLED
        return settle(book, job, run, now)
    if job.spec.type == JobType.SERVICE:
        return _service_ended(book, job, run, inst, status, now)
    return _batch_ended(book, job, run, inst, status, now, settle_later)


def _service_ended(
    book: JobBook, job: Job, run: Run, inst: Instance, status: TaskStatus, now: float
) -> list[Kill]:
    a = inst.current
    assert a is not None
    ok = status.state == TaskState.FINISHED and (status.exit_code or 0) == 0
    desc = _describe(status)
    restart_policy = job.spec.service.restart if job.spec.service else RestartPolicy.ALWAYS
    if restart_policy == RestartPolicy.NEVER or (restart_policy == RestartPolicy.ON_FAILURE and ok):
        inst.state = InstanceState.SUCCEEDED if ok else InstanceState.FAILED
        inst.message = desc
        return settle(book, job, run, now)
    # One that ran a while starts again at once; one failing fast backs off.
    stable = now - a.launched_at >= SERVICE_STABLE_S
    if stable:
        inst.failures = 0
    lost = _not_its_fault(status)
    restart(book, job, inst, now, counted=not lost and not stable, why=desc)
    return []


def _batch_ended(
    book: JobBook, job: Job, run: Run, inst: Instance, status: TaskStatus, now: float,
    settle_later: SettleLater | None = None,
) -> list[Kill]:
    ok = status.state == TaskState.FINISHED and (status.exit_code or 0) == 0
    if ok:
        inst.state, inst.message = InstanceState.SUCCEEDED, ""
        if settle_later is not None:
            settle_later[id(run)] = (job, run)
            return []
        return settle(book, job, run, now)
    lost = _not_its_fault(status)
    desc = _describe(status)
    limit = job.spec.retries.limit
    if not lost and inst.failures + 1 > limit:
        inst.failures += 1
        inst.state = InstanceState.FAILED
        inst.message = f"{desc}; no retries left ({limit} allowed)"
        return settle(book, job, run, now)
    restart(book, job, inst, now, counted=not lost, why=desc)
    return []


def _not_its_fault(status: TaskStatus) -> bool:
    """Lost with its agent, or preempted for a higher tier (#16): the attempt is replaced
    at once and does not count against the retry limit."""
    if status.state in LOST_STATES:
        return True
    return status.state == TaskState.KILLED and status.reason == REASON_PREEMPTED


def restart(
    book: JobBook, job: Job, inst: Instance, now: float, *, counted: bool, why: str
) -> None:
    """Make the instance wait for a new attempt, after a backoff if this failure counts."""
    book.work_added = True
    if counted:
        inst.failures += 1
    delay = job.spec.retries.delay_before(inst.failures + 1) if counted else 0.0
    if delay > 0:
        inst.state, inst.next_attempt_at = InstanceState.BACKOFF, now + delay
        inst.message = f"{why}; attempt {inst.attempts + 1} in {delay:g}s"
    else:
        inst.state, inst.next_attempt_at = InstanceState.WAITING, None
        inst.message = f"{why}; starting again"


def settle(book: JobBook, job: Job, run: Run, now: float) -> list[Kill]:
    """End the run once its outcome is known; kill what is left of a failed one."""
    kills: list[Kill] = []
    if run.state == RunState.RUNNING:
        failed = [i for i in run.instances if i.state == InstanceState.FAILED]
        if failed:
            msg = f"instance {failed[0].index} failed: {failed[0].message}"
            kills = book.end_run(job, run, RunState.FAILED, msg, now, "sibling")
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
    if run.state != RunState.RUNNING:
        book.succeeded_upto.pop(id(run), None)
    book.prune(job)
    return kills


def _describe(status: TaskStatus) -> str:
    text = status.state.label
    if status.exit_code is not None:
        text += f" (exit code {status.exit_code})"
    if status.reason and status.reason != "COMMAND_EXITED":
        text += f" {status.reason}"
    # Why it failed, where the state alone does not say (a launch that failed, a signal),
    # so that `job status` and `job list` show it, not only `job history` (#17).
    if status.message and (status.reason != "COMMAND_EXITED" or (status.exit_code or 0) < 0):
        text += f": {status.message}"
    return text
