"""Conversions between the wire (`mesoslite._proto.v1`) and the value types in `model.py`.

Every edge (servicers, the agent's master link, the SDK, the CLI client) converts here, so a
field added to the protocol is mapped once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from mesoslite._proto.v1 import common_pb2 as pb
from mesoslite.errors import ValidationError
from mesoslite.ids import AgentId, FrameworkId, OfferId, TaskId
from mesoslite.limits import (
    MAX_NAME,
    MAX_RANGES,
    MAX_RESOURCE_ITEMS,
    check_count,
    check_length,
    check_range,
    check_role,
    range_limit,
)
from mesoslite.model import (
    AgentInfo,
    CommandSpec,
    FrameworkInfo,
    HealthCheckSpec,
    MasterInfo,
    Offer,
    StatusSource,
    TaskSpec,
    TaskState,
    TaskStatus,
)
from mesoslite.resources import SCALE, Resources, to_milli


def resources_to_pb(res: Resources) -> list[pb.Resource]:
    out = [
        pb.Resource(name=n, kind=pb.Resource.SCALAR, scalar=v / SCALE)
        for n, v in sorted(res.scalars.items())
    ]
    for n, r in sorted(res.ranges.items()):
        out.append(
            pb.Resource(
                name=n, kind=pb.Resource.RANGES, ranges=[pb.Range(begin=b, end=e) for b, e in r]
            )
        )
    for n, s in sorted(res.sets.items()):
        out.append(pb.Resource(name=n, kind=pb.Resource.SET, set=sorted(s)))
    return out


def resources_from_pb(items: Iterable[pb.Resource], field: str = "resources") -> Resources:
    """Validate and convert; raises `ValidationError` naming the bad entry."""
    scalars: dict[str, float] = {}
    ranges: dict[str, list[tuple[int, int]]] = {}
    sets: dict[str, list[str]] = {}
    entries = list(items)
    check_count(field, len(entries), MAX_RESOURCE_ITEMS)
    for i, r in enumerate(entries):
        where = f"{field}[{i}]"
        check_length(f"{where}.name", r.name, MAX_NAME)
        if r.role not in ("", "*"):
            raise ValidationError(
                f"{where}.role",
                f"only an agent's resources and offers name a role (a reservation), got {r.role!r}",
            )
        kind = r.kind or pb.Resource.SCALAR
        if kind == pb.Resource.SCALAR:
            to_milli(r.scalar, f"{field}.{r.name or where}")
            scalars[r.name] = scalars.get(r.name, 0.0) + r.scalar
        elif kind == pb.Resource.RANGES:
            check_count(f"{where}.ranges", len(r.ranges), MAX_RANGES)
            for rg in r.ranges:
                check_range(f"{field}.{r.name}", rg.begin, rg.end, range_limit(r.name))
            ranges.setdefault(r.name, []).extend((rg.begin, rg.end) for rg in r.ranges)
        elif kind == pb.Resource.SET:
            check_count(f"{where}.set", len(r.set), MAX_RESOURCE_ITEMS)
            for item in r.set:
                check_length(f"{where}.set", item, MAX_NAME)
            sets.setdefault(r.name, []).extend(r.set)
        else:
            raise ValidationError(f"{where}.kind", f"unknown kind {kind}")
    try:
        return Resources.of(scalars, ranges, sets)
    except ValidationError as e:
        raise ValidationError(
            f"{field}.{e.field}" if e.field != field else field, e.message.split(": ", 1)[-1]
        ) from None


def command_to_pb(cmd: CommandSpec) -> pb.CommandInfo:
    return pb.CommandInfo(
        shell=cmd.shell,
        value=cmd.value,
        argv=list(cmd.argv),
        environment=dict(cmd.environment),
        user=cmd.user,
    )


def command_from_pb(msg: pb.CommandInfo) -> CommandSpec:
    return CommandSpec(
        shell=msg.shell,
        value=msg.value,
        argv=tuple(msg.argv),
        environment=dict(msg.environment),
        user=msg.user,
    )


def task_to_pb(task: TaskSpec) -> pb.TaskInfo:
    return pb.TaskInfo(
        task_id=task.task_id,
        name=task.name,
        agent_id=task.agent_id,
        resources=resources_to_pb(task.resources),
        command=command_to_pb(task.command),
        kill_grace_period_s=task.kill_grace_period_s,
        labels=dict(task.labels),
        health_check=(
            health_check_to_pb(task.health_check) if task.health_check is not None else None
        ),
        allocation_role=task.allocation_role,
    )


_HC_TYPES = {
    "command": pb.HealthCheck.COMMAND,
    "http": pb.HealthCheck.HTTP,
    "tcp": pb.HealthCheck.TCP,
}
_HC_KINDS = {v: k for k, v in _HC_TYPES.items()}


def health_check_to_pb(hc: HealthCheckSpec) -> pb.HealthCheck:
    return pb.HealthCheck(
        type=_HC_TYPES[hc.kind],
        command=hc.command,
        port=hc.port,
        path=hc.path,
        delay_s=hc.delay_s,
        interval_s=hc.interval_s,
        timeout_s=hc.timeout_s,
        grace_period_s=hc.grace_period_s,
        consecutive_failures=hc.consecutive_failures,
    )


def health_check_from_pb(msg: pb.HealthCheck, field: str = "health_check") -> HealthCheckSpec:
    """Raises `ValidationError` for a check that cannot run; zero values take the defaults."""
    kind = _HC_KINDS.get(msg.type)
    if kind is None:
        raise ValidationError(f"{field}.type", "must be COMMAND, HTTP or TCP")
    if kind == "command" and not msg.command.strip():
        raise ValidationError(f"{field}.command", "must not be empty for a COMMAND check")
    if kind != "command" and not 0 < msg.port < 65536:
        raise ValidationError(f"{field}.port", f"must be 1 to 65535, got {msg.port}")
    for name in ("delay_s", "interval_s", "timeout_s", "grace_period_s"):
        value = getattr(msg, name)
        if not 0 <= value <= 86400:
            raise ValidationError(f"{field}.{name}", f"must be 0 to 86400, got {value:g}")
    d = HealthCheckSpec(kind)
    return HealthCheckSpec(
        kind=kind,
        command=msg.command,
        port=msg.port,
        path=msg.path or d.path,
        delay_s=msg.delay_s,
        interval_s=msg.interval_s or d.interval_s,
        timeout_s=msg.timeout_s or d.timeout_s,
        grace_period_s=msg.grace_period_s,
        consecutive_failures=msg.consecutive_failures or d.consecutive_failures,
    )


def task_from_pb(msg: pb.TaskInfo, field: str = "task") -> TaskSpec:
    return TaskSpec(
        task_id=TaskId(msg.task_id),
        name=msg.name,
        agent_id=AgentId(msg.agent_id),
        resources=resources_from_pb(msg.resources, f"{field}.resources"),
        command=command_from_pb(msg.command),
        kill_grace_period_s=msg.kill_grace_period_s,
        labels=dict(msg.labels),
        health_check=(
            health_check_from_pb(msg.health_check, f"{field}.health_check")
            if msg.HasField("health_check")
            else None
        ),
        allocation_role=msg.allocation_role,
    )


def status_to_pb(st: TaskStatus) -> pb.TaskStatus:
    msg = pb.TaskStatus(
        task_id=st.task_id,
        framework_id=st.framework_id,
        agent_id=st.agent_id,
        state=int(st.state),  # type: ignore[arg-type]
        message=st.message,
        reason=st.reason,
        source=int(st.source),  # type: ignore[arg-type]
        uuid=st.uuid,
        timestamp=st.timestamp,
    )
    if st.exit_code is not None:
        msg.has_exit_code = True
        msg.exit_code = st.exit_code
    if st.healthy is not None:
        msg.has_healthy = True
        msg.healthy = st.healthy
    return msg


def status_from_pb(msg: pb.TaskStatus) -> TaskStatus:
    try:
        state = TaskState(msg.state)
    except ValueError:
        raise ValidationError("status.state", f"unknown task state {msg.state}") from None
    return TaskStatus(
        task_id=TaskId(msg.task_id),
        framework_id=FrameworkId(msg.framework_id),
        agent_id=AgentId(msg.agent_id),
        state=state,
        message=msg.message,
        reason=msg.reason,
        source=StatusSource(msg.source) if msg.source else StatusSource.MASTER,
        uuid=msg.uuid,
        timestamp=msg.timestamp,
        exit_code=msg.exit_code if msg.has_exit_code else None,
        healthy=msg.healthy if msg.has_healthy else None,
    )


def framework_to_pb(info: FrameworkInfo) -> pb.FrameworkInfo:
    return pb.FrameworkInfo(
        id=info.id,
        name=info.name,
        user=info.user,
        # With roles, role is left empty on the wire (the model's "*" is its default).
        role="" if info.roles and info.role == "*" else info.role,
        roles=list(info.roles),
        failover_timeout_s=info.failover_timeout_s,
        hostname=info.hostname,
        principal=info.principal,
        labels=dict(info.labels),
        partition_aware=info.partition_aware,
    )


def framework_from_pb(msg: pb.FrameworkInfo) -> FrameworkInfo:
    return FrameworkInfo(
        id=FrameworkId(msg.id),
        name=msg.name,
        user=msg.user,
        role=msg.role or "*",
        roles=tuple(msg.roles),
        failover_timeout_s=msg.failover_timeout_s,
        hostname=msg.hostname,
        principal=msg.principal,
        labels=dict(msg.labels),
        partition_aware=msg.partition_aware,
    )


def check_role_name(role: str, field: str) -> None:
    check_role(field, role, allow_star=False)


def agent_to_pb(info: AgentInfo) -> pb.AgentInfo:
    return pb.AgentInfo(
        id=info.id,
        hostname=info.hostname,
        resources=reserved_resources_to_pb(info.resources, info.reserved),
        attributes=[pb.Attribute(name=k, value=v) for k, v in sorted(info.attributes.items())],
        version=info.version,
        address=info.address,
    )


def reserved_resources_to_pb(
    total: Resources, reserved: Mapping[str, Resources]
) -> list[pb.Resource]:
    """`total` as resources, the parts in `reserved` marked with their role."""
    unreserved = total
    out: list[pb.Resource] = []
    for role, part in sorted(reserved.items()):
        unreserved = unreserved - part
        for r in resources_to_pb(part):
            r.role = role
            out.append(r)
    return resources_to_pb(unreserved) + out


def reserved_resources_from_pb(
    items: Iterable[pb.Resource], field: str
) -> tuple[Resources, dict[str, Resources]]:
    """(total, reserved parts by role) of resources that may name roles."""
    by_role: dict[str, list[pb.Resource]] = {}
    for r in items:
        by_role.setdefault(r.role if r.role not in ("", "*") else "*", []).append(r)
    total = Resources.empty()
    reserved: dict[str, Resources] = {}
    for role, group in by_role.items():
        plain = []
        for r in group:
            copy = pb.Resource()
            copy.CopyFrom(r)
            copy.role = ""
            plain.append(copy)
        part = resources_from_pb(plain, field)
        if role != "*":
            check_role_name(role, f"{field}.role")
            reserved[role] = part
        total = total + part
    return total, reserved


def agent_from_pb(msg: pb.AgentInfo) -> AgentInfo:
    """An agent's resources may name roles: its static reservations."""
    total, reserved = reserved_resources_from_pb(msg.resources, "agent_info.resources")
    return AgentInfo(
        id=AgentId(msg.id),
        hostname=msg.hostname,
        resources=total,
        reserved=reserved,
        attributes={a.name: a.value for a in msg.attributes},
        version=msg.version,
        address=msg.address,
    )


