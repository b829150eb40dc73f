"""`JobsCore.on_updates` (a batch of status updates, a run scanned for success once per
batch) ends in exactly the state `on_update` one by one would, whatever the mix of
successes, failures and retries in the batch, and whatever their order (issue 15)."""

from __future__ import annotations

import itertools

import pytest

from mesoslite.jobs.core import JobsCore
from mesoslite.jobs.documents import job_to_doc
from mesoslite.model import TaskState, TaskStatus

from .test_core import T0, launch_all, offer, status, submit

SPEC = """
name: mix
type: batch
command: "true"
resources: {cpus: 0.1, mem: 4}
instances: 4
retries: {limit: %d, backoff_s: 0}
"""

def launched(retries: int) -> tuple[JobsCore, list[str]]:
    core = JobsCore()
    submit(core, SPEC % retries)
    tasks = launch_all(core, [offer(1)], T0)
    return core, [t.task_id for t in tasks]


def batch(task_ids: list[str], failing: set[int]) -> list[TaskStatus]:
    return [status(t, TaskState.FINISHED, exit_code=1 if i in failing else 0)
            for i, t in enumerate(task_ids)]


@pytest.mark.parametrize("retries", [0, 2])
@pytest.mark.parametrize("failing", [set(), {0}, {3}, {1, 2}])
def test_a_batch_of_updates_ends_as_the_same_updates_one_by_one(
    retries: int, failing: set[int],
) -> None:
    for order in itertools.permutations(range(4)):
        one, ids = launched(retries)
        many, _ = launched(retries)
        updates = [batch(ids, failing)[i] for i in order]
        kills_one = [k for u in updates for k in one.on_update(u, T0 + 1)]
        kills_many = many.on_updates(updates, T0 + 1)
        assert sorted(kills_many, key=str) == sorted(kills_one, key=str), order
        one.refresh()
        many.refresh()
        assert job_to_doc(many.jobs["mix"]) == job_to_doc(one.jobs["mix"]), order
        assert many.jobs["mix"].view() == one.jobs["mix"].view(), order
