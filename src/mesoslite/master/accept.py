"""Answering offers: ACCEPT (launches, RESERVE/UNRESERVE) and DECLINE, validated then applied."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import TypeVar

from mesoslite.allocator.base import Demand
from mesoslite.allocator.filters import filter_until
from mesoslite.errors import AlreadyExistsError, ValidationError
from mesoslite.frozen import maker
from mesoslite.ids import AgentId, FrameworkId, OfferId
from mesoslite.limits import MAX_DURATION_S
from mesoslite.master import records as rec
from mesoslite.master.allocation import rescind
from mesoslite.master.books import MasterBooks
from mesoslite.master.constants import ALLOCATION_BATCH_S
from mesoslite.master.events import AllocateSoon, Effect, LaunchOnAgent, PersistRegistry
from mesoslite.master.registry.base import SetReservation
from mesoslite.master.roles import consume
from mesoslite.master.validation import check_duration, check_tasks
from mesoslite.model import Offer, TaskSpec, TaskState
from mesoslite.resources import Resources

V = TypeVar("V")
# Effects are immutable values: one instance serves every accept.
_ALLOCATE_SOON = AllocateSoon()
_task_spec = maker(TaskSpec)
_launch_on = maker(LaunchOnAgent)


def accept(
    books: MasterBooks,
    fid: FrameworkId,
    offer_ids: Sequence[OfferId],
    tasks: Sequence[TaskSpec],
    refuse_seconds: float,
    now: float,
    *,
    reserve: Resources | None = None,
    unreserve: Resources | None = None,
) -> list[Effect]:
    fw = books.frameworks.connected(fid)
    if not 0.0 <= refuse_seconds <= MAX_DURATION_S:  # (NaN too) the check says what is wrong
        check_duration("filters.refuse_seconds", refuse_seconds)
    check_tasks(tasks)
    offers = books.offers.owned(fw.info.id, offer_ids)
    agent_id = offers[0].agent_id
    role = offers[0].allocation_role
    offered = offers[0].resources if len(offers) == 1 else _sum(o.resources for o in offers)
    reservation = None
    if reserve or unreserve:
        reservation = _check_reservation(books, role, agent_id, offered, reserve, unreserve)
    launched = _to_launch(fw, tasks, agent_id, role)
    needed = launched[0].resources if len(launched) == 1 else _sum(t.resources for t in launched)
    if not offered.contains(needed):
        raise ValidationError(
            "tasks",
            "the tasks need more than the offers hold: " + "; ".join(offered.shortfall(needed)),
        )
    # Valid: change books.
    before = None
    if reservation is not None:
        before = _Before(
            fw.demands,
            fw.filters.get(role, {}).get(agent_id),
            fw.refused.get(role, {}).get(agent_id),
        )
    pools = _take_offers(books, offers)
    agent = books.agents[agent_id]
    _record(books, fw, agent, launched, pools, now)
    agent.use(needed)
    fw.add_used(role, needed)
    if fw.demands:
        fw.demands = consume(fw.demands, [t.resources for t in launched])
    effects: list[Effect] = []
    if reservation is not None and before is not None:
        op = SetReservation(agent_id, role, reservation)
        effects.append(_reserve(books, fw, op, launched, before))
    if refuse_seconds > 0:
        left = offered - needed
        if not left.is_empty():
            fw.filters.setdefault(role, {})[agent_id] = filter_until(
                now, refuse_seconds, ALLOCATION_BATCH_S
            )
            fw.refused.setdefault(role, {})[agent_id] = left
    if launched:
        return [*effects, _ALLOCATE_SOON, _launch_on(agent_id, fid, tuple(launched))]
    effects.append(_ALLOCATE_SOON)
    return effects


def _take_offers(books: MasterBooks, offers: Sequence[Offer]) -> dict[str, Resources]:
    """Rescind the accepted offers; returns their reserved parts by role (the pools the
    tasks take reserved resources from)."""
    pools: dict[str, Resources] = {}
    for offer in offers:
        # An offer's reserved parts are in the reservation book iff it has some
        # (`make_offers` is where both are made).
        if offer.reserved:
            for pool_role, part in books.reservations.rescinded(offer.id).items():
                pools[pool_role] = pools.get(pool_role, Resources.empty()) + part
        rescind(books, offer, notify=False)
    return pools


def _record(
    books: MasterBooks,
    fw: rec.FrameworkRecord,
    agent: rec.AgentRecord,
    launched: Sequence[TaskSpec],
    pools: dict[str, Resources],
    now: float,
) -> None:
    """The launched tasks' records, on their framework's and agent's books."""
    fid, agent_id = fw.info.id, agent.info.id
    fw_tasks, agent_tasks = fw.tasks, agent.tasks
    for task in launched:
        task_id = task.task_id
        fw_tasks[task_id] = rec.TaskRecord(fid, task, agent_id, None, now)  # TASK_STAGING
        agent_tasks.add((fid, task_id))
        if pools:
            books.reservations.launched(agent_id, fid, task_id, task.resources, pools)


