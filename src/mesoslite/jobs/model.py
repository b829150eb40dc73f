"""Job specs and what the jobs framework reports about them (frozen dataclasses).

A spec is what a user wrote (`spec.py` parses and validates the YAML into these); a view
is what `mesoslite job list|status|history` shows. The jobs framework's own bookkeeping
lives in `records.py`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from mesoslite.model import CommandSpec, HealthCheckSpec
from mesoslite.resources import Resources


class JobType(enum.Enum):
    BATCH = "batch"
    SERVICE = "service"
    CRON = "cron"


class ConcurrencyPolicy(enum.Enum):
    """What a cron job does when a run is due while the previous one is still running."""

    ALLOW = "allow"  # run both
    FORBID = "forbid"  # skip the new run (recorded as skipped)
    REPLACE = "replace"  # kill the running one, start the new one


class RestartPolicy(enum.Enum):
    """When a service instance that ended is started again."""

    ALWAYS = "always"
    ON_FAILURE = "on-failure"  # not after exit 0
    NEVER = "never"


class ConstraintOp(enum.Enum):
    """Marathon's placement operators."""

    UNIQUE = "UNIQUE"  # at most one instance per value of the field
    CLUSTER = "CLUSTER"  # only where the field equals `value`
    GROUP_BY = "GROUP_BY"  # spread evenly over `value` (int, or every seen value) groups
    LIKE = "LIKE"  # the field matches the regex `value` (whole match)
    UNLIKE = "UNLIKE"  # the field does not match the regex `value`
    MAX_PER = "MAX_PER"  # at most `value` (int) instances per value of the field


@dataclass(frozen=True, slots=True)
class Constraint:
    """`field` is `hostname` or an agent attribute name (e.g. `rack`, `zone`)."""

    field: str
    op: ConstraintOp
    value: str = ""

    def display(self) -> str:
        return f"{self.field} {self.op.value}" + (f" {self.value}" if self.value else "")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """A failed task is retried up to `limit` times; attempt n+1 starts after
    min(backoff_s * factor**(n-1), max_backoff_s) seconds."""

    limit: int = 0
    backoff_s: float = 1.0
    factor: float = 2.0
    max_backoff_s: float = 60.0

    def delay_before(self, attempt: int) -> float:
        """Seconds to wait before attempt number `attempt` (1-based); 0 for the first."""
        if attempt <= 1:
            return 0.0
        return float(min(self.backoff_s * self.factor ** (attempt - 2), self.max_backoff_s))


@dataclass(frozen=True, slots=True)
class CronSpec:
    schedule: str  # 5-field cron or @hourly/@daily/@weekly/@monthly/@yearly/@annually/@midnight
    timezone: str = "UTC"  # an IANA zone name
    concurrency: ConcurrencyPolicy = ConcurrencyPolicy.ALLOW
    # A run missed (master down, or forbidden) by more than this is skipped; None: never skip.
    starting_deadline_s: float | None = None
    keep_runs: int = 10  # finished runs kept in the history


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    restart: RestartPolicy = RestartPolicy.ALWAYS
    # Rolling restarts (`job update`): how many instances may be down at once.
    max_unavailable: int = 1


@dataclass(frozen=True, slots=True)
class JobSpec:
    name: str
    type: JobType
    command: CommandSpec
    resources: Resources
    instances: int = 1
    role: str = "*"
    env: Mapping[str, str] = field(default_factory=dict)
    retries: RetryPolicy = RetryPolicy()
    active_deadline_s: float | None = None  # a run (batch, cron) still going after this is killed
    constraints: tuple[Constraint, ...] = ()
    health_check: HealthCheckSpec | None = None  # services only
    service: ServiceSpec | None = None  # set iff type is SERVICE
    cron: CronSpec | None = None  # set iff type is CRON
    kill_grace_period_s: float = 3.0
    labels: Mapping[str, str] = field(default_factory=dict)
    # The tier its role must have (`mesoslite role set-priority`); None: not checked.
    priority: int | None = None
    # Past this, its tasks are the first preempted (`mesoslite.max_runtime_s` label).
    max_runtime_s: float | None = None


# ---------------------------------------------------------------------------- views


class JobState(enum.Enum):
    PENDING = "PENDING"  # accepted, nothing placed yet
    RUNNING = "RUNNING"  # batch: some instance running or waiting for a retry
    DEPLOYING = "DEPLOYING"  # service: fewer instances running (and healthy) than wanted
    HEALTHY = "HEALTHY"  # service: every instance running (and healthy, with a check)
    SCHEDULED = "SCHEDULED"  # cron: waiting for its next time (runs may be active)
    SUCCEEDED = "SUCCEEDED"  # batch: every instance succeeded
    FAILED = "FAILED"  # batch: an instance failed past its retries, or the deadline passed
    KILLED = "KILLED"  # `mesoslite job kill`
    SUSPENDED = "SUSPENDED"  # cron: `mesoslite job suspend`, no run starts (runs may be active)

    @property
    def terminal(self) -> bool:
        return self in (JobState.SUCCEEDED, JobState.FAILED, JobState.KILLED)


