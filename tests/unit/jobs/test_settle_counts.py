"""A batch job's run is judged for success without scanning every instance per batch of
updates (issue 15: the leading SUCCEEDED instances are counted), and still ends exactly
when its last instance succeeds, in whatever order they do."""

from __future__ import annotations

from typing import Any

import pytest

from mesoslite.jobs.core import JobsCore
from mesoslite.jobs.model import JobState
from mesoslite.model import TaskState

from .test_core import T0, launch_all, offer, status, submit

N = 200
SPEC = f"""
name: wide
type: batch
command: "true"
resources: {{cpus: 0.01, mem: 1}}
instances: {N}
"""


class CountingList(list[Any]):
    """A list that counts how often it is iterated over whole."""

    scans = 0

    def __iter__(self) -> Any:
        CountingList.scans += 1
        return super().__iter__()


def launched() -> tuple[JobsCore, list[str]]:
    core = JobsCore()
    submit(core, SPEC)
    ids = [t.task_id for t in launch_all(core, [offer(1, "cpus:8;mem:4096")], T0)]
    assert len(ids) == N
    return core, ids


def finish(core: JobsCore, ids: list[str]) -> None:
    core.on_updates([status(t, TaskState.FINISHED, exit_code=0) for t in ids], T0 + 1)


def test_batches_of_successes_do_not_scan_the_whole_run_each() -> None:
    core, ids = launched()
    run = core.jobs["wide"].runs[-1]
    run.instances = CountingList(run.instances)
    CountingList.scans = 0
    for start in range(0, N, 10):  # 20 batches, in the order they were launched
        finish(core, ids[start:start + 10])
    assert CountingList.scans <= 3  # the final judgement, not one per batch (20)
    core.refresh()
    assert core.jobs["wide"].state == JobState.SUCCEEDED


@pytest.mark.parametrize("order", ["reversed", "interleaved"])
def test_the_run_succeeds_with_its_last_instance_in_any_order(order: str) -> None:
    core, ids = launched()
    picked = ids[::-1] if order == "reversed" else ids[1::2] + ids[0::2]
    for start in range(0, N - 10, 10):
        finish(core, picked[start:start + 10])
        core.refresh()
        assert core.jobs["wide"].state != JobState.SUCCEEDED
    finish(core, picked[N - 10:])
    core.refresh()
    assert core.jobs["wide"].state == JobState.SUCCEEDED
