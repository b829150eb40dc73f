"""`JobsFramework.watch` (what `job submit --wait` follows, issue 15), on a real
`MasterActor` with a real SQLite registry through the in-process port, on the virtual
clock: a summary at once; progress held back to its interval; a terminal state told only
once the registry has it, and then at once; the stream ends there."""

from __future__ import annotations

import asyncio

import pytest

from mesoslite.errors import NotFoundError, UnavailableError
from mesoslite.jobs.model import InstanceState, JobState
from mesoslite.testing import assert_eventually_async

from .test_batching import Cluster, N, cluster, finished, refuse_job_writes  # noqa: F401


async def test_a_terminal_state_is_told_once_it_is_durable_and_progress_waits_its_interval(
    cluster: Cluster,  # noqa: F811
) -> None:
    framework_id, tasks = await cluster.launched()
    watch = cluster.jobs.watch("many", min_interval_s=1.0)
    first = await asyncio.wait_for(anext(watch), 5)
    assert first.count(InstanceState.STAGING) == N and not first.state.terminal
    assert first.durable

    # Every instance ends, but the registry refuses the write: the job is SUCCEEDED in
    # memory only, and the watch must not say so.
    before = len(cluster.store.writes)
    refuse_job_writes(cluster.db, True)
    await cluster.report(finished(framework_id, cluster.agent_id, tasks))

    async def refused() -> bool:
        return any(not ok for _, ok in cluster.store.job_writes(before))

    await assert_eventually_async(refused, timeout_s=5)
    nxt = asyncio.ensure_future(anext(watch))
    await asyncio.sleep(0.1)
    assert not nxt.done()  # the counts changed, but within the interval
    cluster.clock.advance(1.0)
    progress = await asyncio.wait_for(nxt, 5)
    assert progress.count(InstanceState.SUCCEEDED) == N
    assert progress.state == first.state and not progress.durable

    # The disk takes writes again and the agent sends the updates again: SUCCEEDED comes
    # with the write, without waiting for the interval, and the stream ends.
    refuse_job_writes(cluster.db, False)
    await cluster.report(finished(framework_id, cluster.agent_id, tasks))
    done = await asyncio.wait_for(anext(watch), 5)
    assert (done.state, done.durable) == (JobState.SUCCEEDED, True)
    assert (await cluster.stored()).state == JobState.SUCCEEDED
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(anext(watch), 5)


async def test_watching_an_unknown_job_is_refused_at_once(cluster: Cluster) -> None:  # noqa: F811
    with pytest.raises(NotFoundError, match="no job named 'nope'"):
        cluster.jobs.watch("nope")


async def test_a_watch_ends_unavailable_when_the_jobs_framework_stops(
    cluster: Cluster,  # noqa: F811
) -> None:
    """A master that lost leadership stops its jobs framework: its watches must end (the
    CLI then finds the new leader), not report a frozen job forever."""
    await cluster.launched()
    watch = cluster.jobs.watch("many")
    await asyncio.wait_for(anext(watch), 5)
    nxt = asyncio.ensure_future(anext(watch))
    await asyncio.sleep(0.05)
    await cluster.jobs.stop()
    with pytest.raises(UnavailableError, match="stopped on this master"):
        await asyncio.wait_for(nxt, 5)
