"""Jobs and priority tiers (#16): a preempted batch instance starts again without using up
its retries; `priority:` and `max_runtime_s` in specs; what waits, by role."""

from __future__ import annotations

from dataclasses import replace

import pytest

from mesoslite.allocator.base import Demand
from mesoslite.errors import ValidationError
from mesoslite.jobs.core import JobsCore
from mesoslite.jobs.model import InstanceState, JobState
from mesoslite.jobs.spec import parse_job_spec
from mesoslite.jobs.waiting import check_priority, waiting_by_role
from mesoslite.model import MAX_RUNTIME_LABEL, REASON_PREEMPTED, Offer, TaskState
from mesoslite.resources import parse_resources
from tests.unit.jobs.test_core import T0, launch_all, offer, status, submit


def batch_offer(n: int) -> Offer:
    return replace(offer(n), allocation_role="batch")


LOW = """
name: low
type: batch
command: sleep 100
resources: {cpus: 1, mem: 64}
role: batch
retries: 0
max_runtime_s: 50
"""


def test_a_preempted_instance_runs_again_without_using_up_its_retries() -> None:
    core = JobsCore()
    submit(core, LOW)
    [t1] = launch_all(core, [batch_offer(1)], T0)
    assert t1.labels[MAX_RUNTIME_LABEL] == "50"
    preempted = replace(status(t1, TaskState.KILLED), reason=REASON_PREEMPTED)
    core.on_update(preempted, T0 + 1)
    inst = core.jobs["low"].runs[0].instances[0]
    assert inst.state == InstanceState.WAITING and inst.failures == 0
    [t2] = launch_all(core, [batch_offer(2)], T0 + 1)
    core.on_update(status(t2, TaskState.FINISHED, exit_code=0), T0 + 2)
    assert core.get("low").state == JobState.SUCCEEDED


def test_a_plain_kill_still_counts_as_a_failure() -> None:
    core = JobsCore()
    submit(core, LOW)
    [t1] = launch_all(core, [batch_offer(1)], T0)
    core.on_update(status(t1, TaskState.KILLED), T0 + 1)
    assert core.get("low").state == JobState.FAILED


def test_waiting_instances_are_declared_by_role_and_shape() -> None:
    core = JobsCore()
    submit(core, LOW.replace("name: low", "name: a") + "instances: 2\n")
    submit(core, LOW.replace("name: low", "name: b").replace("role: batch", "role: urgent"))
    assert waiting_by_role(core.book, T0) == {
        "batch": (Demand(parse_resources("cpus:1;mem:64"), 2),),
        "urgent": (Demand(parse_resources("cpus:1;mem:64"), 1),),
    }


def test_priority_and_max_runtime_are_validated() -> None:
    spec = parse_job_spec(LOW + "priority: 5\n")
    assert (spec.priority, spec.max_runtime_s) == (5, 50.0)
    check_priority(spec, 5)
    with pytest.raises(ValidationError, match="role 'batch' has priority 0") as e:
        check_priority(spec, 0)
    assert e.value.field == "priority"
    check_priority(parse_job_spec(LOW), 7)  # no priority: not checked
    with pytest.raises(ValidationError, match="priority"):
        parse_job_spec(LOW + "priority: 5000\n")
    with pytest.raises(ValidationError, match="max_runtime_s"):
        parse_job_spec(LOW.replace("max_runtime_s: 50", "max_runtime_s: 0"))
