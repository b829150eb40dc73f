"""Frameworks in the master: subscribing, disconnecting, failover timeouts, removal, and what
they ask to be offered (REVIVE, SUPPRESS, REQUEST)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace

from mesoslite.allocator.base import Demand
from mesoslite.errors import ValidationError
from mesoslite.ids import AgentId, FrameworkId
from mesoslite.master import records as rec
from mesoslite.master import tasks
from mesoslite.master.allocation import rescind
from mesoslite.master.books import MasterBooks
from mesoslite.master.events import (
    AllocateSoon,
    CloseFramework,
    Effect,
    ErrorEvent,
    PersistRegistry,
    ReconcileOnAgent,
    SendToFramework,
    ShutdownFrameworkOnAgent,
)
from mesoslite.master.registry.base import AddFramework, RemoveFramework
from mesoslite.master.roles import check_demands
from mesoslite.master.validation import check_framework_info
from mesoslite.model import REASON_FRAMEWORK_REMOVED, FrameworkInfo, TaskState, TaskStatus
from mesoslite.resources import Resources

logger = logging.getLogger(__name__)


def subscribe(
    books: MasterBooks, info: FrameworkInfo, now: float
) -> tuple[FrameworkId, list[Effect]]:
    check_framework_info(info)
    effects: list[Effect] = []
    if info.id:
        fw = books.frameworks.known(info.id)
        # Roles may change on re-subscription (as with Mesos's MULTI_ROLE): added ones are
        # offered from the next pass; one it leaves must hold nothing, since its tasks'
        # resources stay accounted to their role until they end.
        dropped = sorted(set(fw.info.all_roles) - set(info.all_roles))
        busy = [r for r in dropped if not fw.used_by_role.get(r, Resources.empty()).is_empty()]
        if busy:
            field = "framework_info.roles" if info.roles else "framework_info.role"
            raise ValidationError(
                field,
                f"cannot leave role {busy[0]!r} on re-subscription: its tasks still use "
                f"{fw.used_by_role[busy[0]]} there (keep the role until they end)",
            )
        for offer in list(books.offers.of_framework(fw.id)):
            rescind(books, offer, notify=False)
        for role in dropped:
            fw.filters.pop(role, None)
            fw.refused.pop(role, None)
            fw.used_by_role.pop(role, None)
            fw.offered_by_role.pop(role, None)
        if dropped or sorted(fw.info.all_roles) != sorted(info.all_roles):
            logger.info(
                "framework roles changed framework_id=%s roles=%s (were %s)",
                fw.id, ",".join(info.all_roles), ",".join(fw.info.all_roles),
            )
        before = (fw.info, fw.status, fw.disconnected_at, set(fw.suppressed_roles))
        fw.info = info
        fw.status = rec.FRAMEWORK_CONNECTED
        fw.disconnected_at = None
        fw.suppressed_roles.clear()
        effects.append(
            PersistRegistry((AddFramework(info),), lambda: _undo_subscribe(books, fw, before))
        )
        # Ask agents to resend what this framework has not acknowledged, now, not at their
        # next retry.
        for agent_id in sorted({t.agent_id for t in fw.tasks.values()}):
            if books.agents.is_active(agent_id):
                effects.append(ReconcileOnAgent(agent_id, (fw.id,)))
        logger.info("framework re-subscribed framework_id=%s name=%r", fw.id, info.name)
    else:
        fid = books.frameworks.new_id()
        info = _with_framework_id(info, fid)
        added = rec.FrameworkRecord(info=info, status=rec.FRAMEWORK_CONNECTED, registered_at=now)
        books.frameworks.add(added)
        effects.append(
            PersistRegistry((AddFramework(info),), lambda: _undo_subscribe(books, added, None))
        )
        logger.info(
            "framework subscribed framework_id=%s name=%r roles=%s",
            fid, info.name, ",".join(info.all_roles),
        )
    effects.append(AllocateSoon())
    return info.id, effects


def disconnected(books: MasterBooks, fid: FrameworkId, now: float) -> list[Effect]:
    fw = books.frameworks.get(fid)
    if fw is None or not fw.connected:
        return []
    fw.status = rec.FRAMEWORK_DISCONNECTED
    fw.disconnected_at = now
    for offer in list(books.offers.of_framework(fid)):
        rescind(books, offer, notify=False)
    logger.info(
        "framework disconnected framework_id=%s failover_timeout_s=%g",
        fid, fw.info.failover_timeout_s,
    )
    if fw.info.failover_timeout_s <= 0:
        return [AllocateSoon(), *remove(books, fw, now, "its failover timeout is 0")]
    return [AllocateSoon()]


def teardown(books: MasterBooks, fid: FrameworkId, now: float) -> list[Effect]:
    fw = books.frameworks.require(fid)
    effects = remove(books, fw, now, "it was torn down")
    effects.append(SendToFramework(fid, ErrorEvent("framework torn down")))
    effects.append(CloseFramework(fid))
    return effects


def expire(books: MasterBooks, now: float) -> list[Effect]:
    """Remove the disconnected frameworks past their failover timeout."""
    effects: list[Effect] = []
    for fw in books.frameworks.past_failover(now):
        effects += remove(books, fw, now, "its failover timeout passed")
    return effects


def remove(books: MasterBooks, fw: rec.FrameworkRecord, now: float, why: str) -> list[Effect]:
    """End the framework: its offers and tasks go, it moves to the completed frameworks."""
    effects: list[Effect] = []
    for offer in list(books.offers.of_framework(fw.id)):
        rescind(books, offer, notify=False)
    agents: set[AgentId] = set()
    ended: list[tasks.Ended] = []
    for record in list(fw.tasks.values()):
        agents.add(record.agent_id)
        killing = TaskStatus(
            record.spec.task_id, fw.id, record.agent_id, TaskState.KILLING,
            f"framework removed: {why}", REASON_FRAMEWORK_REMOVED, timestamp=now,
        )
        ended.append(tasks.end(books, fw, record, killing))
    before = (fw.status, fw.disconnected_at)
    books.frameworks.complete(fw)
    # The shutdowns (and a teardown's goodbye) wait for the write (see `PersistRegistry`).
    effects.append(
        PersistRegistry((RemoveFramework(fw.id),), lambda: _undo_remove(books, fw, before, ended))
    )
    for agent_id in sorted(agents):
        if books.agents.is_active(agent_id):
            effects.append(ShutdownFrameworkOnAgent(agent_id, fw.id))
    effects.append(AllocateSoon())
    logger.info("framework removed framework_id=%s because %s", fw.id, why)
    return effects


def _undo_subscribe(
    books: MasterBooks,
    fw: rec.FrameworkRecord,
    before: tuple[FrameworkInfo, str, float | None, set[str]] | None,
) -> list[Effect]:
    """`AddFramework` was not written: a new framework is forgotten, a known one is as it
    was (its roles, connection state and failover clock)."""
    if books.frameworks.get(fw.id) is not fw:
        return []
    for offer in list(books.offers.of_framework(fw.id)):
        rescind(books, offer, notify=False)
    if before is None:
        books.frameworks.forget(fw)
    else:
        fw.info, fw.status, fw.disconnected_at, fw.suppressed_roles = before
    return [AllocateSoon()]


def _undo_remove(
    books: MasterBooks,
    fw: rec.FrameworkRecord,
    before: tuple[str, float | None],
    ended: list[tasks.Ended],
) -> list[Effect]:
    """`RemoveFramework` was not written: the framework and its tasks are back. One that
    was disconnected stays so, and is removed again at a later tick (the write retried)."""
    if fw.id in books.frameworks:
        return []
    books.frameworks.restore(fw)
    fw.status, fw.disconnected_at = before
    for saved in reversed(ended):
        tasks.unend(books, fw, saved)
    logger.warning("framework not removed (registry write failed) framework_id=%s", fw.id)
    return [AllocateSoon()]


def revive(books: MasterBooks, fid: FrameworkId, roles: Sequence[str]) -> list[Effect]:
    fw = books.frameworks.connected(fid)
    for role in own_roles(fw, roles):
        fw.suppressed_roles.discard(role)
        fw.filters.pop(role, None)
        fw.refused.pop(role, None)
    return [AllocateSoon()]


def request(books: MasterBooks, fid: FrameworkId, demands: Sequence[Demand]) -> list[Effect]:
    fw = books.frameworks.connected(fid)
    fw.demands = check_demands(demands) or None
    return [AllocateSoon()]


def suppress(books: MasterBooks, fid: FrameworkId, roles: Sequence[str]) -> list[Effect]:
    fw = books.frameworks.connected(fid)
    fw.suppressed_roles.update(own_roles(fw, roles))
    return []


def own_roles(fw: rec.FrameworkRecord, roles: Sequence[str]) -> tuple[str, ...]:
    """`roles`, or all the framework's roles if empty. Raises `ValidationError` if it names
    a role the framework does not hold."""
    held = fw.info.all_roles
    for i, role in enumerate(roles):
        if role not in held:
            raise ValidationError(
                f"roles[{i}]", f"{role!r} is not one of the framework's roles ({', '.join(held)})"
            )
    return tuple(roles) or held


def _with_framework_id(info: FrameworkInfo, fid: FrameworkId) -> FrameworkInfo:
    return replace(info, id=fid)
