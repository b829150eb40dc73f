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

Pure: no I/O beyond reading time zone data.
"""

from __future__ import annotations

import difflib
import math
import re
import zoneinfo
from collections.abc import Callable, Mapping
from typing import Any

import yaml

from mesoslite.errors import ValidationError
from mesoslite.jobs.cron import CronSchedule
from mesoslite.jobs.model import (
    ConcurrencyPolicy,
    Constraint,
    ConstraintOp,
    CronSpec,
    JobSpec,
    JobType,
    RestartPolicy,
    RetryPolicy,
    ServiceSpec,
)
from mesoslite.limits import MAX_DURATION_S, ROLE_RE
from mesoslite.model import HEALTH_CHECK_KINDS, CommandSpec, HealthCheckSpec
from mesoslite.resources import MAX_SCALAR, SCALE, Resources

DEFAULT_CPUS = 0.1
DEFAULT_MEM_MB = 32.0
MAX_INSTANCES = 10_000
MAX_RETRIES = 1_000
MAX_KEEP_RUNS = 1_000
NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
CONSTRAINT_FIELD_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")

COMMON_KEYS = (
    "name", "type", "command", "resources", "instances", "role", "env", "user", "retries",
    "constraints", "kill_grace_period_s", "labels",
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
RESOURCE_KEYS = ("cpus", "mem", "disk", "gpus")
RETRY_KEYS = ("limit", "backoff_s", "factor", "max_backoff_s")
HEALTH_CHECK_KEYS = (
    "kind", "command", "port", "path", "delay_s", "interval_s", "timeout_s", "grace_period_s",
    "consecutive_failures",
)  # fmt: skip
CONSTRAINT_KEYS = ("field", "op", "value")
# The ops that need a value, and those that may have one.
_NEEDS_VALUE = {ConstraintOp.CLUSTER, ConstraintOp.LIKE, ConstraintOp.UNLIKE, ConstraintOp.MAX_PER}


class _Invalid(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(field, message)
        self.field = field
        self.message = message


# ---------------------------------------------------------------------------- YAML


class _StrictLoader(yaml.SafeLoader):
    """`yaml.SafeLoader` that rejects a key given twice (plain YAML keeps the last)."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        try:
            duplicate = key in seen
            seen.add(key)
        except TypeError:  # unhashable; construct_mapping says so
            continue
        if duplicate:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} is given twice", key_node.start_mark
            )
    return loader.construct_mapping(node)


_StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,
)


def _load(text: str, source: str) -> dict[str, Any]:
    where = source or "the job spec"
    try:
        doc = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = e.problem or e.context or "invalid YAML"
        hint = ""
        if mark is not None and mark.buffer:
            line = (
                mark.buffer.splitlines()[mark.line]
                if mark.line < len(mark.buffer.splitlines())
                else ""
            )
            if re.search(r":\s*[*@]", line):
                hint = ' (quote values starting with * or @, e.g. schedule: "*/5 * * * *")'
        raise ValidationError("", f"{where} is not valid YAML{at}: {problem}{hint}") from None
    except yaml.YAMLError as e:
        raise ValidationError("", f"{where} is not valid YAML: {e}") from None
    if doc is None:
        raise ValidationError("", f"{where} is empty; a job needs at least name, type and command")
    if not isinstance(doc, dict):
        raise ValidationError(
            "", f"{where} must be a mapping of keys like name, type and command, got {_kind(doc)}"
        )
    return doc


# ---------------------------------------------------------------------------- values


def _kind(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def _unknown(key: Any, allowed: tuple[str, ...], what: str = "key") -> str:
    near = difflib.get_close_matches(str(key), allowed, n=1)
    hint = f" (did you mean {near[0]!r}?)" if near else ""
    return f"unknown {what} {key!r}{hint}; allowed: {', '.join(allowed)}"


def _mapping(value: Any, field: str, allowed: tuple[str, ...] | None = None) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Invalid(field, f"expected a mapping, got {_kind(value)}")
    for key in value:
        if not isinstance(key, str):
            raise _Invalid(field, f"keys must be strings, got {key!r}{_bool_hint(key)}")
        if allowed is not None and key not in allowed:
            raise _Invalid(f"{field}.{key}", _unknown(key, allowed))
    return value


def _string(value: Any, field: str, *, empty_ok: bool = False) -> str:
    if not isinstance(value, str):
        raise _Invalid(field, f"expected a string, got {_kind(value)}")
    if not empty_ok and not value.strip():
        raise _Invalid(field, "must not be empty")
    return value


def _integer(value: Any, field: str, lo: int, hi: int | None = None) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < lo
        or (hi is not None and value > hi)
    ):
        allowed = f"an integer >= {lo}" if hi is None else f"an integer from {lo} to {hi}"
        raise _Invalid(field, f"expected {allowed}, got {_kind(value)}")
    return value


