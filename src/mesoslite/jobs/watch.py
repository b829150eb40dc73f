"""`JobsFramework.watch`: a job's summaries as they change, for `job submit --wait` (issue 15).

Polling `job status` every 0.5 s cost the master a view of every instance per poll, and
the waiter up to 0.5 s after the job ended. A watch is woken by the framework's registry
writes instead, and reports the job's state as last *written*
(`JobsFramework.durable_state`): a terminal state reaches the waiter as soon as it is
durable, never before, so a master that fails over right after cannot contradict it. The
counts are live; they are sent at most every `min_interval_s` while the state stays the
same.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from itertools import compress, repeat
from operator import attrgetter, is_
from typing import Protocol

from mesoslite.clock import Clock
from mesoslite.errors import UnavailableError
from mesoslite.jobs.model import InstanceState, JobState
from mesoslite.jobs.plan import _FROM_OFFERS, pending_reasons
from mesoslite.jobs.port import ClusterRoom
from mesoslite.jobs.records import Job
from mesoslite.jobs.summary import JobSummary

_STATE = attrgetter("state")

DEFAULT_MIN_INTERVAL_S = 0.5
# A watch looks again at least this often even if nothing was written (a cheap safety net).
IDLE_LOOK_S = 2.0


class WriteSignal:
    """Wakes every waiter after each registry write of the jobs framework."""

    def __init__(self) -> None:
        self._waiters: set[asyncio.Future[None]] = set()

    def fire(self) -> None:
        waiters, self._waiters = self._waiters, set()
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    async def wait(self, clock: Clock, timeout_s: float) -> None:
        """Until the next write, or `timeout_s` on `clock`."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.add(fut)

        def wake() -> None:
            if not fut.done():
                fut.set_result(None)

        cancel = clock.call_later(timeout_s, wake)
        try:
            await fut
        finally:
            cancel()
            self._waiters.discard(fut)


class Watched(Protocol):
    """What a watch reads of the jobs framework."""

    clock: Clock
    written: WriteSignal

    @property
    def running(self) -> bool: ...

    def job(self, name: str) -> Job: ...  # raises NotFoundError

    def durable_state(self, job: Job) -> tuple[JobState, bool]: ...

    def cluster_room(self) -> ClusterRoom: ...


async def watch_job(
    fw: Watched, name: str, min_interval_s: float = DEFAULT_MIN_INTERVAL_S
) -> AsyncIterator[JobSummary]:
    """Summaries of job `name`: one at once, then each change (see the module docstring),
    ending after a terminal one. Raises `NotFoundError` for an unknown or removed job,
    `UnavailableError` once the jobs framework stops (this master lost leadership)."""
    last: JobSummary | None = None
    sent_at = float("-inf")
    while True:
        if not fw.running:  # stopped (a failover): the waiter finds the new leader
            raise UnavailableError("the jobs framework stopped on this master")
        job = fw.job(name)
        state, durable = fw.durable_state(job)
        # Compared without judging why instances wait (a placement on the cluster as it is
        # now): that is done only for a summary that is sent.
        summary = summarise(job, state=state, durable=durable)
        now = fw.clock.now()
        new_state = last is None or state != last.state
        if summary != last and (new_state or now - sent_at >= min_interval_s):
            last, sent_at = summary, now
            yield replace(summary, message=judged_message(job, fw.cluster_room))
            if state.terminal and durable:
                return
        # Held back by the interval: look again when it is over, or at the next write.
        pending = summary != last
        wait_s = max(0.0, sent_at + min_interval_s - now) if pending else IDLE_LOOK_S
        await fw.written.wait(fw.clock, wait_s)


def summarise(job: Job, *, state: JobState | None = None, durable: bool = True) -> JobSummary:
    """The job's summary, its message as the job has it (see `judged_message`); `state`
    (default the job's own) is the one to report, e.g. the last one in the registry."""
    active = job.active_runs()
    shown = active[-1] if active else (job.runs[-1] if job.runs else None)
    insts = shown.instances if shown else []
    # Counted in C, by identity (an Enum's hash is a Python call): this runs at each
    # registry write while a job is watched. The keys in order of first appearance.
    states = list(map(_STATE, insts))
    present = sorted((s for s in InstanceState if s in states), key=states.index)
    counts: dict[InstanceState, int] = {s: states.count(s) for s in present}
    unhealthy = 0
    if InstanceState.RUNNING in counts:
        running = compress(insts, map(is_, states, repeat(InstanceState.RUNNING)))
        unhealthy = sum(1 for i in running if i.current is not None and i.current.healthy is False)
    return JobSummary(
        name=job.name, type=job.spec.type, state=job.state if state is None else state,
        message=job.message, instances_wanted=job.spec.instances,
        next_run_at=job.next_run_at, counts=counts, unhealthy=unhealthy, durable=durable,
    )


def judged_message(job: Job, room: Callable[[], ClusterRoom]) -> str:
    """`job status`'s message (`plan.with_pending_reasons`), judging only the first waiting
    instance where `job status` judges them all: the message names only that one."""
    message = job.message
    about_offers = message.partition(": ")[2].startswith(_FROM_OFFERS)
    if message and not about_offers:
        return message
    active = job.active_runs()
    if job.state.terminal or not active:
        return message
    first = next((i for i in active[-1].instances if i.state == InstanceState.WAITING), None)
    if first is None:
        return message
    reason = first.message
    if not reason or reason.startswith(_FROM_OFFERS):
        reason = pending_reasons(job, room(), limit=1).get(first.index, reason)
    return f"instance {first.index}: {reason}" if reason else message
