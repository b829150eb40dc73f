"""Parsing a job spec's placement constraints: a list, a "FIELD OP [VALUE]" string, a
"FIELD:OP[:VALUE]" string or a mapping, each checked against its operator."""

from __future__ import annotations

import re
from typing import Any

from mesoslite.jobs.model import Constraint, ConstraintOp
from mesoslite.jobs.spec_values import Invalid, as_mapping, bool_hint, kind_of

CONSTRAINT_FIELD_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
CONSTRAINT_KEYS = ("field", "op", "value")
# The ops that need a value, and those that may have one.
NEEDS_VALUE = {ConstraintOp.CLUSTER, ConstraintOp.LIKE, ConstraintOp.UNLIKE, ConstraintOp.MAX_PER}


def _constraint(value: Any, field: str) -> Constraint:
    usage = (
        'expected ["FIELD", "OP"] or ["FIELD", "OP", "VALUE"], "FIELD OP [VALUE]", '
        '"FIELD:OP[:VALUE]" or {field, op, value}'
    )
    parts: list[Any]
    if isinstance(value, list):
        parts = value
    elif isinstance(value, dict):
        given = as_mapping(value, field, CONSTRAINT_KEYS)
        parts = [given.get("field"), given.get("op")]
        if "value" in given:
            parts.append(given["value"])
    elif isinstance(value, str):
        text = value.strip()
        parts = text.split(None, 2) if any(c.isspace() for c in text) else text.split(":", 2)
    else:
        raise Invalid(field, f"{usage}, got {kind_of(value)}")
    if not 2 <= len(parts) <= 3:
        raise Invalid(field, f"{usage}, got {value!r}")
    name, op_text = parts[0], parts[1]
    if not isinstance(name, str) or not CONSTRAINT_FIELD_RE.match(name):
        raise Invalid(
            field, f"the field must be 'hostname' or an attribute name, got {kind_of(name)}"
        )
    ops = tuple(op.value for op in ConstraintOp)
    if not isinstance(op_text, str) or op_text.upper() not in ops:
        raise Invalid(
            field, f"the operator must be one of {', '.join(ops)}, got {kind_of(op_text)}"
        )
    op = ConstraintOp(op_text.upper())
    raw = parts[2] if len(parts) == 3 else None
    if isinstance(raw, bool) or not (raw is None or isinstance(raw, str | int | float)):
        raise Invalid(
            field, f"the value must be a string or a number, got {kind_of(raw)}{bool_hint(raw)}"
        )
    text_value = "" if raw is None else str(raw)
    if op in NEEDS_VALUE and not text_value:
        raise Invalid(field, f"{name} {op.value} needs a value")
    if op is ConstraintOp.UNIQUE and text_value:
        raise Invalid(field, f"{name} UNIQUE takes no value, got {text_value!r}")
    if op in (ConstraintOp.LIKE, ConstraintOp.UNLIKE):
        try:
            re.compile(text_value)
        except re.error as e:
            raise Invalid(
                field, f"{op.value} needs a regular expression: {e}, got {text_value!r}"
            ) from None
    if op in (ConstraintOp.MAX_PER, ConstraintOp.GROUP_BY) and text_value:
        if not text_value.isdigit() or int(text_value) < 1:
            raise Invalid(field, f"{op.value} needs an integer >= 1, got {text_value!r}")
        text_value = str(int(text_value))
    return Constraint(name, op, text_value)


def parse_constraints(value: Any, field: str) -> tuple[Constraint, ...]:
    if not isinstance(value, list):
        raise Invalid(field, f"expected a list of constraints, got {kind_of(value)}")
    return tuple(_constraint(item, f"{field}[{i}]") for i, item in enumerate(value))
