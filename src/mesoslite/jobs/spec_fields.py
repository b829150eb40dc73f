"""The parser of each top-level key of a job spec (`PARSERS`), with its defaults and limits."""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from mesoslite.allocator.tiers import MAX_PRIORITY, MIN_PRIORITY
from mesoslite.jobs.cron import CronSchedule
from mesoslite.jobs.model import ConcurrencyPolicy, JobType, RestartPolicy, RetryPolicy
from mesoslite.jobs.spec_constraints import parse_constraints
from mesoslite.jobs.spec_values import (
    Invalid,
    as_choice,
    as_duration,
    as_integer,
    as_mapping,
    as_number,
    as_str_map,
    as_string,
    bool_hint,
    kind_of,
    unknown_key,
)
from mesoslite.limits import JOB_NAME_RE as NAME_RE
from mesoslite.limits import ROLE_RE, command_size_problem
from mesoslite.model import HEALTH_CHECK_KINDS, CommandSpec, HealthCheckSpec
from mesoslite.resources import MAX_SCALAR, SCALE, Resources

DEFAULT_CPUS = 0.1
DEFAULT_MEM_MB = 32.0
MAX_INSTANCES = 10_000
MAX_RETRIES = 1_000
MAX_KEEP_RUNS = 1_000
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
RESOURCE_KEYS = ("cpus", "mem", "disk", "gpus")
RETRY_KEYS = ("limit", "backoff_s", "factor", "max_backoff_s")
HEALTH_CHECK_KEYS = (
    "kind", "command", "port", "path", "delay_s", "interval_s", "timeout_s", "grace_period_s",
    "consecutive_failures",
)  # fmt: skip


def _name(value: Any, field: str) -> str:
    name = as_string(value, field)
    if not NAME_RE.match(name):
        raise Invalid(
            field,
            "expected a DNS label: 1-63 lowercase letters, digits and '-', starting and ending "
            f"with a letter or digit, got {name!r}",
        )
    return name


def _type(value: Any, field: str) -> JobType:
    return JobType(as_choice(value, field, tuple(t.value for t in JobType)))


def _command(value: Any, field: str) -> CommandSpec:
    if isinstance(value, str):
        if not value.strip():
            raise Invalid(field, "must not be empty")
        _check_size(value, (), field)
        return CommandSpec.of_shell(value)
    if isinstance(value, list):
        if not value:
            raise Invalid(field, "expected a shell string or a non-empty list of strings, got []")
        argv = []
        for i, arg in enumerate(value):
            if isinstance(arg, bool) or not isinstance(arg, str | int | float):
                raise Invalid(f"{field}[{i}]", f"expected a string, got {kind_of(arg)}")
            argv.append(str(arg))
        if not argv[0].strip():
            raise Invalid(f"{field}[0]", "the program must not be empty")
        _check_size("", argv, field)
        return CommandSpec.of_argv(argv)
    raise Invalid(
        field,
        f"expected a shell string or a list of strings, got {kind_of(value)}{bool_hint(value)}",
    )


# False while a spec is read back from the registry (`parse_job_spec(stored=True)`): it was
# accepted under the size limits of its day, and a tighter limit must not hide an
# acknowledged job. (A context variable: the field parsers share one signature.)
SIZE_LIMITS_APPLY: ContextVar[bool] = ContextVar("size_limits_apply", default=True)


def _check_size(value: str, argv: tuple[str, ...] | list[str], field: str) -> None:
    if not SIZE_LIMITS_APPLY.get():
        return
    problem = command_size_problem(value, argv, {})
    if problem is not None:
        raise Invalid(field + problem[0], problem[1])


def _env(value: Any, field: str) -> dict[str, str]:
    env = as_str_map(value, field, ENV_NAME_RE)
    problem = command_size_problem("", (), env) if SIZE_LIMITS_APPLY.get() else None
    if problem is not None:
        raise Invalid(field, problem[1])
    return env


def parse_resources_key(value: Any, field: str) -> Resources:
    given = as_mapping(value, field)
    for key in given:
        if key not in RESOURCE_KEYS:
            raise Invalid(f"{field}.{key}", unknown_key(key, RESOURCE_KEYS, "resource"))
    scalars = {
        "cpus": as_number(given.get("cpus", DEFAULT_CPUS), f"{field}.cpus", gt=0, hi=MAX_SCALAR),
        "mem": as_number(given.get("mem", DEFAULT_MEM_MB), f"{field}.mem", gt=0, hi=MAX_SCALAR),
        "disk": as_number(given.get("disk", 0), f"{field}.disk", ge=0, hi=MAX_SCALAR),
        "gpus": float(as_integer(given.get("gpus", 0), f"{field}.gpus", 0, 1_000_000)),
    }
    for key in ("cpus", "mem"):
        if round(scalars[key] * SCALE) == 0:  # kept in thousandths: this would be 0
            raise Invalid(f"{field}.{key}", f"expected at least 0.001, got {scalars[key]:g}")
    return Resources.of(scalars=scalars)


def _role(value: Any, field: str) -> str:
    role = as_string(value, field)
    if not ROLE_RE.match(role):
        raise Invalid(
            field, f"expected '*' or path segments of [a-z0-9_-] like 'eng/ml', got {role!r}"
        )
    return role


def _user(value: Any, field: str) -> str:
    """The user the job's tasks run as on the agents (#14); "" runs them as the agent's."""
    from mesoslite.agent.users import check_user_name  # pure: names only, no host lookup

    user = as_string(value, field)
    problem = check_user_name(user) if user else None
    if problem is not None:
        raise Invalid(field, problem)
    return user