def _number(
    value: Any, field: str, *, gt: float | None = None, ge: float | None = None, hi: float
) -> float:
    low = f"> {gt:g}" if gt is not None else f">= {ge:g}"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Invalid(field, f"expected a number {low}, got {_kind(value)}{_text_hint(value)}")
    if (
        not math.isfinite(value)
        or (gt is not None and value <= gt)
        or (ge is not None and value < ge)
    ):
        raise _Invalid(field, f"expected a number {low}, got {value:g}")
    if value > hi:
        raise _Invalid(field, f"expected a number {low} and <= {hi:g}, got {value:g}")
    return float(value)


def _bool_hint(value: Any) -> str:
    """YAML 1.1 reads yes/no/on/off/true/false as booleans."""
    if not isinstance(value, bool):
        return ""
    return " (YAML reads yes/no/on/off as true/false: quote it)"


def _text_hint(value: Any) -> str:
    """PyYAML reads `1e3` and `1.0e3` as text; say so when a string looks like a number."""
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return ""
        return " (text, not a number: unquote it, and write 1e3 as 1000 or 1.0e+3)"
    return ""


def _duration(value: Any, field: str, *, zero_ok: bool) -> float:
    if zero_ok:
        return _number(value, field, ge=0, hi=MAX_DURATION_S)
    return _number(value, field, gt=0, hi=MAX_DURATION_S)