def decline(
    books: MasterBooks,
    fid: FrameworkId,
    offer_ids: Sequence[OfferId],
    refuse_seconds: float,
    now: float,
) -> list[Effect]:
    fw = books.frameworks.connected(fid)
    check_duration("filters.refuse_seconds", refuse_seconds)
    offers = books.offers.owned(fw.id, offer_ids, together=False)
    for offer in offers:
        rescind(books, offer, notify=False)
        if refuse_seconds > 0:
            filters = fw.filters.setdefault(offer.allocation_role, {})
            until = max(
                filters.get(offer.agent_id, 0.0),
                filter_until(now, refuse_seconds, ALLOCATION_BATCH_S),
            )
            filters[offer.agent_id] = until
            fw.refused.setdefault(offer.allocation_role, {})[offer.agent_id] = offer.resources
    return [AllocateSoon()]


def _check_reservation(
    books: MasterBooks,
    role: str,
    agent_id: AgentId,
    offered: Resources,
    reserve: Resources | None,
    unreserve: Resources | None,
) -> Resources | None:
    """The role's dynamic reservation on the agent after RESERVE/UNRESERVE, or None if
    neither was asked. Raises `ValidationError` before anything changes."""
    if not reserve and not unreserve:
        return None
    if role == "*":
        raise ValidationError(
            "operations.reserve",
            "offers allocated to role '*' cannot reserve resources (reservations are for "
            "the offer's allocation role)",
        )
    current = books.dynamic_reservations.get(agent_id, {}).get(role, Resources.empty())
    for name, res in (("reserve", reserve), ("unreserve", unreserve)):
        if res and (res.ranges or res.sets):
            raise ValidationError(f"operations.{name}", f"scalars only, got {res}")
    if reserve and not offered.contains(reserve):
        raise ValidationError(
            "operations.reserve",
            "more than the offers hold: " + "; ".join(offered.shortfall(reserve)),
        )
    if unreserve and not current.contains(unreserve):
        raise ValidationError(
            "operations.unreserve",
            f"more than role {role!r} has reserved on agent {agent_id}: "
            + "; ".join(current.shortfall(unreserve)),
        )
    return current + (reserve or Resources.empty()) - (unreserve or Resources.empty())


