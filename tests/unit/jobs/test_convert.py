"""`jobs.convert`: every view survives the trip to its proto message and back."""

from __future__ import annotations

import pytest

from mesoslite._proto.v1 import jobs_pb2
from mesoslite.jobs import convert
from mesoslite.jobs.model import (
    AttemptView,
    InstanceState,
    InstanceView,
    JobState,
    JobType,
    JobView,
    RunState,
    RunView,
)

FULL_JOB = JobView(
    name="web",
    type=JobType.SERVICE,
    state=JobState.DEPLOYING,
    spec_yaml="name: web\ntype: service\n",
    instances_wanted=3,
    submitted_at=1700000000.25,
    updated_at=1700000010.5,
    version=2,
    message="hostname UNIQUE: all 3 agents already run an instance",
    next_run_at=1700000060.0,
    instances=(
        InstanceView(
            index=0,
            state=InstanceState.RUNNING,
            attempt=1,
            task_id="web-0-1",
            agent_id="ag-1",
            hostname="h1",
            started_at=1700000001.0,
            healthy=True,
        ),
        InstanceView(
            index=1,
            state=InstanceState.BACKOFF,
            attempt=2,
            exit_code=-9,
            healthy=False,
            next_attempt_at=1700000020.0,
            message="killed",
        ),
        InstanceView(index=2, state=InstanceState.WAITING, exit_code=0),
    ),
    runs=(
        RunView(
            run_id="r1",
            state=RunState.SKIPPED,
            scheduled_at=1699999940.0,
            message="missed by more than starting_deadline_s",
        ),
        RunView(
            run_id="r2",
            state=RunState.FAILED,
            scheduled_at=1700000000.0,
            started_at=1700000000.5,
            finished_at=1700000009.0,
            exit_codes=(0, None, 3, -15),
            attempts=4,
        ),
    ),
)


def test_a_job_with_every_field_set_survives_the_round_trip() -> None:
    assert convert.job_from_pb(convert.job_to_pb(FULL_JOB)) == FULL_JOB


def test_unset_optional_fields_stay_none_and_zero_values_stay_set() -> None:
    bare = JobView(
        name="b",
        type=JobType.BATCH,
        state=JobState.PENDING,
        spec_yaml="",
        instances_wanted=1,
        submitted_at=0.0,
        updated_at=0.0,
        instances=(InstanceView(index=0, state=InstanceState.WAITING),),
    )
    msg = convert.job_to_pb(bare)
    assert not msg.HasField("next_run_at")
    assert not msg.instances[0].HasField("exit_code")
    assert convert.job_from_pb(msg) == bare
    zero = InstanceView(index=0, state=InstanceState.SUCCEEDED, exit_code=0, started_at=0.0)
    assert convert.instance_from_pb(convert.instance_to_pb(zero)) == zero


def test_an_attempt_survives_the_round_trip_with_and_without_its_times() -> None:
    done = AttemptView(
        run_id="r1",
        instance=2,
        attempt=3,
        task_id="t",
        state="TASK_FAILED",
        hostname="h",
        started_at=1.5,
        finished_at=2.5,
        exit_code=1,
        message="exited 1",
    )
    running = AttemptView(run_id="r1", instance=0, attempt=1, task_id="u", state="TASK_RUNNING")
    for view in (done, running):
        assert convert.attempt_from_pb(convert.attempt_to_pb(view)) == view


@pytest.mark.parametrize("cls", [JobType, JobState, InstanceState, RunState])
def test_every_enum_value_has_a_proto_value(cls: type) -> None:
    for value in cls:
        assert convert.enum_from_pb(cls, convert.enum_to_pb(value)) is value


def test_an_unknown_or_unspecified_state_is_an_error_not_a_guess() -> None:
    with pytest.raises(ValueError, match="JobState"):
        convert.enum_from_pb(JobState, jobs_pb2.JOB_STATE_UNSPECIFIED)
    with pytest.raises(ValueError, match="unknown RunState 99"):
        convert.enum_from_pb(RunState, 99)