def _choice(value: Any, field: str, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise _Invalid(field, f"expected one of {', '.join(allowed)}, got {_kind(value)}")
    return value


def _str_map(value: Any, field: str, key_re: re.Pattern[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, item in _mapping(value, field).items():
        if key_re is not None and not key_re.match(key):
            raise _Invalid(
                f"{field}.{key}", "names are letters, digits and _, not starting with a digit"
            )
        if isinstance(item, bool):
            out[key] = "true" if item else "false"
        elif isinstance(item, int | float | str):
            out[key] = str(item)
        else:
            raise _Invalid(f"{field}.{key}", f"expected a string, got {_kind(item)}")
    return out


# ---------------------------------------------------------------------------- keys


def _name(value: Any, field: str) -> str:
    name = _string(value, field)
    if not NAME_RE.match(name):
        raise _Invalid(
            field,
            "expected a DNS label: 1-63 lowercase letters, digits and '-', starting and ending "
            f"with a letter or digit, got {name!r}",
        )
    return name


def _type(value: Any, field: str) -> JobType:
    return JobType(_choice(value, field, tuple(t.value for t in JobType)))


def _command(value: Any, field: str) -> CommandSpec:
    if isinstance(value, str):
        if not value.strip():
            raise _Invalid(field, "must not be empty")
        return CommandSpec.of_shell(value)
    if isinstance(value, list):
        if not value:
            raise _Invalid(field, "expected a shell string or a non-empty list of strings, got []")
        argv = []
        for i, arg in enumerate(value):
            if isinstance(arg, bool) or not isinstance(arg, str | int | float):
                raise _Invalid(f"{field}[{i}]", f"expected a string, got {_kind(arg)}")
            argv.append(str(arg))
        if not argv[0].strip():
            raise _Invalid(f"{field}[0]", "the program must not be empty")
        return CommandSpec.of_argv(argv)
    raise _Invalid(
        field,
        f"expected a shell string or a list of strings, got {_kind(value)}{_bool_hint(value)}",
    )


def _resources(value: Any, field: str) -> Resources:
    given = _mapping(value, field)
    for key in given:
        if key not in RESOURCE_KEYS:
            raise _Invalid(f"{field}.{key}", _unknown(key, RESOURCE_KEYS, "resource"))
    scalars = {
        "cpus": _number(given.get("cpus", DEFAULT_CPUS), f"{field}.cpus", gt=0, hi=MAX_SCALAR),
        "mem": _number(given.get("mem", DEFAULT_MEM_MB), f"{field}.mem", gt=0, hi=MAX_SCALAR),
        "disk": _number(given.get("disk", 0), f"{field}.disk", ge=0, hi=MAX_SCALAR),
        "gpus": float(_integer(given.get("gpus", 0), f"{field}.gpus", 0, 1_000_000)),
    }
    for key in ("cpus", "mem"):
        if round(scalars[key] * SCALE) == 0:  # kept in thousandths: this would be 0
            raise _Invalid(f"{field}.{key}", f"expected at least 0.001, got {scalars[key]:g}")
    return Resources.of(scalars=scalars)


def _role(value: Any, field: str) -> str:
    role = _string(value, field)
    if not ROLE_RE.match(role):
        raise _Invalid(
            field, f"expected '*' or path segments of [a-z0-9_-] like 'eng/ml', got {role!r}"
        )
    return role


def _user(value: Any, field: str) -> str:
    user = _string(value, field)
    if any(c.isspace() or c == ":" for c in user):
        raise _Invalid(field, f"expected a user name, got {user!r}")
    return user


def _retries(value: Any, field: str) -> RetryPolicy:
    if not isinstance(value, dict):
        if isinstance(value, int) and not isinstance(value, bool):
            return RetryPolicy(limit=_integer(value, field, 0, MAX_RETRIES))
        raise _Invalid(
            field,
            f"expected a retry limit (an integer from 0 to {MAX_RETRIES}) or a mapping of "
            f"{', '.join(RETRY_KEYS)}, got {_kind(value)}",
        )
    given = _mapping(value, field, RETRY_KEYS)
    d = RetryPolicy()
    backoff_s = _duration(given.get("backoff_s", d.backoff_s), f"{field}.backoff_s", zero_ok=True)
    policy = RetryPolicy(
        limit=_integer(given.get("limit", d.limit), f"{field}.limit", 0, MAX_RETRIES),
        backoff_s=backoff_s,
        factor=_number(given.get("factor", d.factor), f"{field}.factor", ge=1, hi=100),
        max_backoff_s=_duration(
            given.get("max_backoff_s", max(d.max_backoff_s, backoff_s)),
            f"{field}.max_backoff_s",
            zero_ok=True,
        ),
    )
    if policy.max_backoff_s < policy.backoff_s:
        raise _Invalid(
            f"{field}.max_backoff_s",
            f"must be >= backoff_s ({policy.backoff_s:g}), got {policy.max_backoff_s:g}",
        )
    return policy


def _constraint(value: Any, field: str) -> Constraint:
    usage = (
        'expected ["FIELD", "OP"] or ["FIELD", "OP", "VALUE"], "FIELD OP [VALUE]", '
        '"FIELD:OP[:VALUE]" or {field, op, value}'
    )
    parts: list[Any]
    if isinstance(value, list):
        parts = value
    elif isinstance(value, dict):
        given = _mapping(value, field, CONSTRAINT_KEYS)
        parts = [given.get("field"), given.get("op")]
        if "value" in given:
            parts.append(given["value"])
    elif isinstance(value, str):
        text = value.strip()
        parts = text.split(None, 2) if any(c.isspace() for c in text) else text.split(":", 2)
    else:
        raise _Invalid(field, f"{usage}, got {_kind(value)}")
    if not 2 <= len(parts) <= 3:
        raise _Invalid(field, f"{usage}, got {value!r}")
    name, op_text = parts[0], parts[1]
    if not isinstance(name, str) or not CONSTRAINT_FIELD_RE.match(name):
        raise _Invalid(
            field, f"the field must be 'hostname' or an attribute name, got {_kind(name)}"
        )
    ops = tuple(op.value for op in ConstraintOp)
    if not isinstance(op_text, str) or op_text.upper() not in ops:
        raise _Invalid(field, f"the operator must be one of {', '.join(ops)}, got {_kind(op_text)}")
    op = ConstraintOp(op_text.upper())
    raw = parts[2] if len(parts) == 3 else None
    if isinstance(raw, bool) or not (raw is None or isinstance(raw, str | int | float)):
        raise _Invalid(
            field, f"the value must be a string or a number, got {_kind(raw)}{_bool_hint(raw)}"
        )
    text_value = "" if raw is None else str(raw)
    if op in _NEEDS_VALUE and not text_value:
        raise _Invalid(field, f"{name} {op.value} needs a value")
    if op is ConstraintOp.UNIQUE and text_value:
        raise _Invalid(field, f"{name} UNIQUE takes no value, got {text_value!r}")
    if op in (ConstraintOp.LIKE, ConstraintOp.UNLIKE):
        try:
            re.compile(text_value)
        except re.error as e:
            raise _Invalid(
                field, f"{op.value} needs a regular expression: {e}, got {text_value!r}"
            ) from None
    if op in (ConstraintOp.MAX_PER, ConstraintOp.GROUP_BY) and text_value:
        if not text_value.isdigit() or int(text_value) < 1:
            raise _Invalid(field, f"{op.value} needs an integer >= 1, got {text_value!r}")
        text_value = str(int(text_value))
    return Constraint(name, op, text_value)


def _constraints(value: Any, field: str) -> tuple[Constraint, ...]:
    if not isinstance(value, list):
        raise _Invalid(field, f"expected a list of constraints, got {_kind(value)}")
    return tuple(_constraint(item, f"{field}[{i}]") for i, item in enumerate(value))


_REQUIRED_BY_KIND = {"command": ("command",), "http": ("port",), "tcp": ("port",)}
_ONLY_FOR_KINDS = {"command": ("command",), "port": ("http", "tcp"), "path": ("http",)}


def _health_check(value: Any, field: str) -> HealthCheckSpec:
    given = _mapping(value, field, HEALTH_CHECK_KEYS)
    if "kind" not in given:
        raise _Invalid(f"{field}.kind", f"is required: one of {', '.join(HEALTH_CHECK_KINDS)}")
    kind = _choice(given["kind"], f"{field}.kind", HEALTH_CHECK_KINDS)
    for key in _REQUIRED_BY_KIND[kind]:
        if key not in given:
            raise _Invalid(f"{field}.{key}", f"is required for {kind} checks")
    for key, kinds in _ONLY_FOR_KINDS.items():
        if key in given and kind not in kinds:
            raise _Invalid(
                f"{field}.{key}", f"applies to {' and '.join(kinds)} checks only, not {kind}"
            )
    d = HealthCheckSpec(kind)
    path = _string(given.get("path", d.path), f"{field}.path")
    if not path.startswith("/"):
        raise _Invalid(f"{field}.path", f"must start with '/', got {path!r}")

    def seconds(key: str, default: float, *, zero_ok: bool) -> float:
        return _duration(given.get(key, default), f"{field}.{key}", zero_ok=zero_ok)

    return HealthCheckSpec(
        kind=kind,
        command=_string(given["command"], f"{field}.command") if "command" in given else "",
        port=_integer(given["port"], f"{field}.port", 1, 65535) if "port" in given else 0,
        path=path,
        delay_s=seconds("delay_s", d.delay_s, zero_ok=True),
        interval_s=seconds("interval_s", d.interval_s, zero_ok=False),
        timeout_s=seconds("timeout_s", d.timeout_s, zero_ok=False),
        grace_period_s=seconds("grace_period_s", d.grace_period_s, zero_ok=True),
        consecutive_failures=_integer(
            given.get("consecutive_failures", d.consecutive_failures),
            f"{field}.consecutive_failures",
            1,
            1000,
        ),
    )


def _schedule(value: Any, field: str) -> str:
    text = _string(value, field)
    try:
        CronSchedule.parse(text)
    except ValueError as e:
        raise _Invalid(field, str(e)) from None
    return text


def _timezone(value: Any, field: str) -> str:
    name = _string(value, field)
    try:
        zoneinfo.ZoneInfo(name)
    except (KeyError, ValueError, OSError):
        raise _Invalid(
            field,
            f"unknown time zone {name!r}; expected an IANA name like 'Europe/Berlin' or 'UTC'",
        ) from None
    return name


def _optional(parse: Callable[[Any, str], Any]) -> Callable[[Any, str], Any]:
    return lambda value, field: None if value is None else parse(value, field)


_PARSERS: dict[str, Callable[[Any, str], Any]] = {
    "name": _name,
    "type": _type,
    "command": _command,
    "resources": _resources,
    "instances": lambda v, f: _integer(v, f, 1, MAX_INSTANCES),
    "role": _role,
    "env": lambda v, f: _str_map(v, f, ENV_NAME_RE),
    "user": _user,
    "retries": _retries,
    "constraints": _constraints,
    "kill_grace_period_s": lambda v, f: _duration(v, f, zero_ok=True),
    "labels": lambda v, f: _str_map(v, f, None),
    "active_deadline_s": _optional(lambda v, f: _duration(v, f, zero_ok=False)),
    "health_check": _health_check,
    "restart": lambda v, f: RestartPolicy(_choice(v, f, tuple(r.value for r in RestartPolicy))),
    "max_unavailable": lambda v, f: _integer(v, f, 1, MAX_INSTANCES),
    "schedule": _schedule,
    "timezone": _timezone,
    "concurrency": lambda v, f: ConcurrencyPolicy(
        _choice(v, f, tuple(c.value for c in ConcurrencyPolicy))
    ),
    "starting_deadline_s": _optional(lambda v, f: _duration(v, f, zero_ok=False)),
    "keep_runs": lambda v, f: _integer(v, f, 0, MAX_KEEP_RUNS),
}


# ---------------------------------------------------------------------------- the spec


def _check(doc: dict[Any, Any]) -> tuple[JobSpec | None, list[tuple[str, str]]]:
    problems: list[tuple[str, str]] = []
    values: dict[str, Any] = {}
    job_type: JobType | None = None
    if isinstance(doc.get("type"), str) and doc["type"] in {t.value for t in JobType}:
        job_type = JobType(doc["type"])
    for key, value in doc.items():
        if not isinstance(key, str):
            problems.append(("", f"keys must be strings, got {key!r}{_bool_hint(key)}"))
            continue
        if key not in _PARSERS:
            allowed = ALL_KEYS
            if job_type is not None:
                allowed = tuple(k for k in ALL_KEYS if job_type in TYPED_KEYS.get(k, (job_type,)))
            problems.append((key, _unknown(key, allowed)))
            continue
        types = TYPED_KEYS.get(key)
        if types and job_type is not None and job_type not in types:
            names = " and ".join(t.value for t in types)
            problems.append((key, f"applies to {names} jobs only, not to {job_type.value} jobs"))
            continue
        try:
            values[key] = _PARSERS[key](value, key)
        except _Invalid as e:
            problems.append((e.field, e.message))
    required = ["name", "type", "command"] + (["schedule"] if job_type is JobType.CRON else [])
    for key in required:
        if key not in doc:
            problems.append((key, _MISSING[key]))
    if problems:
        return None, problems
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
    spec = JobSpec(
        name=values["name"],
        type=values["type"],
        command=command,
        resources=values.get("resources") or _resources({}, "resources"),
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
            )
            if k in values
        },  # fmt: skip
        **typed,
    )
    return spec, []


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
        doc = _load(text, source)
    except ValidationError as e:
        return [(e.field, str(e))]
    return _check(doc)[1]


def parse_job_spec(text: str, *, source: str = "") -> JobSpec:
    """Parse a YAML job spec (the module docstring lists the keys and their defaults).

    Args:
        text: the YAML text.
        source: where it came from (a file name), named in YAML-level errors.

    Raises:
        ValidationError: `field` is the first bad path (e.g. `retries.limit`,
            `constraints[1]`, `health_check.port`; "" when the YAML itself is bad) and the
            text lists every problem, separated by "; ".
    """
    doc = _load(text, source)
    spec, problems = _check(doc)
    if spec is None:
        (field, message), rest = problems[0], problems[1:]
        raise ValidationError(field, "; ".join([message, *(f"{f}: {m}" for f, m in rest)]))
    return spec
