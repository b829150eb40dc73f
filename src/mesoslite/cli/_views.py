"""What the CLI shows: plain frozen dataclasses made by `_client` from the Operator API.

The field names are the keys of `--json` output (`to_json()`), so they are a public
contract: add fields, never rename or remove one. Resources are `Resources` here and a
`ResourceMap` in JSON: scalars as floats in their own unit (cpus, MB), ranges and sets as
text, e.g. `{"cpus": 2.0, "mem": 1024.0, "ports": "[31000-32000]"}`. Times are Unix seconds.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from mesoslite.explain import Explanation, RoleExplanation
from mesoslite.resources import Resources, format_ranges

ResourceMap = dict[str, float | str]


def resource_map(res: Resources) -> ResourceMap:
    """`Resources` as JSON: `{"cpus": 2.0, "mem": 1024.0, "ports": "[31000-32000]"}`."""
    out: ResourceMap = {n: res.scalar(n) for n in res.scalars}
    out.update({n: format_ranges(r) for n, r in res.ranges.items()})
    out.update({n: "{" + ",".join(sorted(s)) + "}" for n, s in res.sets.items()})
    return dict(sorted(out.items()))


def _json(view: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for f in dataclasses.fields(view):
        value = getattr(view, f.name)
        if isinstance(value, Resources):
            value = resource_map(value)
        elif isinstance(value, dict):
            value = dict(value)
        doc[f.name] = value
    return doc


@dataclass(frozen=True, slots=True)
class AgentView:
    id: str
    hostname: str
    # "active", "disconnected" or "unreachable".
    status: str
    address: str
    version: str
    registered_at: float
    total: Resources
    used: Resources
    offered: Resources
    task_count: int
    # Status updates the agent holds that frameworks have not acknowledged yet.
    pending_updates: int
    attributes: dict[str, str]

    def to_json(self) -> dict[str, Any]:
        return _json(self)


@dataclass(frozen=True, slots=True)
class FrameworkView:
    id: str
    name: str
    # Its roles, comma-separated (one for most frameworks); `roles` lists them.
    role: str
    user: str
    principal: str
    hostname: str
    # "connected", "disconnected" or "completed".
    status: str
    registered_at: float
    failover_timeout_s: float
    task_count: int
    allocated: Resources
    offered: Resources
    suppressed: bool
    labels: dict[str, str]
    roles: list[str] = dataclasses.field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return _json(self)


@dataclass(frozen=True, slots=True)
class TaskView:
    id: str
    name: str
    framework_id: str
    agent_id: str
    # "TASK_RUNNING" style, as in Mesos.
    state: str
    terminal: bool
    # The process's exit code (or -signal) once it has ended; None before, or if it never ran.
    exit_code: int | None
    message: str
    reason: str
    # When the latest status update was made.
    updated_at: float
    resources: Resources
    command: str
    labels: dict[str, str]

    def to_json(self) -> dict[str, Any]:
        return _json(self)


@dataclass(frozen=True, slots=True)
class FileChunk:
    """Part of a task's sandbox file, and what is known about the file and task right after."""

    data: bytes
    # The size of the whole file when the chunk was read.
    size: int
    # The task's state after the read, e.g. "TASK_RUNNING".
    state: str
    terminal: bool


@dataclass(frozen=True, slots=True)
class FollowedChunk:
    """Part of a followed sandbox file (`Operator.FollowFile`): `data` found at `offset`.

    The last chunk of a follow has `end` set, and the task's final state (its label, e.g.
    "TASK_FINISHED"), exit code and message.
    """

    offset: int
    data: bytes
    end: bool = False
    state: str = ""
    exit_code: int | None = None
    message: str = ""


@dataclass(frozen=True, slots=True)
class RoleView:
    role: str
    weight: float
    guarantee: Resources
    # None: no limit.
    limit: Resources | None
    allocated: Resources
    framework_count: int
    priority: int = 0
    preemptible: bool = False

    def to_json(self) -> dict[str, Any]:
        return _json(self)


# The master's answer, its quotas and demands as the text it sent (`mesoslite.explain`).
@dataclass(frozen=True, slots=True)
class RoleExplainView(RoleExplanation[str]):
    pass


@dataclass(frozen=True, slots=True)
class ExplainView(Explanation[str, list[str]]):
    def to_json(self) -> dict[str, Any]:
        doc = _json(self)
        doc["roles"] = [_json(r) for r in self.roles]
        return doc