"""The rules on input that the master and the jobs framework share: id and role forms,
length limits on strings and ranges on numbers.

Every check raises `ValidationError` naming the field, before anything changes. A bad
value is echoed shortened (`shown`), so that a 1 MB string does not come back in an error
(gRPC carries error details in headers, which are limited to a few KB).

Pure: no grpc, asyncio or time, so that `jobs/spec.py`, the allocator-facing core and the
CLI may all import it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

from mesoslite.errors import ValidationError

# Lengths, in characters.
MAX_ID = 255  # task, agent, framework, offer and executor ids
MAX_NAME = 255  # task and framework names
MAX_ROLE = 255
MAX_HOSTNAME = 253  # as DNS
MAX_LABEL_KEY = 255
MAX_LABEL_VALUE = 4096
MAX_LABELS = 100
MAX_ATTRIBUTE_NAME = 255
MAX_ATTRIBUTE_VALUE = 1024
MAX_ATTRIBUTES = 100
# A command is exec'd: a shell string as one argument of `/bin/sh -c`, argv as given. Linux
# refuses (E2BIG) one argument longer than MAX_ARG_STRLEN (128 KB, its NUL included) and
# argv plus environment over ARG_MAX (a quarter of the stack limit, usually 2 MB), so a
# command (the shell string, or all of argv) is under 128 KB and its environment under
# 256 KB: with the agent's own environment they stay well inside ARG_MAX. In bytes (UTF-8).
MAX_COMMAND = 128 * 1024 - 1
MAX_ENV_BYTES = 256 * 1024  # all of a command's NAME=value pairs
MAX_ARGV = 4096
MAX_ENV_NAME = 255
MAX_ENV_VALUE = 32 * 1024
MAX_ENV = 1000
MAX_USER = 32  # as Linux's useradd
MAX_PRINCIPAL = 255
MAX_MESSAGE = 4096  # status messages and reasons
MAX_ADDRESS = 300  # host:port
MAX_VERSION = 64
MAX_PATH = 1024  # an HTTP health check's path
MAX_UUID = 64  # bytes of a status update's uuid
MAX_JOB_NAME = 63  # a DNS label
MAX_RESOURCE_ITEMS = 100  # entries of one resources list, items of one set
MAX_RANGES = 1000  # ranges of one resource

# Numbers.
MAX_PORT = 65535
MAX_RANGE_VALUE = 2**64 - 1
MAX_SCALAR = 1e12  # as `resources.MAX_SCALAR`
MAX_DURATION_S = 365 * 24 * 3600.0  # the longest timeout or refuse_seconds: a year
MAX_TASKS_PER_ACCEPT = 100_000
MAX_IDS_PER_CALL = 100_000  # offer ids, acknowledgements, tasks to reconcile
MAX_ROLES = 100  # of one framework
MAX_DEMANDS = 1000
MAX_DEMAND_COUNT = 1_000_000

# Job specs.
MAX_SPEC_BYTES = 1024 * 1024  # 1 MB, in UTF-8 bytes
MAX_SPEC_DEPTH = 64  # nesting of YAML collections; a real spec needs 4

# `\Z`, not `$`: `$` also matches before a trailing newline, so 'x\n' would pass.
ID_CHARS = "letters, digits and _.:@-"
ID_RE = re.compile(rf"[A-Za-z0-9_][A-Za-z0-9_.:@-]{{0,{MAX_ID - 1}}}\Z")
TASK_ID_RE = ID_RE
ROLE_RE = re.compile(
    rf"(?=[^\n]{{1,{MAX_ROLE}}}\Z)(\*|[a-z0-9][a-z0-9_-]*(/[a-z0-9][a-z0-9_-]*)*)\Z"
)
JOB_NAME_RE = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\Z")


def shown(value: str, limit: int = 40) -> str:
    """`value` as repr, cut to `limit` characters with its full length said."""
    if len(value) <= limit:
        return repr(value)
    return f"{value[:limit]!r}... ({len(value)} characters)"


def check_length(field: str, value: str | bytes, limit: int) -> None:
    if len(value) > limit:
        raise ValidationError(field, f"must be at most {limit} characters, got {len(value)}")


def check_id(field: str, value: str, *, allow_empty: bool = False) -> None:
    """An id of a task, agent, framework, offer or executor: 1-255 of `ID_CHARS`, in full."""
    if allow_empty and not value:
        return
    check_length(field, value, MAX_ID)
    if not ID_RE.match(value):
        raise ValidationError(
            field, f"must be 1-{MAX_ID} characters of {ID_CHARS}, got {shown(value)}"
        )


def check_ids(field: str, values: list[str] | tuple[str, ...]) -> None:
    check_count(field, len(values), MAX_IDS_PER_CALL)
    for i, value in enumerate(values):
        check_id(f"{field}[{i}]", value)


def check_role(field: str, role: str, *, allow_star: bool = True) -> None:
    """A role: '*' (when allowed) or path segments of [a-z0-9_-] like 'eng/ml'."""
    check_length(field, role, MAX_ROLE)
    if not ROLE_RE.match(role) or (role == "*" and not allow_star):
        star = "'*' or " if allow_star else ""
        raise ValidationError(
            field, f"must be {star}path segments of [a-z0-9_-] like 'eng/ml', got {shown(role)}"
        )


def check_number(field: str, value: float, lo: float, hi: float) -> None:
    """A finite number in [lo, hi]."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValidationError(field, f"must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ValidationError(field, f"must be a finite number, got {value}")
    if not lo <= value <= hi:
        raise ValidationError(field, f"must be {lo:g} to {hi:g}, got {value:g}")