class InstanceState(enum.Enum):
    WAITING = "WAITING"  # for an offer that fits (and its constraints)
    BACKOFF = "BACKOFF"  # waiting `next_attempt_at` before a retry or restart
    STAGING = "STAGING"  # launched, not running yet
    RUNNING = "RUNNING"
    KILLING = "KILLING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"  # out of retries
    KILLED = "KILLED"

    @property
    def terminal(self) -> bool:
        return self in (InstanceState.SUCCEEDED, InstanceState.FAILED, InstanceState.KILLED)


class RunState(enum.Enum):
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    KILLED = "KILLED"
    SKIPPED = "SKIPPED"  # cron: missed by more than the starting deadline, or forbidden


@dataclass(frozen=True, slots=True)
class InstanceView:
    index: int
    state: InstanceState
    attempt: int = 0  # 1-based number of the current (or last) attempt; 0 before the first
    task_id: str = ""
    agent_id: str = ""
    hostname: str = ""
    started_at: float | None = None
    exit_code: int | None = None
    healthy: bool | None = None
    next_attempt_at: float | None = None  # BACKOFF: when the next attempt may start
    message: str = ""  # why it waits (e.g. the constraint no agent meets), why it ended


@dataclass(frozen=True, slots=True)
class AttemptView:
    """One task the job ran: `job history` lists these, newest last."""

    run_id: str
    instance: int
    attempt: int
    task_id: str
    state: str  # the task's final state, e.g. TASK_FINISHED, or TASK_RUNNING while it runs
    hostname: str = ""
    started_at: float | None = None
    finished_at: float | None = None
    exit_code: int | None = None
    message: str = ""


@dataclass(frozen=True, slots=True)
class RunView:
    """One run: the only run of a batch job or service, or one scheduled time of a cron job."""

    run_id: str
    state: RunState
    scheduled_at: float | None = None  # cron: the scheduled time this run is for
    started_at: float | None = None
    finished_at: float | None = None
    exit_codes: tuple[int | None, ...] = ()  # per instance, of its last attempt
    attempts: int = 0
    message: str = ""


@dataclass(frozen=True, slots=True)
class RunTotals:
    """What is left of the runs dropped past `keep_runs`: their counts, not their details."""

    runs: int = 0
    succeeded: int = 0
    failed: int = 0
    killed: int = 0
    skipped: int = 0
    instances_succeeded: int = 0
    instances_failed: int = 0
    attempts: int = 0

    def add(self, run: RunView, instances_succeeded: int, instances_failed: int) -> RunTotals:
        return RunTotals(
            runs=self.runs + 1,
            succeeded=self.succeeded + (run.state == RunState.SUCCEEDED),
            failed=self.failed + (run.state == RunState.FAILED),
            killed=self.killed + (run.state == RunState.KILLED),
            skipped=self.skipped + (run.state == RunState.SKIPPED),
            instances_succeeded=self.instances_succeeded + instances_succeeded,
            instances_failed=self.instances_failed + instances_failed,
            attempts=self.attempts + run.attempts,
        )


@dataclass(frozen=True, slots=True)
class JobView:
    name: str
    type: JobType
    state: JobState
    spec_yaml: str  # the spec as submitted (or last updated)
    instances_wanted: int
    submitted_at: float
    updated_at: float
    version: int = 1  # bumped by `job update`
    message: str = ""  # the most useful thing to say: why it waits, why it failed
    next_run_at: float | None = None  # cron
    instances: tuple[InstanceView, ...] = ()  # the current (cron: latest active) run's
    runs: tuple[RunView, ...] = ()  # newest last; cron keeps `keep_runs` finished ones
    older_runs: RunTotals = RunTotals()  # the runs dropped past `keep_runs`, summed up


# ---------------------------------------------------------------------------- plans
# `mesoslite job plan` (made by `jobs/plan.py`).


@dataclass(frozen=True, slots=True)
class PlanChange:
    field: str  # a dotted path of the parsed spec, e.g. `resources`, `cron.schedule`
    old: str
    new: str


@dataclass(frozen=True, slots=True)
class PlanInstance:
    index: int
    action: str  # "launch", "replace", "keep" (runs on), "stop" or "wait"
    agent_id: str = ""
    hostname: str = ""
    reason: str = ""  # why it would wait, or a note


@dataclass(frozen=True, slots=True)
class JobPlan:
    name: str
    type: JobType
    action: str  # "create", "update" or "resubmit" (an ended job of that name is replaced)
    version: int
    changes: tuple[PlanChange, ...] = ()
    instances: tuple[PlanInstance, ...] = ()
    next_run_at: float | None = None  # cron
    message: str = ""
