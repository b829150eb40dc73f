"""`/state`: the whole cluster as JSON, in the shapes of the CLI's `--json` views.

The objects have the keys and value types of `mesoslite agent list --json`, `framework
list`, `task list --all`, `role list` and `job list` (`cli/_views.py`), built here straight
from the master's records: the master may not import the CLI (tests/unit/test_layering.py),
and skipping the protobuf round trip keeps a busy page cheap. tests/integration/
test_http_master.py holds the two to the same shapes; docs/state.schema.json describes
the document. A standby answers with empty lists and names the leader.
"""

from __future__ import annotations

import dataclasses
import enum
import heapq
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from mesoslite.allocator.drf import dominant_share
from mesoslite.master import records as rec
from mesoslite.master.actor import MasterActor
from mesoslite.master.leadership import Leadership
from mesoslite.master.roles import RoleStatus
from mesoslite.model import MasterInfo
from mesoslite.resources import Resources, format_ranges


@dataclass(slots=True)
class StateSource:
    """What `/state` reads: all of it owned by the master's loop, read on it."""

    actor: MasterActor
    info: MasterInfo
    leadership: Leadership
    jobs: Any  # `JobsRunner`: `.jobs` is the running jobs framework or None
    http_address: str = ""


def resource_map(res: Resources) -> dict[str, float | str]:
    """As the CLI's `resource_map`: scalars as floats, ranges and sets as text."""
    out: dict[str, float | str] = {n: res.scalar(n) for n in res.scalars}
    out.update({n: format_ranges(r) for n, r in res.ranges.items()})
    out.update({n: "{" + ",".join(sorted(s)) + "}" for n, s in res.sets.items()})
    return dict(sorted(out.items()))


def plain(value: Any) -> Any:
    """A jobs view as JSON, as `mesoslite job list --json` prints it: enums as their values."""
    if isinstance(value, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [plain(x) for x in value]
    return value
def master_json(src: StateSource) -> dict[str, Any]:
    lead = src.leadership
    leader = src.info.address if lead.leading else lead.leader_address_of()
    return {
        "id": src.info.id,
        "address": src.info.address,
        "http_address": src.http_address,
        "version": src.info.version,
        "started_at": src.info.started_at,
        "leading": lead.leading,
        "reason": "" if lead.leading else lead.reason,
        "leader": leader or "",
    }


def masters_json(src: StateSource) -> list[dict[str, Any]]:
    """This master and the leader it knows of (ZooKeeper's other standbys are not listed)."""
    me = master_json(src)
    out = [{"id": me["id"], "address": me["address"], "leading": me["leading"]}]
    if not me["leading"] and me["leader"] and me["leader"] != me["address"]:
        out.insert(0, {"id": "", "address": me["leader"], "leading": True})
    return out


def cluster_json(
    src: StateSource, *, completed_limit: int | None = None, active_limit: int | None = None
) -> dict[str, Any]:
    """The document `/state` serves. `completed_limit` keeps only the newest ended tasks,
    `active_limit` the most recently updated tasks not ended (`task_counts` counts them all)."""
    doc: dict[str, Any] = {
        "generated_at": time.time(),
        "master": master_json(src),
        "masters": masters_json(src),
        "agents": [], "frameworks": [], "tasks": [], "task_counts": {}, "roles": [], "jobs": [],
    }
    if not src.leadership.leading:
        return doc
    state = src.actor.state
    agents = sorted(state.agents.values(), key=lambda a: a.info.hostname + a.id)
    doc["agents"] = [agent_json(a) for a in agents]
    total = Resources.empty()
    for a in agents:
        total = total + a.info.resources
    doc["frameworks"] = [_framework_json(f, total) for f in state.frameworks.values()]
    doc["tasks"], doc["task_counts"] = _tasks_json(src, completed_limit, active_limit)
    doc["roles"] = [role_json(r) for r in state.role_statuses()]
    runner = src.jobs.jobs if src.jobs is not None else None
    doc["jobs"] = [plain(v) for v in runner.list()] if runner is not None else []
    return doc


def agent_json(a: rec.AgentRecord) -> dict[str, Any]:
    return {
        "id": a.id, "hostname": a.info.hostname,
        "status": ("drained" if not a.tasks else "draining") if a.draining else a.status,
        "address": a.info.address, "version": a.info.version,
        "registered_at": a.registered_at, "total": resource_map(a.info.resources),
        "used": resource_map(a.used), "offered": resource_map(a.offered),
        "task_count": len(a.tasks), "pending_updates": a.pending_updates,
        "attributes": dict(sorted(a.info.attributes.items())),
    }


def _framework_json(fw: rec.FrameworkRecord, total: Resources) -> dict[str, Any]:
    info = fw.info
    roles = list(info.all_roles)
    return {
        "id": info.id, "name": info.name, "role": ",".join(roles), "user": info.user,
        "principal": info.principal, "hostname": info.hostname, "status": fw.status,
        "registered_at": fw.registered_at, "failover_timeout_s": info.failover_timeout_s,
        "task_count": len(fw.tasks), "allocated": resource_map(fw.used),
        "offered": resource_map(fw.offered), "suppressed": fw.suppressed,
        "labels": dict(sorted(info.labels.items())), "roles": roles,
        "dominant_share": dominant_share(fw.used, total),
    }


def task_json(t: rec.TaskRecord) -> dict[str, Any]:
    spec, status = t.spec, t.status
    cmd = spec.command
    return {
        "id": spec.task_id, "name": spec.name, "framework_id": t.framework_id,
        "agent_id": status.agent_id or spec.agent_id, "state": status.state.label,
        "terminal": status.state.terminal, "exit_code": status.exit_code,
        "message": status.message, "reason": status.reason, "updated_at": status.timestamp,
        "resources": resource_map(spec.resources),
        "command": cmd.value if cmd.shell else " ".join(cmd.argv),
        "labels": dict(sorted(spec.labels.items())),
    }


def role_json(r: RoleStatus) -> dict[str, Any]:
    quota = r.quota
    return {
        "role": r.role, "weight": r.weight,
        "guarantee": resource_map(quota.guarantee) if quota else {},
        "limit": resource_map(quota.limit) if quota and quota.limit is not None else None,
        "allocated": resource_map(r.allocated), "framework_count": r.frameworks,
        "priority": r.tier.priority, "preemptible": r.tier.preemptible,
    }


def _tasks_json(
    src: StateSource, completed_limit: int | None, active_limit: int | None
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    state = src.actor.state
    records = [t for fw in state.frameworks.values() for t in fw.tasks.values()]
    counts = Counter(t.status.state.label for t in records)
    completed = list(state.completed_tasks.values())
    if active_limit is not None and len(records) > active_limit:
        # A page of thousands of rows helps nobody and costs the master on every event.
        records = heapq.nlargest(active_limit, records, key=lambda t: t.status.timestamp)
    if completed_limit is not None:
        completed = completed[-completed_limit:] if completed_limit > 0 else []
    return [task_json(t) for t in records + completed], dict(sorted(counts.items()))
