"""Jobs views (`mesoslite.jobs.model`) to and from their `jobs.proto` messages, both ways.

The master's `JobsServicer` converts views to protos; the CLI converts them back, so that
its output code works on views. An enum value this version does not know (from a newer
master) raises `ValueError`.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any, TypeVar

from mesoslite._proto.v1 import jobs_pb2
from mesoslite.jobs.model import (
    AttemptView,
    InstanceState,
    InstanceView,
    JobPlan,
    JobState,
    JobType,
    JobView,
    PlanChange,
    PlanInstance,
    RunState,
    RunTotals,
    RunView,
)
from mesoslite.jobs.summary import JobSummary

E = TypeVar("E", bound=enum.Enum)

# Each view enum's proto enum and the prefix of its value names (`JOB_STATE_RUNNING`).
_PREFIX: dict[type[enum.Enum], tuple[Any, str]] = {
    JobType: (jobs_pb2.JobType, "JOB_TYPE_"),
    JobState: (jobs_pb2.JobState, "JOB_STATE_"),
    InstanceState: (jobs_pb2.InstanceState, "INSTANCE_STATE_"),
    RunState: (jobs_pb2.RunState, "RUN_STATE_"),
}


def enum_to_pb(value: enum.Enum) -> int:
    pb_enum, prefix = _PREFIX[type(value)]
    return int(pb_enum.Value(prefix + value.name))


# Looked up once: a 1,000-instance job's status converts 1,000 instance states (`job
# submit --wait` asks every 0.5 s).
_INSTANCE_STATE_PB = {s: enum_to_pb(s) for s in InstanceState}


def enum_from_pb(cls: type[E], number: int) -> E:
    """Raises `ValueError` for a number the proto enum does not have, or UNSPECIFIED."""
    pb_enum, prefix = _PREFIX[cls]
    try:
        name = pb_enum.Name(number)
    except ValueError:
        raise ValueError(f"unknown {cls.__name__} {number}") from None
    try:
        return cls[name.removeprefix(prefix)]
    except KeyError:
        raise ValueError(f"unknown {cls.__name__} {name}") from None


def _opt(msg: Any, name: str) -> Any:
    return getattr(msg, name) if msg.HasField(name) else None


# ---------------------------------------------------------------------------- to the wire


def instance_to_pb(i: InstanceView) -> jobs_pb2.JobInstance:
    return jobs_pb2.JobInstance(
        index=i.index,
        state=_INSTANCE_STATE_PB[i.state],  # type: ignore[arg-type]
        attempt=i.attempt,
        task_id=i.task_id,
        agent_id=i.agent_id,
        hostname=i.hostname,
        started_at=i.started_at,
        exit_code=i.exit_code,
        healthy=i.healthy,
        next_attempt_at=i.next_attempt_at,
        message=i.message,
    )


def run_to_pb(r: RunView) -> jobs_pb2.JobRun:
    return jobs_pb2.JobRun(
        run_id=r.run_id,
        state=enum_to_pb(r.state),  # type: ignore[arg-type]
        scheduled_at=r.scheduled_at,
        started_at=r.started_at,
        finished_at=r.finished_at,
        exit_codes=[jobs_pb2.ExitCode(code=c) for c in r.exit_codes],
        attempts=r.attempts,
        message=r.message,
    )


def attempt_to_pb(a: AttemptView) -> jobs_pb2.JobAttempt:
    return jobs_pb2.JobAttempt(
        run_id=a.run_id,
        instance=a.instance,
        attempt=a.attempt,
        task_id=a.task_id,
        state=a.state,
        hostname=a.hostname,
        started_at=a.started_at,
        finished_at=a.finished_at,
        exit_code=a.exit_code,
        message=a.message,
    )


def job_to_pb(j: JobView) -> jobs_pb2.Job:
    return jobs_pb2.Job(
        name=j.name,
        type=enum_to_pb(j.type),  # type: ignore[arg-type]
        state=enum_to_pb(j.state),  # type: ignore[arg-type]
        spec_yaml=j.spec_yaml,
        instances_wanted=j.instances_wanted,
        submitted_at=j.submitted_at,
        updated_at=j.updated_at,
        version=j.version,
        message=j.message,
        next_run_at=j.next_run_at,
        instances=[instance_to_pb(i) for i in j.instances],
        runs=[run_to_pb(r) for r in j.runs],
        older_runs=jobs_pb2.JobRunTotals(**dataclasses.asdict(j.older_runs)),
    )


# ---------------------------------------------------------------------------- from the wire


def instance_from_pb(m: jobs_pb2.JobInstance) -> InstanceView:
    return InstanceView(
        index=m.index,
        state=enum_from_pb(InstanceState, m.state),
        attempt=m.attempt,
        task_id=m.task_id,
        agent_id=m.agent_id,
        hostname=m.hostname,
        started_at=_opt(m, "started_at"),
        exit_code=_opt(m, "exit_code"),
        healthy=_opt(m, "healthy"),
        next_attempt_at=_opt(m, "next_attempt_at"),
        message=m.message,
    )


def run_from_pb(m: jobs_pb2.JobRun) -> RunView:
    return RunView(
        run_id=m.run_id,
        state=enum_from_pb(RunState, m.state),
        scheduled_at=_opt(m, "scheduled_at"),
        started_at=_opt(m, "started_at"),
        finished_at=_opt(m, "finished_at"),
        exit_codes=tuple(_opt(c, "code") for c in m.exit_codes),
        attempts=m.attempts,
        message=m.message,
    )


def attempt_from_pb(m: jobs_pb2.JobAttempt) -> AttemptView:
    return AttemptView(
        run_id=m.run_id,
        instance=m.instance,
        attempt=m.attempt,
        task_id=m.task_id,
        state=m.state,
        hostname=m.hostname,
        started_at=_opt(m, "started_at"),
        finished_at=_opt(m, "finished_at"),
        exit_code=_opt(m, "exit_code"),
        message=m.message,
    )


def job_from_pb(m: jobs_pb2.Job) -> JobView:
    return JobView(
        name=m.name,
        type=enum_from_pb(JobType, m.type),
        state=enum_from_pb(JobState, m.state),
        spec_yaml=m.spec_yaml,
        instances_wanted=m.instances_wanted,
        submitted_at=m.submitted_at,
        updated_at=m.updated_at,
        version=m.version,
        message=m.message,
        next_run_at=_opt(m, "next_run_at"),
        instances=tuple(instance_from_pb(i) for i in m.instances),
        runs=tuple(run_from_pb(r) for r in m.runs),
        older_runs=RunTotals(**{f.name: getattr(m.older_runs, f.name)
                                for f in dataclasses.fields(RunTotals)}),
    )


# ---------------------------------------------------------------------------- job plans


def plan_to_pb(p: JobPlan) -> jobs_pb2.JobPlan:
    return jobs_pb2.JobPlan(
        name=p.name,
        type=enum_to_pb(p.type),  # type: ignore[arg-type]
        action=p.action,
        version=p.version,
        changes=[jobs_pb2.PlanChange(field=c.field, old=c.old, new=c.new) for c in p.changes],
        instances=[
            jobs_pb2.PlanInstance(index=i.index, action=i.action, agent_id=i.agent_id,
                                  hostname=i.hostname, reason=i.reason)
            for i in p.instances
        ],
        next_run_at=p.next_run_at,
        message=p.message,
    )


def plan_from_pb(m: jobs_pb2.JobPlan) -> JobPlan:
    return JobPlan(
        name=m.name,
        type=enum_from_pb(JobType, m.type),
        action=m.action,
        version=m.version,
        changes=tuple(PlanChange(c.field, c.old, c.new) for c in m.changes),
        instances=tuple(PlanInstance(i.index, i.action, i.agent_id, i.hostname, i.reason)
                        for i in m.instances),
        next_run_at=_opt(m, "next_run_at"),
        message=m.message,
    )


# ---------------------------------------------------------------------------- job summaries


def summary_to_pb(s: JobSummary) -> jobs_pb2.JobSummary:
    return jobs_pb2.JobSummary(
        name=s.name,
        type=enum_to_pb(s.type),  # type: ignore[arg-type]
        state=enum_to_pb(s.state),  # type: ignore[arg-type]
        message=s.message,
        instances_wanted=s.instances_wanted,
        next_run_at=s.next_run_at,
        instances=[
            jobs_pb2.InstanceCount(state=_INSTANCE_STATE_PB[k], count=n)  # type: ignore[arg-type]
            for k, n in s.counts.items() if n
        ],
        unhealthy=s.unhealthy,
        durable=s.durable,
    )


def summary_from_pb(m: jobs_pb2.JobSummary) -> JobSummary:
    return JobSummary(
        name=m.name,
        type=enum_from_pb(JobType, m.type),
        state=enum_from_pb(JobState, m.state),
        message=m.message,
        instances_wanted=m.instances_wanted,
        next_run_at=_opt(m, "next_run_at"),
        counts={enum_from_pb(InstanceState, c.state): c.count for c in m.instances},
        unhealthy=m.unhealthy,
        durable=m.durable,
    )
