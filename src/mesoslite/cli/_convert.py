"""From the Operator and Jobs wire replies to the CLI's views (`_views`): used by `_client`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from mesoslite._proto.v1 import common_pb2
from mesoslite.cli._views import (
    AgentView,
    ExplainView,
    FileChunk,
    FollowedChunk,
    FrameworkView,
    RoleExplainView,
    RoleView,
    TaskView,
)
from mesoslite.convert import limit_from_pb, reserved_resources_from_pb
from mesoslite.jobs.convert import job_from_pb
from mesoslite.jobs.model import JobView
from mesoslite.model import TaskState
from mesoslite.resources import Resources


def _state(value: int) -> tuple[str, bool]:
    try:
        state = TaskState(value)
    except ValueError:
        return "TASK_STATE_UNSPECIFIED", False
    return state.label, state.terminal


def resources(items: Iterable[common_pb2.Resource]) -> Resources:
    """The master's resources as one total; reservation roles are summed in (for now)."""
    return reserved_resources_from_pb(items, "resources")[0]


def job_view(r: Any) -> JobView:
    return job_from_pb(r.job)


def file_chunk(r: Any) -> FileChunk:
    label, terminal = _state(r.state)
    return FileChunk(data=bytes(r.data), size=int(r.size), state=label, terminal=terminal)


def followed_chunk(r: Any) -> FollowedChunk:
    if not r.end:
        return FollowedChunk(offset=int(r.offset), data=bytes(r.data))
    st = r.status
    return FollowedChunk(
        offset=int(r.offset),
        data=bytes(r.data),
        end=True,
        state=_state(st.state)[0],
        exit_code=st.exit_code if st.has_exit_code else None,
        message=st.message,
    )


def agent_view(a: Any) -> AgentView:
    info = a.agent_info
    return AgentView(
        id=info.id,
        hostname=info.hostname,
        status=a.status,
        address=info.address,
        version=info.version,
        registered_at=a.registered_at,
        total=resources(a.total),
        used=resources(a.used),
        offered=resources(a.offered),
        task_count=a.task_count,
        pending_updates=a.pending_updates,
        attributes={x.name: x.value for x in info.attributes},
    )


def framework_view(f: Any) -> FrameworkView:
    info = f.framework_info
    roles = list(info.roles) or [info.role or "*"]
    return FrameworkView(
        id=info.id,
        name=info.name,
        role=",".join(roles),
        user=info.user,
        principal=info.principal,
        hostname=info.hostname,
        status=f.status,
        registered_at=f.registered_at,
        failover_timeout_s=info.failover_timeout_s,
        task_count=f.task_count,
        allocated=resources(f.allocated),
        offered=resources(f.offered),
        suppressed=f.suppressed,
        labels=dict(sorted(info.labels.items())),
        roles=roles,
    )


def role_view(r: Any) -> RoleView:
    return RoleView(
        role=r.role,
        weight=r.weight,
        guarantee=resources(r.guarantee),
        limit=limit_from_pb(r.limit) if r.has_limit else None,
        allocated=resources(r.allocated),
        framework_count=r.framework_count,
        priority=r.priority,
        preemptible=r.preemptible,
    )


def explain_view(r: Any) -> ExplainView:
    return ExplainView(
        framework_id=r.framework_id,
        status=r.status,
        role=r.role,
        role_weight=r.role_weight,
        dominant_share=r.dominant_share,
        allocated=resources(r.allocated),
        offered=resources(r.offered),
        suppressed=r.suppressed,
        filters=dict(sorted(r.filters.items())),
        demands=list(r.demands),
        quota=r.quota,
        last_reason=r.last_reason,
        roles=tuple(
            RoleExplainView(
                role=x.role,
                weight=x.weight,
                dominant_share=x.dominant_share,
                allocated=resources(x.allocated),
                offered=resources(x.offered),
                suppressed=x.suppressed,
                filters=dict(sorted(x.filters.items())),
                quota=x.quota,
                last_reason=x.last_reason,
            )
            for x in r.roles
        ),
    )


def task_view(t: Any) -> TaskView:
    info, status = t.task_info, t.status
    label, terminal = _state(status.state)
    cmd = info.command
    return TaskView(
        id=info.task_id,
        name=info.name,
        framework_id=t.framework_id,
        agent_id=status.agent_id or info.agent_id,
        state=label,
        terminal=terminal,
        exit_code=status.exit_code if status.has_exit_code else None,
        message=status.message,
        reason=status.reason,
        updated_at=status.timestamp,
        resources=resources(info.resources),
        command=cmd.value if cmd.shell else " ".join(cmd.argv),
        labels=dict(sorted(info.labels.items())),
    )
