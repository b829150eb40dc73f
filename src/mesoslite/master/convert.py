"""Master-side conversions: framework events, agent messages and operator summaries to protobuf."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from mesoslite import convert as c
from mesoslite._proto.v1 import agent_pb2, operator_pb2, scheduler_pb2
from mesoslite.allocator.base import Quota
from mesoslite.master import records as rec
from mesoslite.master.actor import PING, ReadFileRequest
from mesoslite.master.events import (
    AckOnAgent,
    ErrorEvent,
    FailureEvent,
    KillOnAgent,
    LaunchOnAgent,
    MessageEvent,
    OffersEvent,
    PreemptionEvent,
    ReconcileOnAgent,
    RescindEvent,
    ShutdownFrameworkOnAgent,
    UpdateEvent,
)
from mesoslite.master.follow import CreditOnAgent, FollowOnAgent, StopFollowOnAgent
from mesoslite.master.roles import Explanation, RoleStatus

Ev = scheduler_pb2.Event


def event_to_pb(event: Any) -> scheduler_pb2.Event:
    if isinstance(event, UpdateEvent):
        return Ev(
            type=Ev.UPDATE,
            update=Ev.Update(statuses=[c.status_to_pb(s) for s in event.statuses]),
        )
    if isinstance(event, OffersEvent):
        return Ev(type=Ev.OFFERS, offers=Ev.Offers(offers=[c.offer_to_pb(o) for o in event.offers]))
    if isinstance(event, RescindEvent):
        return Ev(type=Ev.RESCIND, rescind=Ev.Rescind(offer_id=event.offer_id))
    if isinstance(event, FailureEvent):
        return Ev(
            type=Ev.FAILURE, failure=Ev.Failure(agent_id=event.agent_id, message=event.message)
        )
    if isinstance(event, ErrorEvent):
        return Ev(type=Ev.ERROR, error=Ev.Error(message=event.message))
    if isinstance(event, MessageEvent):
        return Ev(type=Ev.MESSAGE, message=Ev.Message(agent_id=event.agent_id, data=event.data))
    if isinstance(event, PreemptionEvent):
        preemption = Ev.Preemption(
            task_ids=list(event.task_ids), deadline=event.deadline, message=event.message
        )
        return Ev(type=Ev.PREEMPTION, preemption=preemption)
    raise TypeError(f"not a framework event: {event!r}")


HEARTBEAT_EVENT = Ev(type=Ev.HEARTBEAT)
MM = agent_pb2.MasterMessage


def agent_message_to_pb(item: Any, pings: Iterator[int]) -> agent_pb2.MasterMessage:
    """`item` from an agent connection's queue; a ping takes the connection's next `pings`."""
    if isinstance(item, LaunchOnAgent):
        return MM(
            launch_tasks=MM.LaunchTasks(
                framework_id=item.framework_id, task_infos=[c.task_to_pb(t) for t in item.tasks]
            )
        )
    if isinstance(item, AckOnAgent):
        return MM(
            acknowledge=MM.Acknowledge(
                acknowledgements=[
                    MM.Acknowledgement(framework_id=f, task_id=t, uuid=u) for f, t, u in item.acks
                ]
            )
        )
    if isinstance(item, KillOnAgent):
        return MM(
            kill_task=MM.KillTask(
                framework_id=item.framework_id,
                task_id=item.task_id,
                kill_grace_period_s=item.grace_period_s,
            )
        )
    if isinstance(item, ShutdownFrameworkOnAgent):
        return MM(shutdown_framework=MM.ShutdownFramework(framework_id=item.framework_id))
    if isinstance(item, ReconcileOnAgent):
        return MM(reconcile=MM.Reconcile(framework_ids=list(item.framework_ids)))
    if isinstance(item, ReadFileRequest):
        return MM(
            read_file=MM.ReadFile(
                request_id=item.request_id,
                framework_id=item.framework_id,
                task_id=item.task_id,
                name=item.name,
                offset=item.offset,
                length=item.length,
            )
        )
    if isinstance(item, CreditOnAgent):
        return MM(follow_credit=MM.FollowCredit(follow_id=item.follow_id, offset=item.offset))
    if isinstance(item, FollowOnAgent):
        return MM(
            follow_file=MM.FollowFile(
                follow_id=item.follow_id,
                framework_id=item.framework_id,
                task_id=item.task_id,
                name=item.name,
                offset=item.offset,
            )
        )
    if isinstance(item, StopFollowOnAgent):
        return MM(stop_follow=MM.StopFollow(follow_id=item.follow_id))
    if item is PING:
        return MM(ping=MM.Ping(seq=next(pings)))
    raise TypeError(f"not an agent message: {item!r}")


def agent_summary(agent: rec.AgentRecord) -> operator_pb2.AgentSummary:
    return operator_pb2.AgentSummary(
        agent_info=c.agent_to_pb(agent.info),
        status=(
            ("drained" if not agent.tasks else "draining") if agent.draining else agent.status
        ),
        total=c.resources_to_pb(agent.info.resources),
        used=c.resources_to_pb(agent.used),
        offered=c.resources_to_pb(agent.offered),
        task_count=len(agent.tasks),
        registered_at=agent.registered_at,
        pending_updates=agent.pending_updates,
    )


def framework_summary(fw: rec.FrameworkRecord) -> operator_pb2.FrameworkSummary:
    return operator_pb2.FrameworkSummary(
        framework_info=c.framework_to_pb(fw.info),
        status=fw.status,
        allocated=c.resources_to_pb(fw.used),
        offered=c.resources_to_pb(fw.offered),
        task_count=len(fw.tasks),
        registered_at=fw.registered_at,
        suppressed=fw.suppressed,
    )


def task_summary(task: rec.TaskRecord) -> operator_pb2.TaskSummary:
    return operator_pb2.TaskSummary(
        task_info=c.task_to_pb(task.spec),
        framework_id=task.framework_id,
        status=c.status_to_pb(task.status),
    )


def role_info(status: RoleStatus) -> operator_pb2.RoleInfo:
    quota = status.quota
    return operator_pb2.RoleInfo(
        role=status.role,
        weight=status.weight,
        guarantee=c.resources_to_pb(quota.guarantee) if quota else [],
        limit=c.resources_to_pb(quota.limit) if quota and quota.limit is not None else [],
        has_limit=bool(quota and quota.limit is not None),
        allocated=c.resources_to_pb(status.allocated),
        framework_count=status.frameworks,
        priority=status.tier.priority,
        preemptible=status.tier.preemptible,
    )


def quota_text(quota: Quota | None) -> str:
    if quota is None:
        return ""
    limit = "none" if quota.limit is None else str(quota.limit) or "nothing"
    return f"guarantee {quota.guarantee or 'none'}, limit {limit}"


def explanation(e: Explanation) -> operator_pb2.ExplainFrameworkResponse:
    return operator_pb2.ExplainFrameworkResponse(
        framework_id=e.framework_id,
        status=e.status,
        role=e.role,
        role_weight=e.role_weight,
        dominant_share=e.dominant_share,
        allocated=c.resources_to_pb(e.allocated),
        offered=c.resources_to_pb(e.offered),
        suppressed=e.suppressed,
        filters=e.filters,
        demands=[f"{d.count} x {d.resources}" for d in e.demands or ()],
        quota=quota_text(e.quota),
        last_reason=e.last_reason,
        roles=[
            operator_pb2.RoleExplanation(
                role=r.role,
                weight=r.weight,
                dominant_share=r.dominant_share,
                allocated=c.resources_to_pb(r.allocated),
                offered=c.resources_to_pb(r.offered),
                suppressed=r.suppressed,
                filters=r.filters,
                quota=quota_text(r.quota),
                last_reason=r.last_reason,
            )
            for r in e.roles
        ],
    )