def check_duration(field: str, value: float) -> None:
    """Seconds: finite, >= 0 and at most a year."""
    if math.isnan(value) or math.isinf(value):
        raise ValidationError(field, f"must be a finite number of seconds, got {value}")
    if value < 0:
        raise ValidationError(field, f"must be >= 0, got {value:g}")
    if value > MAX_DURATION_S:
        raise ValidationError(field, f"must be at most {MAX_DURATION_S:g} (a year), got {value:g}")


def check_count(field: str, count: int, limit: int) -> None:
    if count > limit:
        raise ValidationError(field, f"at most {limit} items, got {count}")


def check_range(field: str, begin: int, end: int, hi: int) -> None:
    """An inclusive range [begin-end] with begin <= end <= hi."""
    if begin > end:
        raise ValidationError(field, f"range [{begin}-{end}] has begin > end")
    if end > hi:
        raise ValidationError(field, f"range [{begin}-{end}] ends above {hi}")


def range_limit(resource: str) -> int:
    """The largest value of a range resource: ports end at 65535."""
    return MAX_PORT if resource == "ports" else MAX_RANGE_VALUE


def check_string_map(
    field: str, items: Mapping[str, str], key_limit: int, value_limit: int, max_items: int
) -> None:
    """Labels, environments and attributes: a bounded count of bounded keys and values."""
    check_count(field, len(items), max_items)
    for key, value in items.items():
        check_length(f"{field} key", key, key_limit)
        check_length(f"{field}[{key!r}]", value, value_limit)


def check_labels(field: str, labels: Mapping[str, str]) -> None:
    check_string_map(field, labels, MAX_LABEL_KEY, MAX_LABEL_VALUE, MAX_LABELS)


def check_hostname(field: str, hostname: str) -> None:
    check_length(field, hostname, MAX_HOSTNAME)
    if "\n" in hostname or "\0" in hostname:
        raise ValidationError(field, f"must be one line, got {shown(hostname)}")


def utf8_size(value: str) -> int:
    """Bytes of `value` in UTF-8; an ASCII string is not encoded to count them."""
    return len(value) if value.isascii() else len(value.encode("utf-8", "surrogatepass"))


def command_size_problem(
    value: str, argv: tuple[str, ...] | list[str], environment: Mapping[str, str]
) -> tuple[str, str] | None:
    """The (field suffix, message) of a command too big to exec (see `MAX_COMMAND`), or None."""
    limit = f"under 128 KB (at most {MAX_COMMAND} bytes: Linux execs no argument of 128 KB"
    size = utf8_size(value) if value else sum(utf8_size(a) for a in argv)
    if size > MAX_COMMAND:
        what = "" if value else " (all of argv)"
        return "", f"must be {limit} or more, MAX_ARG_STRLEN){what}, got {size} bytes"
    env = sum(utf8_size(k) + utf8_size(v) + 1 for k, v in environment.items())
    if env > MAX_ENV_BYTES:
        return ".environment", (
            f"must be at most {MAX_ENV_BYTES // 1024} KB of NAME=value in all "
            f"(Linux execs argv and environment within ARG_MAX), got {env} bytes"
        )
    return None
