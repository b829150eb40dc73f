"""Cluster and workload files for `mesoslite simulate`: strict YAML into frozen dataclasses.

Every problem is a `ValidationError` whose field is a path such as
`workload.yaml: frameworks[1].tasks[0].duration_s`. The formats are in `docs/simulator.md`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mesoslite.allocator.quota import parse_limit
from mesoslite.allocator.tiers import MAX_PRIORITY, MIN_PRIORITY
from mesoslite.errors import ValidationError
from mesoslite.limits import check_role
from mesoslite.resources import Resources, parse_reserved_resources, parse_resources

MAX_COUNT = 10_000_000


@dataclass(frozen=True, slots=True)
class AgentGroup:
    count: int
    resources: Resources
    attributes: Mapping[str, str] = field(default_factory=dict)
    name: str = "agent"
    # Static reservations, part of `resources` (`cpus(ml):4` in the resources string).
    reserved: Mapping[str, Resources] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RoleSpec:
    name: str
    weight: float = 1.0
    guarantee: Resources = field(default_factory=Resources.empty)
    limit: Resources | None = None
    # Priority tier (#16): higher is served first; `preemptible` tasks may be preempted.
    priority: int = 0
    preemptible: bool = False


@dataclass(frozen=True, slots=True)
class ClusterSpec:
    agents: tuple[AgentGroup, ...]
    roles: tuple[RoleSpec, ...] = ()
    allocation_interval_s: float = 1.0
    offer_timeout_s: float = 30.0
    # The master's `--preemption-grace-s`; 0 (the default here) turns preemption off.
    preemption_grace_s: float = 0.0


@dataclass(frozen=True, slots=True)
class TaskGroup:
    count: int
    resources: Resources
    duration_s: float
    submit_s: float = 0.0  # after the framework arrives
    interval_s: float = 0.0  # between successive submissions of this group (0: all at once)


@dataclass(frozen=True, slots=True)
class FrameworkSpec:
    name: str
    # Its roles, comma-separated (one for most frameworks); `roles` lists them.
    role: str
    tasks: tuple[TaskGroup, ...]
    arrive_s: float = 0.0
    demands: bool = False
    locality: tuple[str, ...] = ()
    refuse_seconds: float = 5.0
    # Several roles (`roles: [a, b]` in the workload); empty: `role` alone.
    roles: tuple[str, ...] = ()

    @property
    def all_roles(self) -> tuple[str, ...]:
        return self.roles or (self.role,)


@dataclass(frozen=True, slots=True)
class WorkloadSpec:
    frameworks: tuple[FrameworkSpec, ...]
    until_s: float | None = None  # stop the run at this virtual time (default: when all end)


def load_cluster(path: str | Path) -> ClusterSpec:
    return parse_cluster(_load(path), Path(path).name)


def load_workload(path: str | Path) -> WorkloadSpec:
    return parse_workload(_load(path), Path(path).name)


def _load(path: str | Path) -> Any:
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise ValidationError(str(path), f"cannot read: {e.strerror or e}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ValidationError(Path(path).name, f"not valid YAML: {e}") from None


class _Doc:
    """A mapping being read: each `take` removes a key; `done` rejects what is left."""

    def __init__(self, data: Any, where: str) -> None:
        if not isinstance(data, dict):
            raise ValidationError(where, f"must be a mapping, got {type(data).__name__}")
        self.data = dict(data)
        self.where = where

    def path(self, key: str) -> str:
        return f"{self.where}.{key}" if not self.where.endswith(":") else f"{self.where} {key}"

    def take(self, key: str, default: Any = ..., kind: type | tuple[type, ...] = object) -> Any:
        if key not in self.data:
            if default is ...:
                raise ValidationError(self.path(key), "is required")
            return default
        value = self.data.pop(key)
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (isinstance(value, bool) and kind in (int, float)):
            name = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
            raise ValidationError(self.path(key), f"must be {name}, got {value!r}")
        return value

    def number(self, key: str, default: Any = ..., *, low: float = 0.0) -> float:
        value = self.take(key, default, float)
        if not math.isfinite(value) or value < low:
            raise ValidationError(self.path(key), f"must be a number >= {low:g}, got {value!r}")
        return float(value)

    def count(self, key: str, default: Any = ...) -> int:
        value = self.take(key, default, int)
        if not 0 < value <= MAX_COUNT:
            raise ValidationError(self.path(key), f"must be in [1, {MAX_COUNT}], got {value}")
        return int(value)

    def resources(self, key: str, default: Any = ...) -> Resources:
        value = self.take(key, default, str)
        try:
            res = parse_resources(value, self.path(key))
        except ValidationError as e:
            raise ValidationError(self.path(key), e.message) from None
        return res

    def limit(self, key: str) -> Resources:
        """A quota limit: zeros kept (`cpus:0` allows no cpus; #16)."""
        value = self.take(key, ..., str)
        try:
            return parse_limit(value, self.path(key))
        except ValidationError as e:
            raise ValidationError(self.path(key), e.message) from None

    def reserved_resources(self, key: str) -> tuple[Resources, dict[str, Resources]]:
        value = self.take(key, ..., str)
        try:
            return parse_reserved_resources(value, self.path(key))
        except ValidationError as e:
            raise ValidationError(self.path(key), e.message) from None

    def done(self) -> None:
        if self.data:
            extra = sorted(str(k) for k in self.data)
            raise ValidationError(self.path(extra[0]), "unknown key")


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list) or not value:
        raise ValidationError(where, "must be a non-empty list")
    return value


