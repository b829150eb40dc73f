"""Parse and strictly validate a job spec written in YAML into a `JobSpec`.

Every key sits at the top level; `[..]` marks keys of one job type only:

    name: nightly-report        # required; a DNS label: [a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?
    type: batch                 # required; batch | service | cron
    command: ./report.sh --all  # required; a shell string, or an argv list ["python", "x.py"]
    resources:                  # default {cpus: 0.1, mem: 32}; each omitted key its default
      cpus: 0.5                 #   > 0, default 0.1
      mem: 256                  #   MB, > 0, default 32
      disk: 0                   #   MB, >= 0, default 0
      gpus: 0                   #   a whole number >= 0, default 0
    instances: 1                # 1..10000, default 1
    role: "*"                   # default "*"; a role like "eng/ml"
    env: {KEY: value}           # default {}; numbers and booleans become strings ("true")
    user: ""                    # default "": the agent's user
    retries: 3                  # a limit, or {limit: 0, backoff_s: 1, factor: 2, max_backoff_s: 60}
    constraints: []             # ["hostname", "UNIQUE"], "rack CLUSTER r1", "rack:GROUP_BY:3",
                                # or {field: rack, op: MAX_PER, value: 2}
    kill_grace_period_s: 3      # >= 0
    labels: {}                  # str -> str, like env
    priority: null              # -1000..1000: the tier the job's role must have (see
                                #   `mesoslite role set-priority`); checked at submit
    max_runtime_s: null         # > 0: a task running longer is preempted first under pressure
    active_deadline_s: null     # [batch, cron] > 0: a run still going after this is killed
    health_check: null          # [service] {kind: command|http|tcp, command, port, path, delay_s,
                                #   interval_s, timeout_s, grace_period_s, consecutive_failures}
    restart: always             # [service] always | on-failure | never
    max_unavailable: 1          # [service] >= 1
    schedule: "0 3 * * *"       # [cron, required] see `cron.py`; quote it (`*` and `@` are YAML)
    timezone: UTC               # [cron] an IANA zone name
    concurrency: allow          # [cron] allow | forbid | replace
    starting_deadline_s: null   # [cron] > 0, or null: never skip a missed run
    keep_runs: 10               # [cron] 0..1000

Unknown keys, wrong types, out-of-range values and keys of another job type are errors. All
problems are found at once; `parse_job_spec` raises one `ValidationError` whose `field` is the
first bad path (in the order of the document) and whose text lists every problem.

Pure: no I/O beyond reading time zone data. The YAML loading is in `spec_yaml`, each key's
parser in `spec_fields` (constraints in `spec_constraints`), the value checks in `spec_values`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mesoslite.errors import ValidationError
from mesoslite.jobs.model import CronSpec, JobSpec, JobType, ServiceSpec
from mesoslite.jobs.spec_fields import PARSERS, SIZE_LIMITS_APPLY, parse_resources_key
from mesoslite.jobs.spec_values import Invalid, bool_hint, unknown_key
from mesoslite.jobs.spec_yaml import load_spec_yaml
from mesoslite.model import CommandSpec

COMMON_KEYS = (
    "name", "type", "command", "resources", "instances", "role", "env", "user", "retries",
    "constraints", "kill_grace_period_s", "labels", "priority", "max_runtime_s",
)  # fmt: skip
# Keys that only some job types take, and which.
TYPED_KEYS: dict[str, tuple[JobType, ...]] = {
    "active_deadline_s": (JobType.BATCH, JobType.CRON),
    "health_check": (JobType.SERVICE,),
    "restart": (JobType.SERVICE,),
    "max_unavailable": (JobType.SERVICE,),
    "schedule": (JobType.CRON,),
    "timezone": (JobType.CRON,),
    "concurrency": (JobType.CRON,),
    "starting_deadline_s": (JobType.CRON,),
    "keep_runs": (JobType.CRON,),
}
ALL_KEYS = (*COMMON_KEYS, *TYPED_KEYS)


# ---------------------------------------------------------------------------- the spec


def _check(doc: dict[Any, Any]) -> tuple[JobSpec | None, list[tuple[str, str]]]:
    job_type: JobType | None = None
    if isinstance(doc.get("type"), str) and doc["type"] in {t.value for t in JobType}:
        job_type = JobType(doc["type"])
    values, problems = _parse_keys(doc, job_type)
    required = ["name", "type", "command"] + (["schedule"] if job_type is JobType.CRON else [])
    for key in required:
        if key not in doc:
            problems.append((key, _MISSING[key]))
    if problems:
        return None, problems
    return _build(values, job_type), []


def _parse_keys(
    doc: dict[Any, Any], job_type: JobType | None
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Each key's parsed value, and every problem found, in document order."""
    problems: list[tuple[str, str]] = []
    values: dict[str, Any] = {}
    for key, value in doc.items():
        if not isinstance(key, str):
            problems.append(("", f"keys must be strings, got {key!r}{bool_hint(key)}"))
            continue
        if key not in PARSERS:
            allowed = ALL_KEYS
            if job_type is not None:
                allowed = tuple(k for k in ALL_KEYS if job_type in TYPED_KEYS.get(k, (job_type,)))
            problems.append((key, unknown_key(key, allowed)))
            continue
        types = TYPED_KEYS.get(key)
        if types and job_type is not None and job_type not in types:
            names = " and ".join(t.value for t in types)
            problems.append((key, f"applies to {names} jobs only, not to {job_type.value} jobs"))
            continue
        try:
            values[key] = PARSERS[key](value, key)
        except Invalid as e:
            problems.append((e.field, e.message))
    return values, problems


