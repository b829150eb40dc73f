"""The registry's objects and their bytes: one record per object, and the diff of a write.

Both stores write the same records: `plan_write(snapshot, ops)` folds the ops with
`op.apply` (the one mutation path), encodes each object the ops name (`op.keys()`) before
and after, and returns only those whose bytes differ (`None`: the object is gone). An
object whose record would be over `MAX_OBJECT_BYTES` is refused before anything is
written, so no znode can come near ZooKeeper's 1 MB limit.

Also here: the JSON documents of agents, frameworks and role settings, and the legacy
whole-snapshot document of the single-znode registry (read only to migrate it).
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from mesoslite.allocator.base import Quota
from mesoslite.allocator.quota import parse_limit
from mesoslite.allocator.tiers import RoleTier
from mesoslite.errors import ValidationError
from mesoslite.ids import AgentId, FrameworkId
from mesoslite.master.registry.base import (
    AGENTS,
    FRAMEWORKS,
    GONE,
    JOBS,
    META,
    RESERVATIONS,
    ROLES,
    MarkAgentGone,
    ObjectKey,
    RegistryOp,
    RegistrySnapshot,
    SetQuota,
    SetReservation,
    SetRoleTier,
    SetRoleWeight,
)
from mesoslite.model import AgentInfo, FrameworkInfo
from mesoslite.resources import Resources, format_resources, parse_resources

# The layout version in the `meta` object: 2 is one record per object (1 was one znode).
LAYOUT_VERSION = 2
# One object's record, key included: a quarter of ZooKeeper's default jute.maxbuffer (1 MB),
# and small enough that ZooKeeper's in-memory log of its last 500 writes (about 3x each)
# stays under 400 MB in the worst case (deploy/README.md, "ZooKeeper sizing").
MAX_OBJECT_BYTES = 256 * 1024

# A job document over this many bytes is stored zlib-compressed behind ZLIB_MARK (0xff
# never occurs in UTF-8, so a plain document cannot be taken for it). Job documents
# repeat the same keys for every instance and shrink ~10x: less to send, log and snapshot,
# and less for ZooKeeper to hold in memory (it keeps its last 500 writes whole).
COMPRESS_OVER_BYTES = 1024
ZLIB_MARK = b"\xff"

Changes = dict[ObjectKey, bytes | None]


def encode_job(doc: str) -> bytes:
    data = doc.encode()
    return ZLIB_MARK + zlib.compress(data, 1) if len(data) > COMPRESS_OVER_BYTES else data


def decode_job(data: bytes) -> str:
    return (zlib.decompress(data[1:]) if data[:1] == ZLIB_MARK else data).decode()


def _dumps(doc: Any) -> bytes:
    # Deterministic bytes: an unchanged object encodes the same and is not written.
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def role_op_to_doc(op: SetRoleWeight | SetQuota) -> tuple[str, dict[str, Any]]:
    if isinstance(op, SetRoleWeight):
        return "role_weight", {"weight": op.weight}
    limit = op.quota.limit
    return "quota", {
        "guarantee": format_resources(op.quota.guarantee),
        "limit": None if limit is None else format_resources(limit),
    }


def role_op_from_doc(kind: str, role: str, doc: dict[str, Any]) -> SetRoleWeight | SetQuota:
    if kind == "role_weight":
        return SetRoleWeight(role, float(doc["weight"]))
    return SetQuota(role, quota_from_doc(doc))


def quota_from_doc(doc: dict[str, Any]) -> Quota:
    guarantee = parse_resources(doc["guarantee"]) if doc["guarantee"] else Resources.empty()
    limit = None
    if doc["limit"] is not None:
        limit = parse_limit(doc["limit"]) if doc["limit"] else Resources.empty()
    return Quota(guarantee, limit)


def agent_to_doc(info: AgentInfo) -> dict[str, Any]:
    return {
        "id": info.id,
        "hostname": info.hostname,
        "resources": format_resources(info.resources),
        "attributes": dict(info.attributes),
        "version": info.version,
        "address": info.address,
        "reserved": {role: format_resources(r) for role, r in info.reserved.items()},
    }


def agent_from_doc(doc: dict[str, Any]) -> AgentInfo:
    return AgentInfo(
        id=AgentId(doc["id"]),
        hostname=doc["hostname"],
        resources=parse_resources(doc["resources"]),
        attributes=doc.get("attributes", {}),
        version=doc.get("version", ""),
        address=doc.get("address", ""),
        reserved={role: parse_resources(r) for role, r in doc.get("reserved", {}).items()},
    )


def framework_to_doc(info: FrameworkInfo) -> dict[str, Any]:
    return {
        "id": info.id,
        "name": info.name,
        "role": info.role,
        "roles": list(info.roles),
        "user": info.user,
        "failover_timeout_s": info.failover_timeout_s,
        "hostname": info.hostname,
        "principal": info.principal,
        "labels": dict(info.labels),
        "partition_aware": info.partition_aware,
    }


def framework_from_doc(doc: dict[str, Any]) -> FrameworkInfo:
    return FrameworkInfo(
        id=FrameworkId(doc["id"]),
        name=doc["name"],
        role=doc.get("role", "*"),
        roles=tuple(doc.get("roles", ())),  # docs before several roles have none
        user=doc.get("user", ""),
        failover_timeout_s=float(doc.get("failover_timeout_s", 0.0)),
        hostname=doc.get("hostname", ""),
        principal=doc.get("principal", ""),
        labels=doc.get("labels", {}),
        partition_aware=bool(doc.get("partition_aware", False)),  # not in docs before it
    )


# ---------------------------------------------------------------- one record per object


def encode_object(snap: RegistrySnapshot, key: ObjectKey) -> bytes | None:
    """The record of object `key` in `snap`, or None if the snapshot has no such object."""
    kind, name = key
    if kind == AGENTS:
        agent = snap.agents.get(AgentId(name))
        return None if agent is None else _dumps(agent_to_doc(agent))
    if kind == FRAMEWORKS:
        fw = snap.frameworks.get(FrameworkId(name))
        return None if fw is None else _dumps(framework_to_doc(fw))
    if kind == ROLES:
        doc: dict[str, Any] = {}
        if name in snap.role_weights:
            doc["weight"] = snap.role_weights[name]
        if name in snap.quotas:
            doc["quota"] = role_op_to_doc(SetQuota(name, snap.quotas[name]))[1]
        if name in snap.role_tiers:
            tier = snap.role_tiers[name]
            doc["priority"], doc["preemptible"] = tier.priority, tier.preemptible
        return _dumps(doc) if doc else None
    if kind == RESERVATIONS:
        roles = snap.reservations.get(AgentId(name))
        return _dumps({r: format_resources(res) for r, res in roles.items()}) if roles else None
    if kind == GONE:
        return b"{}" if name in snap.gone_agents else None
    if kind == JOBS:
        job = snap.jobs.get(name)
        return None if job is None else encode_job(job)
    if kind == META:
        return _dumps({"layout": LAYOUT_VERSION, "jobs_framework_id": snap.jobs_framework_id})
    raise ValueError(f"unknown registry object kind {kind!r}")


def all_keys(snap: RegistrySnapshot) -> list[ObjectKey]:
    """Every object of `snap`, `meta` last (its presence marks a complete layout)."""
    keys: list[ObjectKey] = [(AGENTS, a) for a in snap.agents]
    keys += [(FRAMEWORKS, f) for f in snap.frameworks]
    keys += [(ROLES, r) for r in {*snap.role_weights, *snap.quotas, *snap.role_tiers}]
    keys += [(RESERVATIONS, a) for a in snap.reservations]
    keys += [(GONE, a) for a in snap.gone_agents]
    keys += [(JOBS, j) for j in snap.jobs]
    return [*keys, (META, "")]


def decode_objects(records: Iterable[tuple[ObjectKey, bytes]]) -> RegistrySnapshot:
    """The snapshot made of these records (the inverse of `encode_object`)."""
    agents: dict[AgentId, AgentInfo] = {}
    frameworks: dict[FrameworkId, FrameworkInfo] = {}
    weights: dict[str, float] = {}
    quotas: dict[str, Quota] = {}
    tiers: dict[str, RoleTier] = {}
    reservations: dict[AgentId, dict[str, Resources]] = {}
    gone: set[AgentId] = set()
    jobs: dict[str, str] = {}
    fw_id = ""
    for (kind, name), data in records:
        if kind == JOBS:
            jobs[name] = decode_job(data)
            continue
        doc = json.loads(data.decode())
        if kind == AGENTS:
            agents[AgentId(name)] = agent_from_doc(doc)
        elif kind == FRAMEWORKS:
            frameworks[FrameworkId(name)] = framework_from_doc(doc)
        elif kind == ROLES:
            if "weight" in doc:
                weights[name] = float(doc["weight"])
            if "quota" in doc:
                quotas[name] = quota_from_doc(doc["quota"])
            if "priority" in doc:
                tiers[name] = RoleTier(int(doc["priority"]), bool(doc.get("preemptible")))
        elif kind == RESERVATIONS:
            reservations[AgentId(name)] = {r: parse_resources(v) for r, v in doc.items()}
        elif kind == GONE:
            gone.add(AgentId(name))
        elif kind == META:
            fw_id = str(doc.get("jobs_framework_id", ""))
    return RegistrySnapshot(
        agents=agents, frameworks=frameworks, role_weights=weights, quotas=quotas,
        reservations=reservations, gone_agents=frozenset(gone), jobs=jobs,
        jobs_framework_id=fw_id, role_tiers=tiers,
    )


def check_size(key: ObjectKey, data: bytes | None) -> None:
    """Refuse an object whose record (key included) is over `MAX_OBJECT_BYTES`."""
    if data is None:
        return
    size = len(data) + len(key[1].encode())
    if size > MAX_OBJECT_BYTES:
        name = key[1] if len(key[1]) <= 60 else key[1][:60] + "..."
        raise ValidationError(
            f"registry.{key[0]}[{name!r}]",
            f"would be {size} bytes, over the registry's limit of {MAX_OBJECT_BYTES} per object",
        )


def diff(before: RegistrySnapshot, after: RegistrySnapshot, keys: Iterable[ObjectKey]) -> Changes:
    """The records of `keys` that differ from `before` to `after` (None: removed)."""
    changes: Changes = {}
    for key in dict.fromkeys(keys):
        if key[0] == JOBS and before.jobs.get(key[1]) == after.jobs.get(key[1]):
            continue  # the same document: skip compressing it twice
        new = encode_object(after, key)
        check_size(key, new)
        if new != encode_object(before, key):
            changes[key] = new
    return changes


def without(snap: RegistrySnapshot, key: ObjectKey) -> RegistrySnapshot:
    """`snap` less object `key` (for a migration that cannot keep it)."""
    kind, name = key

    def drop(m: Mapping[Any, Any]) -> dict[Any, Any]:
        return {k: v for k, v in m.items() if k != name}

    if kind == AGENTS:
        return replace(snap, agents=drop(snap.agents))
    if kind == FRAMEWORKS:
        return replace(snap, frameworks=drop(snap.frameworks))
    if kind == ROLES:
        return replace(
            snap, role_weights=drop(snap.role_weights), quotas=drop(snap.quotas),
            role_tiers=drop(snap.role_tiers),
        )
    if kind == RESERVATIONS:
        return replace(snap, reservations=drop(snap.reservations))
    if kind == GONE:
        return replace(snap, gone_agents=snap.gone_agents - {AgentId(name)})
    if kind == JOBS:
        return replace(snap, jobs=drop(snap.jobs))
    return snap


def migrate(
    current: RegistrySnapshot, target: RegistrySnapshot
) -> tuple[RegistrySnapshot, Changes, list[str]]:
    """The records that turn `current` into `target`, except `meta`. An object over
    `MAX_OBJECT_BYTES` (possible in the older formats) is left out of the result and
    named in the returned list, so that an old registry always loads."""
    changes: Changes = {}
    dropped: list[str] = []
    for key in dict.fromkeys([*all_keys(current), *all_keys(target)]):
        if key[0] == META:
            continue
        try:
            changes.update(diff(current, target, [key]))
        except ValidationError as e:
            dropped.append(str(e))
            target = without(target, key)
            changes.update(diff(current, target, [key]))
    return target, changes, dropped


def plan_write(
    snap: RegistrySnapshot, ops: Iterable[RegistryOp]
) -> tuple[RegistrySnapshot, Changes]:
    """Apply `ops` to `snap` and return the new snapshot and the records that changed.

    Raises:
        ValidationError: an object would be over `MAX_OBJECT_BYTES`; nothing is changed.
    """
    after = snap
    keys: list[ObjectKey] = []
    for op in ops:
        after = op.apply(after)
        keys.extend(op.keys())
    return after, diff(snap, after, keys)


def describe_ops(ops: Iterable[RegistryOp]) -> str:
    """`AdmitAgent` or `PutJob*300,SetJobsFrameworkId`: op kinds with counts, not contents."""
    counts: dict[str, int] = {}
    for op in ops:
        counts[type(op).__name__] = counts.get(type(op).__name__, 0) + 1
    return ",".join(k if n == 1 else f"{k}*{n}" for k, n in counts.items())


# ---------------------------------------------------------------- the legacy single document


def snapshot_to_doc(snap: RegistrySnapshot) -> dict[str, Any]:
    """The whole snapshot as the single-znode registry (layout 1) stored it."""
    return {
        "agents": [agent_to_doc(a) for a in snap.agents.values()],
        "frameworks": [framework_to_doc(f) for f in snap.frameworks.values()],
        "role_weights": dict(snap.role_weights),
        "quotas": {role: role_op_to_doc(SetQuota(role, q))[1] for role, q in snap.quotas.items()},
        "reservations": {
            agent: {role: format_resources(r) for role, r in roles.items()}
            for agent, roles in snap.reservations.items()
        },
        "gone_agents": sorted(snap.gone_agents),
        "jobs": dict(snap.jobs),
        "jobs_framework_id": snap.jobs_framework_id,
        "role_tiers": {
            role: [t.priority, t.preemptible] for role, t in snap.role_tiers.items()
        },
    }


def snapshot_from_doc(doc: Mapping[str, Any]) -> RegistrySnapshot:
    """Read a layout-1 document (see `snapshot_to_doc`)."""
    agents = [agent_from_doc(a) for a in doc.get("agents", [])]
    frameworks = [framework_from_doc(f) for f in doc.get("frameworks", [])]
    snap = RegistrySnapshot(
        agents={a.id: a for a in agents}, frameworks={f.id: f for f in frameworks}
    )
    for role, weight in doc.get("role_weights", {}).items():
        snap = SetRoleWeight(role, float(weight)).apply(snap)
    for role, quota in doc.get("quotas", {}).items():
        snap = role_op_from_doc("quota", role, quota).apply(snap)
    for agent, roles in doc.get("reservations", {}).items():
        for role, res in roles.items():
            snap = SetReservation(AgentId(agent), role, parse_resources(res)).apply(snap)
    for agent in doc.get("gone_agents", []):
        snap = MarkAgentGone(AgentId(agent)).apply(snap)
    for role, (priority, preemptible) in doc.get("role_tiers", {}).items():
        snap = SetRoleTier(role, RoleTier(int(priority), bool(preemptible))).apply(snap)
    return replace(
        snap, jobs=dict(doc.get("jobs", {})), jobs_framework_id=doc.get("jobs_framework_id", "")
    )


def with_object(snap: RegistrySnapshot, key: ObjectKey, data: bytes | None) -> RegistrySnapshot:
    """`snap` with object `key` read anew from its record `data` (None: removed), as
    `decode_objects` would have read it among the others. A standby follows the registry
    object by object this way (`registry.standby`), not by decoding it all again."""
    snap = without(snap, key)
    if data is None:
        return snap
    one = decode_objects([(key, data)])
    if key[0] == META:
        return replace(snap, jobs_framework_id=one.jobs_framework_id)
    return replace(
        snap,
        agents={**snap.agents, **one.agents},
        frameworks={**snap.frameworks, **one.frameworks},
        role_weights={**snap.role_weights, **one.role_weights},
        quotas={**snap.quotas, **one.quotas},
        role_tiers={**snap.role_tiers, **one.role_tiers},
        reservations={**snap.reservations, **one.reservations},
        gone_agents=snap.gone_agents | one.gone_agents,
        jobs={**snap.jobs, **one.jobs},
    )
