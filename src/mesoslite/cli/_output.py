"""How the CLI prints: aligned tables, human sizes and ages, and `--json` documents.

Pure functions of their arguments (the clock is passed in), so they are unit-tested without
a master.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from mesoslite.resources import Resources, format_ranges

# Scalars measured in megabytes, shown as `512MB`, `1GB`, `9.8GB`.
MB_RESOURCES = frozenset({"mem", "disk"})
# Shown first, in this order; other resources follow by name.
LEADING_RESOURCES = ("cpus", "mem", "disk")
NONE = "-"
COLUMN_GAP = "  "


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """Left-aligned columns separated by two spaces, with no trailing blanks."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for row in cells:
        padded = [c.ljust(w) for c, w in zip(row, widths, strict=True)]
        lines.append(COLUMN_GAP.join(padded).rstrip())
    return "\n".join(lines)


def format_number(value: float, digits: int = 3) -> str:
    """`2.0` → `2`, `0.5` → `0.5`, `1/3` → `0.333`."""
    text = f"{value:.{digits}f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def format_mb(mb: float) -> str:
    """Megabytes in the largest unit that keeps a whole part: `512MB`, `1GB`, `1.5TB`; `0`."""
    if mb == 0:
        return "0"
    for unit, size in (("TB", 1024 * 1024), ("GB", 1024)):
        if mb >= size:
            return format_number(mb / size, 1) + unit
    return format_number(mb, 1) + "MB"


def _resource_parts(res: Resources) -> dict[str, str]:
    parts = {n: format_number(res.scalar(n)) for n in res.scalars}
    parts.update({n: format_mb(res.scalar(n)) for n in res.scalars if n in MB_RESOURCES})
    parts.update({n: format_ranges(r) for n, r in res.ranges.items()})
    parts.update({n: "{" + ",".join(sorted(s)) + "}" for n, s in res.sets.items()})
    return parts


def _ordered(names: Iterable[str]) -> list[str]:
    names = set(names)
    first = [n for n in LEADING_RESOURCES if n in names]
    return first + sorted(names - set(first))


def human_resources(res: Resources) -> str:
    """`cpus:2 mem:1GB disk:9.8GB ports:[31000-32000]`; `-` when empty."""
    parts = _resource_parts(res)
    return " ".join(f"{n}:{parts[n]}" for n in _ordered(parts)) or NONE


def used_of_total(used: Resources, total: Resources, name: str) -> str:
    """One scalar as `used/total`, e.g. `0.5/4` or `256MB/1GB`; `-` if the agent has none."""
    if name not in total.scalars:
        return NONE
    fmt = format_mb if name in MB_RESOURCES else format_number
    return f"{fmt(used.scalar(name))}/{fmt(total.scalar(name))}"


def format_labels(values: Mapping[str, str]) -> str:
    """`rack:r1,zone:z1`; `-` when empty."""
    return ",".join(f"{k}:{v}" for k, v in sorted(values.items())) or NONE


def format_age(timestamp: float, now: float) -> str:
    """How long ago `timestamp` was: `5s ago`, `3m ago`, `2h ago`, `4d ago`; `-` if unset."""
    if timestamp <= 0:
        return NONE
    seconds = int(max(0.0, now - timestamp))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


def format_exit_code(code: int | None) -> str:
    return NONE if code is None else str(code)


def yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


def to_json(items: Iterable[Any]) -> str:
    """A JSON array of the items' `to_json()` documents, indented for people and jq alike."""
    return json.dumps([item.to_json() for item in items], indent=2)