def _build(values: dict[str, Any], job_type: JobType | None) -> JobSpec:
    env: Mapping[str, str] = values.get("env", {})
    command: CommandSpec = values["command"]
    command = CommandSpec(
        shell=command.shell,
        value=command.value,
        argv=command.argv,
        environment=env,
        user=values.get("user", ""),
    )
    typed: dict[str, Any] = {}
    if job_type is JobType.SERVICE:
        svc = {k: values[k] for k in ("restart", "max_unavailable") if k in values}
        typed["service"] = ServiceSpec(**svc)
        typed["health_check"] = values.get("health_check")
    elif job_type is JobType.CRON:
        keys = ("schedule", "timezone", "concurrency", "starting_deadline_s", "keep_runs")
        typed["cron"] = CronSpec(**{k: values[k] for k in keys if k in values})
    return JobSpec(
        name=values["name"],
        type=values["type"],
        command=command,
        resources=values.get("resources") or parse_resources_key({}, "resources"),
        env=env,
        **{
            k: values[k]
            for k in (
                "instances",
                "role",
                "retries",
                "constraints",
                "kill_grace_period_s",
                "labels",
                "active_deadline_s",
                "priority",
                "max_runtime_s",
            )
            if k in values
        },  # fmt: skip
        **typed,
    )


_MISSING = {
    "name": "is required: a DNS label like 'nightly-report'",
    "type": "is required: one of batch, service, cron",
    "command": 'is required: a shell string or a list like ["python", "job.py"]',
    "schedule": 'is required for cron jobs: a cron expression like "0 3 * * *" or "@daily"',
}


def validate_job_spec(text: str, *, source: str = "") -> list[tuple[str, str]]:
    """Every problem of a spec as (field path, message), in document order; [] if it is valid.

    `mesoslite job validate` can print these one per line.
    """
    try:
        doc = load_spec_yaml(text, source)
    except ValidationError as e:
        return [(e.field, str(e))]
    return _check(doc)[1]


def parse_job_spec(text: str, *, source: str = "", stored: bool = False) -> JobSpec:
    """Parse a YAML job spec (the module docstring lists the keys and their defaults).

    Args:
        text: the YAML text.
        source: where it came from (a file name), named in YAML-level errors.
        stored: read back from the registry: the command and environment size limits
            are not applied again (the spec was accepted under those of its day).

    Raises:
        ValidationError: `field` is the first bad path (e.g. `retries.limit`,
            `constraints[1]`, `health_check.port`; "" when the YAML itself is bad) and the
            text lists every problem, separated by "; ".
    """
    doc = load_spec_yaml(text, source)
    token = SIZE_LIMITS_APPLY.set(not stored)
    try:
        spec, problems = _check(doc)
    finally:
        SIZE_LIMITS_APPLY.reset(token)
    if spec is None:
        (field, message), rest = problems[0], problems[1:]
        raise ValidationError(field, "; ".join([message, *(f"{f}: {m}" for f, m in rest)]))
    return spec
