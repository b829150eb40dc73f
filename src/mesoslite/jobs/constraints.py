"""Marathon-style placement constraints: may this agent take one more instance of a job?

A constraint's `field` is `hostname` (the agent's hostname) or the name of an agent attribute.
`placed` lists the instances of the job already placed (staging or running), each as the field
values of its agent (`agent_fields(hostname, attributes)`).

Rules (as Marathon's, with the choices it leaves open written down):

- `UNIQUE`: no placed instance has the agent's value.
- `CLUSTER v`: the agent's value is `v`.
- `LIKE re` / `UNLIKE re`: the agent's value does (not) match the regex as a whole.
- `MAX_PER n`: fewer than `n` placed instances have the agent's value.
- `GROUP_BY [n]`: spread evenly over the field's values. An agent whose value has no instance
  yet always qualifies. Otherwise its value must have no more instances than the emptiest
  known group, and at least `n` groups must be known (Marathon's rule: with fewer, the job
  waits for agents in new groups). Known groups are the values of the placed instances, plus
  `all_values[field]` (every agent's value) when given, so instances spread to agents that
  have none yet.
- An agent lacking the attribute does not qualify for any constraint on it except `UNLIKE`
  (a missing value matches no regex). Every agent has a `hostname`.
- Placed instances lacking the attribute do not count for it.

Pure: no I/O.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from mesoslite.jobs.model import Constraint, ConstraintOp

HOSTNAME = "hostname"


def agent_fields(hostname: str, attributes: Mapping[str, str]) -> dict[str, str]:
    """The field values of an agent: its attributes plus `hostname` (which wins)."""
    return {**attributes, HOSTNAME: hostname}


@dataclass(frozen=True, slots=True)
class _Miss:
    """Why one agent fails one constraint: `kind` groups agents in `explain_unplaceable`."""

    constraint: Constraint
    kind: str  # missing | taken | full | mismatch | match | uneven | few_groups
    reason: str


def _where(field: str, value: str) -> str:
    return value if field == HOSTNAME else f"{field} {value}"


def _check(
    c: Constraint,
    fields: Mapping[str, str],
    placed: Sequence[Mapping[str, str]],
    all_values: Mapping[str, Collection[str]] | None,
) -> _Miss | None:
    value = fields.get(c.field)
    shown = c.display()
    if value is None:
        if c.op is ConstraintOp.UNLIKE:
            return None
        host = fields.get(HOSTNAME, "?")
        return _Miss(c, "missing", f"{shown}: agent {host} has no attribute {c.field!r}")
    counts = Counter(p[c.field] for p in placed if c.field in p)
    if c.op is ConstraintOp.UNIQUE:
        if counts[value]:
            return _Miss(
                c, "taken", f"{shown}: an instance already runs on {_where(c.field, value)}"
            )
    elif c.op is ConstraintOp.CLUSTER:
        if value != c.value:
            return _Miss(c, "mismatch", f"{shown}: {c.field} is {value!r}")
    elif c.op is ConstraintOp.LIKE:
        if not re.fullmatch(c.value, value):
            return _Miss(c, "mismatch", f"{shown}: {c.field} {value!r} does not match")
    elif c.op is ConstraintOp.UNLIKE:
        if re.fullmatch(c.value, value):
            return _Miss(c, "match", f"{shown}: {c.field} {value!r} matches")
    elif c.op is ConstraintOp.MAX_PER:
        limit = int(c.value)
        if counts[value] >= limit:
            return _Miss(
                c, "full", f"{shown}: {_where(c.field, value)} already has {counts[value]}"
            )
    elif c.op is ConstraintOp.GROUP_BY:
        return _check_group_by(c, value, counts, all_values)
    return None


def _check_group_by(
    c: Constraint,
    value: str,
    counts: Counter[str],
    all_values: Mapping[str, Collection[str]] | None,
) -> _Miss | None:
    mine = counts[value]
    if mine == 0:
        return None
    groups = dict(counts)
    for known in (all_values or {}).get(c.field, ()):
        groups.setdefault(known, 0)
    wanted = int(c.value) if c.value else 1
    if len(groups) < wanted:
        return _Miss(
            c,
            "few_groups",
            f"{c.display()}: only {len(groups)} of {wanted} {c.field} groups known and "
            f"{_where(c.field, value)} already has {mine}",
        )
    fewest = min(groups.values())
    if mine > fewest:
        emptiest = sorted(k for k, n in groups.items() if n == fewest)[:3]
        return _Miss(
            c,
            "uneven",
            f"{c.display()}: {_where(c.field, value)} has {mine}, "
            f"{', '.join(emptiest)} {'has' if len(emptiest) == 1 else 'have'} {fewest}",
        )
    return None


def _first_miss(
    constraints: Sequence[Constraint],
    fields: Mapping[str, str],
    placed: Sequence[Mapping[str, str]],
    all_values: Mapping[str, Collection[str]] | None,
) -> _Miss | None:
    for c in constraints:
        miss = _check(c, fields, placed, all_values)
        if miss is not None:
            return miss
    return None


def violations(
    constraints: Sequence[Constraint],
    agent_hostname: str,
    agent_attributes: Mapping[str, str],
    placed: Sequence[Mapping[str, str]],
    *,
    all_values: Mapping[str, Collection[str]] | None = None,
) -> str | None:
    """Whether the agent may take one more instance.

    Args:
        constraints: the job's constraints (their values already validated by `spec.py`).
        agent_hostname: the candidate agent's hostname.
        agent_attributes: the candidate agent's attributes.
        placed: the field values (`agent_fields`) of the job's instances already placed.
        all_values: optional, for `GROUP_BY`: field -> the values every known agent has.

    Returns:
        None if the agent qualifies, else a short reason naming the first constraint it
        fails, e.g. "hostname UNIQUE: an instance already runs on host-a".
    """
    fields = agent_fields(agent_hostname, agent_attributes)
    miss = _first_miss(constraints, fields, placed, all_values)
    return None if miss is None else miss.reason


# kind -> (what all of the agents share, what n of them do); `{they}` is "all 3 agents" or
# "the only agent" and `{n}` "2 agents" or "1 agent", with verbs in `[plural|singular]`.
_SUMMARY = {
    "missing": (
        "{they} [lack|lacks] the attribute {field!r}",
        "{n} [lack|lacks] the attribute {field!r}",
    ),
    "taken": ("{they} already [run|runs] an instance", "{n} already [run|runs] an instance"),
    "taken_attr": (
        "{they} [are|is] in a {field} that already has an instance",
        "{n} [are|is] in a {field} that already has an instance",
    ),
    "full": ("{they} [are|is] at the limit", "{n} [are|is] at the limit"),
    "mismatch": ("{they} [have|has] another {field}", "{n} [have|has] another {field}"),
    "match": ("{they} [have|has] a matching {field}", "{n} [have|has] a matching {field}"),
    "uneven": (
        "{they} [are|is] in {field} groups with more instances than the emptiest",
        "{n} [are|is] in fuller {field} groups",
    ),
    "few_groups": (
        "{they} [are|is] in {field} groups already used and fewer groups are known than wanted; "
        "waiting for an agent with a new {field}",
        "{n} [are|is] in used {field} groups (fewer groups known than wanted)",
    ),
}


def _summary(kind: str, field: str, n: int, total: int) -> str:
    if kind == "taken" and field != HOSTNAME:
        kind = "taken_attr"
    every, some = _SUMMARY[kind]
    text = (every if n == total else some).format(
        they="the only agent" if total == 1 else f"all {total} agents",
        n=f"{n} agent" if n == 1 else f"{n} agents",
        field=field,
    )
    pick = 1 if n == 1 else 0
    return re.sub(r"\[(\w+)\|(\w+)\]", lambda m: m.group(pick + 1), text)


def explain_unplaceable(
    constraints: Sequence[Constraint],
    agents: Sequence[tuple[str, Mapping[str, str]]],
    placed: Sequence[Mapping[str, str]],
    *,
    all_values: Mapping[str, Collection[str]] | None = None,
) -> str:
    """Say why no agent may take one more instance (for `job status`), or "" if one may.

    Args:
        constraints: as for `violations`.
        agents: every agent that could run the job, as (hostname, attributes).
        placed: as for `violations`.
        all_values: as for `violations`.

    Returns:
        e.g. "hostname UNIQUE: all 3 agents already run an instance", or, when agents fail
        different constraints, "no agent qualifies (5 agents): hostname UNIQUE: 3 agents
        already run an instance; rack CLUSTER r1: 2 agents have another rack".
    """
    if not agents:
        return "no agents are registered"
    by_constraint: dict[Constraint, Counter[str]] = {}
    for hostname, attributes in agents:
        miss = _first_miss(constraints, agent_fields(hostname, attributes), placed, all_values)
        if miss is None:
            return ""
        by_constraint.setdefault(miss.constraint, Counter())[miss.kind] += 1
    total = len(agents)
    parts = [
        f"{c.display()}: "
        + ", ".join(_summary(kind, c.field, n, total) for kind, n in kinds.most_common())
        for c in constraints
        if (kinds := by_constraint.get(c))
    ]
    if len(parts) == 1:
        return parts[0]
    return f"no agent qualifies ({total} agents): " + "; ".join(parts)
