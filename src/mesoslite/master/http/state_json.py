"""`/state`: the whole cluster as JSON, in the shapes of the CLI's `--json` views.

The same conversion runs as for the CLI (records to Operator summaries to `cli._views`), so
`/state`'s agents, frameworks, tasks, roles and jobs are what `mesoslite agent list --json`
and friends print; `docs/state.schema.json` describes the document. A standby answers with
empty lists and names the leader: it holds no authoritative state.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from mesoslite.allocator.drf import dominant_share
from mesoslite.cli import _convert as views
from mesoslite.cli.job import view_json
from mesoslite.master import convert as mc
from mesoslite.master.actor import MasterActor
from mesoslite.master.leadership import Leadership
from mesoslite.model import MasterInfo
from mesoslite.resources import Resources


@dataclass(slots=True)
class StateSource:
    """What `/state` reads: all of it owned by the master's loop, read on it."""

    actor: MasterActor
    info: MasterInfo
    leadership: Leadership
    jobs: Any  # `JobsRunner`: `.jobs` is the running jobs framework or None
    http_address: str = ""


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


def cluster_json(src: StateSource, *, completed_limit: int | None = None) -> dict[str, Any]:
    """The document `/state` serves; `completed_limit` keeps only the newest ended tasks."""
    doc: dict[str, Any] = {
        "generated_at": time.time(),
        "master": master_json(src),
        "masters": masters_json(src),
        "agents": [], "frameworks": [], "tasks": [], "roles": [], "jobs": [],
    }
    if not src.leadership.leading:
        return doc
    state = src.actor.state
    agents = sorted(state.agents.values(), key=lambda a: a.info.hostname + a.id)
    doc["agents"] = [views.agent_view(mc.agent_summary(a)).to_json() for a in agents]
    total = Resources.empty()
    for a in agents:
        total = total + a.info.resources
    doc["frameworks"] = [_framework_json(f, total) for f in state.frameworks.values()]
    doc["tasks"] = _tasks_json(src, completed_limit)
    doc["roles"] = [views.role_view(mc.role_info(r)).to_json() for r in state.role_statuses()]
    runner = src.jobs.jobs if src.jobs is not None else None
    doc["jobs"] = [view_json(v) for v in runner.list()] if runner is not None else []
    return doc


def _framework_json(fw: Any, total: Resources) -> dict[str, Any]:
    doc = views.framework_view(mc.framework_summary(fw)).to_json()
    doc["dominant_share"] = dominant_share(fw.used, total)
    return doc


def _tasks_json(src: StateSource, completed_limit: int | None) -> list[dict[str, Any]]:
    state = src.actor.state
    records = [t for fw in state.frameworks.values() for t in fw.tasks.values()]
    completed = list(state.completed_tasks.values())
    if completed_limit is not None:
        completed = completed[-completed_limit:] if completed_limit > 0 else []
    return [views.task_view(mc.task_summary(t)).to_json() for t in records + completed]