def offer_to_pb(offer: Offer) -> pb.Offer:
    return pb.Offer(
        id=offer.id,
        framework_id=offer.framework_id,
        agent_id=offer.agent_id,
        hostname=offer.hostname,
        resources=reserved_resources_to_pb(offer.resources, offer.reserved),
        attributes=[pb.Attribute(name=k, value=v) for k, v in sorted(offer.attributes.items())],
        allocation_role=offer.allocation_role,
    )


def offer_from_pb(msg: pb.Offer) -> Offer:
    total, reserved = reserved_resources_from_pb(msg.resources, "offer.resources")
    return Offer(
        id=OfferId(msg.id),
        framework_id=FrameworkId(msg.framework_id),
        agent_id=AgentId(msg.agent_id),
        hostname=msg.hostname,
        resources=total,
        attributes={a.name: a.value for a in msg.attributes},
        reserved=reserved,
        allocation_role=msg.allocation_role,
    )


def master_info_to_pb(info: MasterInfo) -> pb.MasterInfo:
    return pb.MasterInfo(
        id=info.id, address=info.address, version=info.version, started_at=info.started_at
    )


def master_info_from_pb(msg: pb.MasterInfo) -> MasterInfo:
    return MasterInfo(
        id=msg.id, address=msg.address, version=msg.version, started_at=msg.started_at
    )


def limit_from_pb(items: Iterable[pb.Resource], field: str = "limit") -> Resources:
    """A quota limit: as `resources_from_pb`, but a scalar of 0 is kept (it means none of
    it; left out it would mean no limit on it, #16; see `allocator.quota.limit_of`)."""
    entries = list(items)
    res = resources_from_pb(entries, field)
    held = {
        r.name: 0
        for r in entries
        if r.kind in (pb.Resource.KIND_UNSPECIFIED, pb.Resource.SCALAR)
        and r.name not in res.scalars
    }
    return Resources({**res.scalars, **held}, res.ranges, res.sets) if held else res
