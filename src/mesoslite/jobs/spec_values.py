"""The value parsers of job specs: mappings, strings, numbers, durations and choices, each
raising `Invalid` with the field path and a message that names what was expected."""

from __future__ import annotations

import difflib
import math
import re
from typing import Any

from mesoslite.limits import MAX_DURATION_S


class Invalid(Exception):
    """One problem of a spec: its field path and what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(field, message)
        self.field = field
        self.message = message


def kind_of(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def unknown_key(key: Any, allowed: tuple[str, ...], what: str = "key") -> str:
    near = difflib.get_close_matches(str(key), allowed, n=1)
    hint = f" (did you mean {near[0]!r}?)" if near else ""
    return f"unknown {what} {key!r}{hint}; allowed: {', '.join(allowed)}"


def as_mapping(value: Any, field: str, allowed: tuple[str, ...] | None = None) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Invalid(field, f"expected a mapping, got {kind_of(value)}")
    for key in value:
        if not isinstance(key, str):
            raise Invalid(field, f"keys must be strings, got {key!r}{bool_hint(key)}")
        if allowed is not None and key not in allowed:
            raise Invalid(f"{field}.{key}", unknown_key(key, allowed))
    return value


def as_string(value: Any, field: str, *, empty_ok: bool = False) -> str:
    if not isinstance(value, str):
        raise Invalid(field, f"expected a string, got {kind_of(value)}")
    if not empty_ok and not value.strip():
        raise Invalid(field, "must not be empty")
    return value


def as_integer(value: Any, field: str, lo: int, hi: int | None = None) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < lo
        or (hi is not None and value > hi)
    ):
        allowed = f"an integer >= {lo}" if hi is None else f"an integer from {lo} to {hi}"
        raise Invalid(field, f"expected {allowed}, got {kind_of(value)}")
    return value


def as_number(
    value: Any, field: str, *, gt: float | None = None, ge: float | None = None, hi: float
) -> float:
    low = f"> {gt:g}" if gt is not None else f">= {ge:g}"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Invalid(field, f"expected a number {low}, got {kind_of(value)}{text_hint(value)}")
    if (
        not math.isfinite(value)
        or (gt is not None and value <= gt)
        or (ge is not None and value < ge)
    ):
        raise Invalid(field, f"expected a number {low}, got {value:g}")
    if value > hi:
        raise Invalid(field, f"expected a number {low} and <= {hi:g}, got {value:g}")
    return float(value)


def bool_hint(value: Any) -> str:
    """YAML 1.1 reads yes/no/on/off/true/false as booleans."""
    if not isinstance(value, bool):
        return ""
    return " (YAML reads yes/no/on/off as true/false: quote it)"


def text_hint(value: Any) -> str:
    """PyYAML reads `1e3` and `1.0e3` as text; say so when a string looks like a number."""
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return ""
        return " (text, not a number: unquote it, and write 1e3 as 1000 or 1.0e+3)"
    return ""


def as_duration(value: Any, field: str, *, zero_ok: bool) -> float:
    if zero_ok:
        return as_number(value, field, ge=0, hi=MAX_DURATION_S)
    return as_number(value, field, gt=0, hi=MAX_DURATION_S)


def as_choice(value: Any, field: str, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise Invalid(field, f"expected one of {', '.join(allowed)}, got {kind_of(value)}")
    return value


def as_str_map(value: Any, field: str, key_re: re.Pattern[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, item in as_mapping(value, field).items():
        if key_re is not None and not key_re.match(key):
            raise Invalid(
                f"{field}.{key}", "names are letters, digits and _, not starting with a digit"
            )
        if isinstance(item, bool):
            out[key] = "true" if item else "false"
        elif isinstance(item, int | float | str):
            out[key] = str(item)
        else:
            raise Invalid(f"{field}.{key}", f"expected a string, got {kind_of(item)}")
    return out
