"""The jobs framework's bookkeeping: jobs, their runs, instances and attempts, and their
JSON documents in the registry (one document per job, rewritten on every change).

A job's spec is kept as the YAML the user gave and parsed again on load, so the registry
holds what the user wrote and nothing the parser derived.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from mesoslite.jobs.model import (
    AttemptView,
    InstanceState,
    InstanceView,
    JobSpec,
    JobState,
    JobView,
    RunState,
    RunView,
)
from mesoslite.jobs.spec import parse_job_spec

HISTORY_KEEP = 100  # attempts kept per job for `job history` (the registry holds them)


@dataclass(slots=True)
class Attempt:
    """One task launched for an instance."""

    task_id: str
    number: int
    agent_id: str = ""
    hostname: str = ""
    attributes: dict[str, str] = field(default_factory=dict)
    state: str = "TASK_STAGING"
    launched_at: float = 0.0
    finished_at: float | None = None
    exit_code: int | None = None
    healthy: bool | None = None
    message: str = ""

    def placement(self) -> dict[str, str]:
        return {**self.attributes, "hostname": self.hostname}


@dataclass(slots=True)
class Instance:
    index: int
    state: InstanceState = InstanceState.WAITING
    version: int = 1  # the spec version its current attempt runs
    attempts: int = 0  # launched so far
    failures: int = 0  # failed attempts, counted against the retry limit
    current: Attempt | None = None
    next_attempt_at: float | None = None
    message: str = ""
    # Why we are killing it: "" (not killing), "kill", "replace" (rolling update or cron
    # replace), "deadline", "scale" (instances lowered), "sibling" (another instance failed).
    killing_for: str = ""

    @property
    def active(self) -> bool:
        return self.state in (InstanceState.STAGING, InstanceState.RUNNING, InstanceState.KILLING)


@dataclass(slots=True)
class Run:
    run_id: str
    state: RunState = RunState.RUNNING
    scheduled_at: float | None = None
    started_at: float = 0.0
    finished_at: float | None = None
    instances: list[Instance] = field(default_factory=list)
    message: str = ""

    def view(self) -> RunView:
        return RunView(
            run_id=self.run_id,
            state=self.state,
            scheduled_at=self.scheduled_at,
            started_at=self.started_at,
            finished_at=self.finished_at,
            exit_codes=tuple(i.current.exit_code if i.current else None for i in self.instances),
            attempts=sum(i.attempts for i in self.instances),
            message=self.message,
        )


@dataclass(slots=True)
class Job:
    spec: JobSpec
    spec_yaml: str
    state: JobState
    submitted_at: float
    updated_at: float
    version: int = 1
    runs: list[Run] = field(default_factory=list)
    history: list[AttemptView] = field(default_factory=list)
    message: str = ""
    # Cron: the latest scheduled time already handled (run or skipped); never handled twice.
    last_scheduled: float | None = None
    next_run_at: float | None = None
    run_counter: int = 0

    @property
    def name(self) -> str:
        return self.spec.name

    def active_runs(self) -> list[Run]:
        return [r for r in self.runs if r.state == RunState.RUNNING]

    def view(self) -> JobView:
        active = self.active_runs()
        shown = active[-1] if active else (self.runs[-1] if self.runs else None)
        return JobView(
            name=self.name,
            type=self.spec.type,
            state=self.state,
            spec_yaml=self.spec_yaml,
            instances_wanted=self.spec.instances,
            submitted_at=self.submitted_at,
            updated_at=self.updated_at,
            version=self.version,
            message=self.message,
            next_run_at=self.next_run_at,
            instances=tuple(instance_view(i) for i in shown.instances) if shown else (),
            runs=tuple(r.view() for r in self.runs),
        )


def instance_view(i: Instance) -> InstanceView:
    a = i.current
    return InstanceView(
        index=i.index,
        state=i.state,
        attempt=i.attempts,
        task_id=a.task_id if a else "",
        agent_id=a.agent_id if a else "",
        hostname=a.hostname if a else "",
        started_at=a.launched_at if a else None,
        exit_code=a.exit_code if a else None,
        healthy=a.healthy if a else None,
        next_attempt_at=i.next_attempt_at,
        message=i.message,
    )


# ---------------------------------------------------------------------------- JSON


def _attempt_doc(a: Attempt) -> dict[str, Any]:
    return {
        "task_id": a.task_id,
        "number": a.number,
        "agent_id": a.agent_id,
        "hostname": a.hostname,
        "attributes": a.attributes,
        "state": a.state,
        "launched_at": a.launched_at,
        "finished_at": a.finished_at,
        "exit_code": a.exit_code,
        "healthy": a.healthy,
        "message": a.message,
    }


def _attempt_from(d: dict[str, Any]) -> Attempt:
    return Attempt(**d)


def _instance_doc(i: Instance) -> dict[str, Any]:
    return {
        "index": i.index,
        "state": i.state.value,
        "version": i.version,
        "attempts": i.attempts,
        "failures": i.failures,
        "current": _attempt_doc(i.current) if i.current else None,
        "next_attempt_at": i.next_attempt_at,
        "message": i.message,
        "killing_for": i.killing_for,
    }


def _instance_from(d: dict[str, Any]) -> Instance:
    return Instance(
        index=d["index"],
        state=InstanceState(d["state"]),
        version=d["version"],
        attempts=d["attempts"],
        failures=d["failures"],
        current=_attempt_from(d["current"]) if d["current"] else None,
        next_attempt_at=d["next_attempt_at"],
        message=d["message"],
        killing_for=d["killing_for"],
    )


def _history_doc(h: AttemptView) -> dict[str, Any]:
    return {
        "run_id": h.run_id,
        "instance": h.instance,
        "attempt": h.attempt,
        "task_id": h.task_id,
        "state": h.state,
        "hostname": h.hostname,
        "started_at": h.started_at,
        "finished_at": h.finished_at,
        "exit_code": h.exit_code,
        "message": h.message,
    }


def job_to_doc(job: Job) -> str:
    return json.dumps(
        {
            "spec_yaml": job.spec_yaml,
            "state": job.state.value,
            "submitted_at": job.submitted_at,
            "updated_at": job.updated_at,
            "version": job.version,
            "message": job.message,
            "last_scheduled": job.last_scheduled,
            "next_run_at": job.next_run_at,
            "run_counter": job.run_counter,
            "runs": [
                {
                    "run_id": r.run_id,
                    "state": r.state.value,
                    "scheduled_at": r.scheduled_at,
                    "started_at": r.started_at,
                    "finished_at": r.finished_at,
                    "message": r.message,
                    "instances": [_instance_doc(i) for i in r.instances],
                }
                for r in job.runs
            ],
            "history": [_history_doc(h) for h in job.history],
        },
        separators=(",", ":"),
    )


def job_from_doc(text: str) -> Job:
    d = json.loads(text)
    runs = [
        Run(
            run_id=r["run_id"],
            state=RunState(r["state"]),
            scheduled_at=r["scheduled_at"],
            started_at=r["started_at"],
            finished_at=r["finished_at"],
            message=r["message"],
            instances=[_instance_from(i) for i in r["instances"]],
        )
        for r in d["runs"]
    ]
    return Job(
        spec=parse_job_spec(d["spec_yaml"]),
        spec_yaml=d["spec_yaml"],
        state=JobState(d["state"]),
        submitted_at=d["submitted_at"],
        updated_at=d["updated_at"],
        version=d["version"],
        runs=runs,
        history=[AttemptView(**h) for h in d["history"]],
        message=d["message"],
        last_scheduled=d["last_scheduled"],
        next_run_at=d["next_run_at"],
        run_counter=d["run_counter"],
    )