def _roles(d: _Doc) -> tuple[str, ...]:
    """A framework's `roles: [a, b]` (several roles); with it, `role` must not be given."""
    if "roles" not in d.data:
        return ()
    if "role" in d.data:
        raise ValidationError(d.path("role"), "give role or roles, not both")
    items = _list(d.take("roles"), d.path("roles"))
    if not items:
        raise ValidationError(d.path("roles"), "must name at least one role")
    out: list[str] = []
    for k, item in enumerate(items):
        where = d.path(f"roles[{k}]")
        if not isinstance(item, str):
            raise ValidationError(where, f"must be a string, got {item!r}")
        _role(item, where)
        if item in out:
            raise ValidationError(where, f"{item!r} appears twice")
        out.append(item)
    return tuple(out)


def _role(value: str, where: str) -> str:
    check_role(where, value)  # the master's rule: a role it would refuse is refused here
    return value


def parse_cluster(data: Any, source: str = "cluster.yaml") -> ClusterSpec:
    doc = _Doc(data, f"{source}:")
    groups = []
    for i, item in enumerate(_list(doc.take("agents"), doc.path("agents"))):
        d = _Doc(item, f"{source}: agents[{i}]")
        attrs = d.take("attributes", {}, dict)
        for k, v in attrs.items():
            if not isinstance(v, str | int | float) or isinstance(v, bool):
                raise ValidationError(d.path(f"attributes.{k}"), f"must be a string, got {v!r}")
        total, reserved = d.reserved_resources("resources")
        groups.append(
            AgentGroup(
                count=d.count("count", 1),
                resources=total,
                attributes={str(k): str(v) for k, v in attrs.items()},
                name=d.take("name", f"g{i}", str),
                reserved=reserved,
            )
        )
        d.done()
    roles = []
    role_map = doc.take("roles", {}, dict)
    for name, item in role_map.items():
        where = f"{source}: roles.{name}"
        _role(str(name), where)
        d = _Doc(item or {}, where)
        weight = d.number("weight", 1.0)
        if weight <= 0:
            raise ValidationError(d.path("weight"), f"must be > 0, got {weight:g}")
        quota = _Doc(d.take("quota", {}, dict), d.path("quota"))
        guarantee = quota.resources("guarantee", "") or Resources.empty()
        limit = quota.limit("limit") if "limit" in quota.data else None
        quota.done()
        if limit is not None and not limit.contains(guarantee):
            raise ValidationError(
                quota.path("guarantee"),
                f"must be within the limit: {'; '.join(limit.shortfall(guarantee))}",
            )
        priority = d.take("priority", 0, int)
        if isinstance(priority, bool) or not MIN_PRIORITY <= priority <= MAX_PRIORITY:
            raise ValidationError(
                d.path("priority"),
                f"must be an integer in [{MIN_PRIORITY}, {MAX_PRIORITY}], got {priority!r}",
            )
        preemptible = d.take("preemptible", False, bool)
        roles.append(RoleSpec(str(name), weight, guarantee, limit, priority, preemptible))
        d.done()
    interval = doc.number("allocation_interval_s", 1.0)
    if interval <= 0:
        raise ValidationError(doc.path("allocation_interval_s"), f"must be > 0, got {interval:g}")
    grace = doc.number("preemption_grace_s", 0.0)
    if grace < 0:
        raise ValidationError(doc.path("preemption_grace_s"), f"must be >= 0, got {grace:g}")
    spec = ClusterSpec(
        tuple(groups), tuple(roles), interval, doc.number("offer_timeout_s", 30.0), grace
    )
    doc.done()
    return spec


def parse_workload(data: Any, source: str = "workload.yaml") -> WorkloadSpec:
    doc = _Doc(data, f"{source}:")
    frameworks = []
    names: set[str] = set()
    for i, item in enumerate(_list(doc.take("frameworks"), doc.path("frameworks"))):
        d = _Doc(item, f"{source}: frameworks[{i}]")
        name = d.take("name", f"fw{i}", str)
        if name in names:
            raise ValidationError(d.path("name"), f"{name!r} is used twice")
        names.add(name)
        roles = _roles(d)
        role = ",".join(roles) if roles else _role(d.take("role", "*", str), d.path("role"))
        tasks = []
        for j, t in enumerate(_list(d.take("tasks"), d.path("tasks"))):
            td = _Doc(t, f"{d.where}.tasks[{j}]")
            res = td.resources("resources")
            if not any(v > 0 for v in res.scalars.values()):
                raise ValidationError(td.path("resources"), "must name some scalar resource")
            tasks.append(
                TaskGroup(
                    count=td.count("count", 1),
                    resources=res,
                    duration_s=td.number("duration_s"),
                    submit_s=td.number("submit_s", 0.0),
                    interval_s=td.number("interval_s", 0.0),
                )
            )
            td.done()
        locality = d.take("locality", [], list)
        for k, hint in enumerate(locality):
            if not isinstance(hint, str) or not hint:
                raise ValidationError(d.path(f"locality[{k}]"), f"must be a string, got {hint!r}")
        frameworks.append(
            FrameworkSpec(
                name=name,
                role=role,
                tasks=tuple(tasks),
                arrive_s=d.number("arrive_s", 0.0),
                demands=d.take("demands", False, bool),
                locality=tuple(locality),
                refuse_seconds=d.number("refuse_seconds", 5.0),
                roles=roles,
            )
        )
        d.done()
    until = doc.number("until_s") if "until_s" in doc.data else None
    spec = WorkloadSpec(tuple(frameworks), until)
    doc.done()
    return spec