def _to_launch(
    fw: rec.FrameworkRecord, tasks: Sequence[TaskSpec], agent_id: AgentId, role: str
) -> list[TaskSpec]:
    """The tasks as launched from the offers: on their agent, in their role. Raises if one
    names another agent or an id the framework already runs."""
    launched: list[TaskSpec] = []
    for i, task in enumerate(tasks):
        if task.agent_id and task.agent_id != agent_id:
            raise ValidationError(
                f"tasks[{i}].agent_id",
                f"{task.agent_id} is not the agent of the offers ({agent_id})",
            )
        if task.task_id in fw.tasks:
            raise AlreadyExistsError(
                f"tasks[{i}].task_id: task {task.task_id!r} already exists in framework {fw.id}"
            )
        # A task names its user, else it runs as its framework's (#14): the agent sees one.
        command = task.command
        if not command.user and fw.info.user:
            command = replace(command, user=fw.info.user)
        # `replace(task, agent_id=..., allocation_role=..., command=...)`, field by field:
        # `replace` looks every field up by name, per task (#15). `maker` takes every
        # field, and `test_accept_fast` fails if `TaskSpec` gains one this does not copy.
        launched.append(
            _task_spec(
                task.task_id,
                command,
                task.resources,
                task.name,
                agent_id,
                task.kill_grace_period_s,
                task.labels,
                task.health_check,
                role,
            )
        )
    return launched


def _reserve(
    books: MasterBooks,
    fw: rec.FrameworkRecord,
    op: SetReservation,
    launched: Sequence[TaskSpec],
    before: _Before,
) -> PersistRegistry:
    """Set the role's dynamic reservation. The launch waits for the write (see
    `PersistRegistry`); if it fails, the accept is undone whole."""
    current = books.dynamic_reservations.get(op.agent_id, {}).get(op.role, Resources.empty())
    _set_dynamic(books, op.agent_id, op.role, op.resources)
    return PersistRegistry((op,), lambda: _undo(books, fw, op, current, launched, before))


@dataclass(frozen=True, slots=True)
class _Before:
    """What an accept replaced in its framework's record, for `_undo`."""

    demands: list[Demand] | None
    filter_until: float | None
    refused: Resources | None


def _undo(
    books: MasterBooks,
    fw: rec.FrameworkRecord,
    op: SetReservation,
    current: Resources,
    launched: Sequence[TaskSpec],
    before: _Before,
) -> list[Effect]:
    """The reservation write of an accept failed: forget its tasks (never launched) and
    its reservation, and put back the framework's demands and filter. Offers of the agent
    made meanwhile may hold the reservation: they are rescinded."""
    effects: list[Effect] = []
    for offer in list(books.offers.of_agent(op.agent_id)):
        effects += rescind(books, offer, notify=True)
    now_reserved = books.dynamic_reservations.get(op.agent_id, {}).get(op.role)
    if (now_reserved or Resources.empty()) == op.resources:
        _set_dynamic(books, op.agent_id, op.role, current)
    agent = books.agents.get(op.agent_id)
    for task in launched:
        record = fw.tasks.get(task.task_id)
        if record is None or record.state != TaskState.STAGING:
            continue
        del fw.tasks[task.task_id]
        books.reservations.finished(fw.id, task.task_id)
        fw.remove_used(task.allocation_role, task.resources)
        if agent is not None:
            agent.tasks.discard((fw.id, task.task_id))
            agent.unuse(task.resources)  # clamped: ports may overlap
    fw.demands = before.demands
    _put(fw.filters, op.role, op.agent_id, before.filter_until)
    _put(fw.refused, op.role, op.agent_id, before.refused)
    effects.append(AllocateSoon())
    return effects


def _put(by_role: dict[str, dict[AgentId, V]], role: str, key: AgentId, value: V | None) -> None:
    into = by_role.setdefault(role, {})
    if value is None:
        into.pop(key, None)
    else:
        into[key] = value
    if not into:
        del by_role[role]


def _set_dynamic(books: MasterBooks, agent_id: AgentId, role: str, resources: Resources) -> None:
    roles = books.dynamic_reservations.setdefault(agent_id, {})
    if resources.is_empty():
        roles.pop(role, None)
    else:
        roles[role] = resources
    if not roles:
        del books.dynamic_reservations[agent_id]


def _sum(items: Iterable[Resources]) -> Resources:
    total = Resources.empty()
    for r in items:
        total = total + r
    return total
