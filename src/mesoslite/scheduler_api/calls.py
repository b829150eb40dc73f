"""The requests of the driver's calls (ACCEPT, DECLINE, REVIVE, ...), built from the SDK's
types; `SchedulerDriver` sends them. Protobuf stays inside `scheduler_api`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from mesoslite import convert as c
from mesoslite._proto.v1 import scheduler_pb2
from mesoslite.ids import AgentId, FrameworkId, OfferId, TaskId
from mesoslite.model import TaskSpec, TaskStatus
from mesoslite.resources import Resources
from mesoslite.scheduler_api.types import Demand

Op = scheduler_pb2.Operation


def accept_request(
    framework_id: FrameworkId,
    offer_ids: Sequence[OfferId],
    tasks: Sequence[TaskSpec],
    *,
    refuse_seconds: float,
    reserve: Resources | None,
    unreserve: Resources | None,
) -> scheduler_pb2.AcceptRequest:
    """LAUNCH `tasks` on the offers, then RESERVE and UNRESERVE if given."""
    launch = Op.Launch(task_infos=[c.task_to_pb(t) for t in tasks])
    request = scheduler_pb2.AcceptRequest(
        framework_id=framework_id,
        offer_ids=list(offer_ids),
        operations=[Op(type=Op.LAUNCH, launch=launch)],
    )
    if reserve:
        request.operations.append(
            Op(type=Op.RESERVE, reserve=Op.Reservation(resources=c.resources_to_pb(reserve)))
        )
    if unreserve:
        request.operations.append(
            Op(
                type=Op.UNRESERVE,
                unreserve=Op.Reservation(resources=c.resources_to_pb(unreserve)),
            )
        )
    request.filters.refuse_seconds = refuse_seconds
    return request


def decline_request(
    framework_id: FrameworkId, offer_ids: Sequence[OfferId], *, refuse_seconds: float
) -> scheduler_pb2.DeclineRequest:
    request = scheduler_pb2.DeclineRequest(framework_id=framework_id, offer_ids=list(offer_ids))
    request.filters.refuse_seconds = refuse_seconds
    return request


def kill_request(
    framework_id: FrameworkId, task_id: TaskId | str, agent_id: AgentId | str, grace_s: float
) -> scheduler_pb2.KillRequest:
    return scheduler_pb2.KillRequest(
        framework_id=framework_id,
        task_id=task_id,
        agent_id=agent_id,
        kill_grace_period_s=grace_s,
    )


def acknowledge_request(
    framework_id: FrameworkId, statuses: Iterable[TaskStatus]
) -> scheduler_pb2.AcknowledgeRequest | None:
    """One request for every update with a uuid (the others need none); None if none has."""
    acks = [
        scheduler_pb2.Acknowledgement(agent_id=s.agent_id, task_id=s.task_id, uuid=s.uuid)
        for s in statuses
        if s.uuid
    ]
    if not acks:
        return None
    return scheduler_pb2.AcknowledgeRequest(framework_id=framework_id, acknowledgements=acks)


def reconcile_request(
    framework_id: FrameworkId, tasks: Iterable[tuple[TaskId | str, AgentId | str]]
) -> scheduler_pb2.ReconcileRequest:
    return scheduler_pb2.ReconcileRequest(
        framework_id=framework_id,
        tasks=[scheduler_pb2.ReconcileRequest.Task(task_id=t, agent_id=a) for t, a in tasks],
    )


def demand_request(
    framework_id: FrameworkId, demands: Sequence[Demand]
) -> scheduler_pb2.RequestRequest:
    return scheduler_pb2.RequestRequest(
        framework_id=framework_id,
        demands=[
            scheduler_pb2.Demand(resources=c.resources_to_pb(d.resources), count=d.count)
            for d in demands
        ],
    )