def _retries(value: Any, field: str) -> RetryPolicy:
    if not isinstance(value, dict):
        if isinstance(value, int) and not isinstance(value, bool):
            return RetryPolicy(limit=as_integer(value, field, 0, MAX_RETRIES))
        raise Invalid(
            field,
            f"expected a retry limit (an integer from 0 to {MAX_RETRIES}) or a mapping of "
            f"{', '.join(RETRY_KEYS)}, got {kind_of(value)}",
        )
    given = as_mapping(value, field, RETRY_KEYS)
    d = RetryPolicy()
    backoff_s = as_duration(given.get("backoff_s", d.backoff_s), f"{field}.backoff_s", zero_ok=True)
    policy = RetryPolicy(
        limit=as_integer(given.get("limit", d.limit), f"{field}.limit", 0, MAX_RETRIES),
        backoff_s=backoff_s,
        factor=as_number(given.get("factor", d.factor), f"{field}.factor", ge=1, hi=100),
        max_backoff_s=as_duration(
            given.get("max_backoff_s", max(d.max_backoff_s, backoff_s)),
            f"{field}.max_backoff_s",
            zero_ok=True,
        ),
    )
    if policy.max_backoff_s < policy.backoff_s:
        raise Invalid(
            f"{field}.max_backoff_s",
            f"must be >= backoff_s ({policy.backoff_s:g}), got {policy.max_backoff_s:g}",
        )
    return policy


_REQUIRED_BY_KIND = {"command": ("command",), "http": ("port",), "tcp": ("port",)}
_ONLY_FOR_KINDS = {"command": ("command",), "port": ("http", "tcp"), "path": ("http",)}


def _health_check(value: Any, field: str) -> HealthCheckSpec:
    given = as_mapping(value, field, HEALTH_CHECK_KEYS)
    if "kind" not in given:
        raise Invalid(f"{field}.kind", f"is required: one of {', '.join(HEALTH_CHECK_KINDS)}")
    kind = as_choice(given["kind"], f"{field}.kind", HEALTH_CHECK_KINDS)
    for key in _REQUIRED_BY_KIND[kind]:
        if key not in given:
            raise Invalid(f"{field}.{key}", f"is required for {kind} checks")
    for key, kinds in _ONLY_FOR_KINDS.items():
        if key in given and kind not in kinds:
            raise Invalid(
                f"{field}.{key}", f"applies to {' and '.join(kinds)} checks only, not {kind}"
            )
    d = HealthCheckSpec(kind)
    path = as_string(given.get("path", d.path), f"{field}.path")
    if not path.startswith("/"):
        raise Invalid(f"{field}.path", f"must start with '/', got {path!r}")

    def seconds(key: str, default: float, *, zero_ok: bool) -> float:
        return as_duration(given.get(key, default), f"{field}.{key}", zero_ok=zero_ok)

    return HealthCheckSpec(
        kind=kind,
        command=as_string(given["command"], f"{field}.command") if "command" in given else "",
        port=as_integer(given["port"], f"{field}.port", 1, 65535) if "port" in given else 0,
        path=path,
        delay_s=seconds("delay_s", d.delay_s, zero_ok=True),
        interval_s=seconds("interval_s", d.interval_s, zero_ok=False),
        timeout_s=seconds("timeout_s", d.timeout_s, zero_ok=False),
        grace_period_s=seconds("grace_period_s", d.grace_period_s, zero_ok=True),
        consecutive_failures=as_integer(
            given.get("consecutive_failures", d.consecutive_failures),
            f"{field}.consecutive_failures",
            1,
            1000,
        ),
    )


def _schedule(value: Any, field: str) -> str:
    text = as_string(value, field)
    try:
        CronSchedule.parse(text)
    except ValueError as e:
        raise Invalid(field, str(e)) from None
    return text


def _timezone(value: Any, field: str) -> str:
    name = as_string(value, field)
    try:
        zoneinfo.ZoneInfo(name)
    except (KeyError, ValueError, OSError):
        raise Invalid(
            field,
            f"unknown time zone {name!r}; expected an IANA name like 'Europe/Berlin' or 'UTC'",
        ) from None
    return name


def _optional(parse: Callable[[Any, str], Any]) -> Callable[[Any, str], Any]:
    return lambda value, field: None if value is None else parse(value, field)


PARSERS: dict[str, Callable[[Any, str], Any]] = {
    "name": _name,
    "type": _type,
    "command": _command,
    "resources": parse_resources_key,
    "instances": lambda v, f: as_integer(v, f, 1, MAX_INSTANCES),
    "role": _role,
    "env": _env,
    "user": _user,
    "retries": _retries,
    "constraints": parse_constraints,
    "kill_grace_period_s": lambda v, f: as_duration(v, f, zero_ok=True),
    "labels": lambda v, f: as_str_map(v, f, None),
    "active_deadline_s": _optional(lambda v, f: as_duration(v, f, zero_ok=False)),
    "health_check": _health_check,
    "restart": lambda v, f: RestartPolicy(as_choice(v, f, tuple(r.value for r in RestartPolicy))),
    "max_unavailable": lambda v, f: as_integer(v, f, 1, MAX_INSTANCES),
    "schedule": _schedule,
    "timezone": _timezone,
    "concurrency": lambda v, f: ConcurrencyPolicy(
        as_choice(v, f, tuple(c.value for c in ConcurrencyPolicy))
    ),
    "starting_deadline_s": _optional(lambda v, f: as_duration(v, f, zero_ok=False)),
    "keep_runs": lambda v, f: as_integer(v, f, 0, MAX_KEEP_RUNS),
    # #16: the job's role's tier (checked at submit), and a runtime past which its tasks
    # are preempted before healthy ones.
    "priority": _optional(lambda v, f: as_integer(v, f, MIN_PRIORITY, MAX_PRIORITY)),
    "max_runtime_s": _optional(lambda v, f: as_duration(v, f, zero_ok=False)),
}
