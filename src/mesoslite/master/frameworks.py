"""Frameworks in the master: subscribing, disconnecting, failover timeouts, removal, and what
they ask to be offered (REVIVE, SUPPRESS, REQUEST)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from mesoslite.allocator.base import Demand
from mesoslite.errors import UnknownFrameworkError, ValidationError
from mesoslite.ids import AgentId, FrameworkId, new_id
from mesoslite.master import lookup, tasks
from mesoslite.master import records as rec
from mesoslite.master.allocation import rescind
from mesoslite.master.constants import MAX_COMPLETED_FRAMEWORKS
from mesoslite.master.events import (
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

if TYPE_CHECKING:
    from mesoslite.master.state import MasterState

logger = logging.getLogger(__name__)


def subscribe(
    state: MasterState, info: FrameworkInfo, now: float
) -> tuple[FrameworkId, list[Effect]]:
    check_framework_info(info)
    effects: list[Effect] = []
    if info.id:
        fw = _known(state, info.id)
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
        for offer in list(state.offers.of_framework(fw.id)):
            rescind(state, offer, notify=False)
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
            PersistRegistry((AddFramework(info),), lambda: _undo_subscribe(state, fw, before))
        )
        # Ask agents to resend what this framework has not acknowledged, now, not at their
        # next retry.
        for agent_id in sorted({t.agent_id for t in fw.tasks.values()}):
            if lookup.agent_active(state, agent_id):
                effects.append(ReconcileOnAgent(agent_id, (fw.id,)))
        logger.info("framework re-subscribed framework_id=%s name=%r", fw.id, info.name)
    else:
        fid = FrameworkId(new_id("fw"))
        info = _with_framework_id(info, fid)
        added = rec.FrameworkRecord(info=info, status=rec.FRAMEWORK_CONNECTED, registered_at=now)
        state.frameworks[fid] = added
        effects.append(
            PersistRegistry((AddFramework(info),), lambda: _undo_subscribe(state, added, None))
        )
        logger.info(
            "framework subscribed framework_id=%s name=%r roles=%s",
            fid, info.name, ",".join(info.all_roles),
        )
    state.allocation_wanted = True
    return info.id, effects


def _known(state: MasterState, fid: FrameworkId) -> rec.FrameworkRecord:
    """The framework re-subscribing with `fid`. Raises `UnknownFrameworkError`."""
    fw = state.frameworks.get(fid)
    if fw is None:
        if fid in state.completed_frameworks:
            raise UnknownFrameworkError(
                f"framework {fid} was removed (torn down or past its failover timeout)"
            )
        raise UnknownFrameworkError(f"framework {fid} is not known to this master")
    return fw


def disconnected(state: MasterState, fid: FrameworkId, now: float) -> list[Effect]:
    fw = state.frameworks.get(fid)
    if fw is None or not fw.connected:
        return []
    fw.status = rec.FRAMEWORK_DISCONNECTED
    fw.disconnected_at = now
    for offer in list(state.offers.of_framework(fid)):
        rescind(state, offer, notify=False)
    logger.info(
        "framework disconnected framework_id=%s failover_timeout_s=%g",
        fid, fw.info.failover_timeout_s,
    )
    state.allocation_wanted = True
    if fw.info.failover_timeout_s <= 0:
        return remove(state, fw, now, "its failover timeout is 0")
    return []


def teardown(state: MasterState, fid: FrameworkId, now: float) -> list[Effect]:
    fw = lookup.framework(state, fid)
    effects = remove(state, fw, now, "it was torn down")
    effects.append(SendToFramework(fid, ErrorEvent("framework torn down")))
    effects.append(CloseFramework(fid))
    return effects


def expire(state: MasterState, now: float) -> list[Effect]:
    """Remove the disconnected frameworks past their failover timeout."""
    effects: list[Effect] = []
    for fw in list(state.frameworks.values()):
        if (
            fw.status == rec.FRAMEWORK_DISCONNECTED
            and fw.disconnected_at is not None
            and now >= fw.disconnected_at + fw.info.failover_timeout_s
        ):
            effects += remove(state, fw, now, "its failover timeout passed")
    return effects


def remove(state: MasterState, fw: rec.FrameworkRecord, now: float, why: str) -> list[Effect]:
    """End the framework: its offers and tasks go, it moves to the completed frameworks."""
    effects: list[Effect] = []
    for offer in list(state.offers.of_framework(fw.id)):
        rescind(state, offer, notify=False)
    agents: set[AgentId] = set()
    ended: list[tasks.Ended] = []
    for record in list(fw.tasks.values()):
        agents.add(record.agent_id)
        killing = TaskStatus(
            record.spec.task_id, fw.id, record.agent_id, TaskState.KILLING,
            f"framework removed: {why}", REASON_FRAMEWORK_REMOVED, timestamp=now,
        )
        ended.append(tasks.end(state, fw, record, killing))
    before = (fw.status, fw.disconnected_at)
    del state.frameworks[fw.id]
    fw.status = rec.FRAMEWORK_COMPLETED
    fw.unregistered_at = now
    state.completed_frameworks[fw.id] = fw
    while len(state.completed_frameworks) > MAX_COMPLETED_FRAMEWORKS:
        state.completed_frameworks.popitem(last=False)
    # The shutdowns (and a teardown's goodbye) wait for the write (see `PersistRegistry`).
    effects.append(
        PersistRegistry((RemoveFramework(fw.id),), lambda: _undo_remove(state, fw, before, ended))
    )
    for agent_id in sorted(agents):
        if lookup.agent_active(state, agent_id):
            effects.append(ShutdownFrameworkOnAgent(agent_id, fw.id))
    state.allocation_wanted = True
    logger.info("framework removed framework_id=%s because %s", fw.id, why)
    return effects


def _undo_subscribe(
    state: MasterState,
    fw: rec.FrameworkRecord,
    before: tuple[FrameworkInfo, str, float | None, set[str]] | None,
) -> list[Effect]:
    """`AddFramework` was not written: a new framework is forgotten, a known one is as it
    was (its roles, connection state and failover clock)."""
    if state.frameworks.get(fw.id) is not fw:
        return []
    for offer in list(state.offers.of_framework(fw.id)):
        rescind(state, offer, notify=False)
    if before is None:
        del state.frameworks[fw.id]
    else:
        fw.info, fw.status, fw.disconnected_at, fw.suppressed_roles = before
    state.allocation_wanted = True
    return []


def _undo_remove(
    state: MasterState,
    fw: rec.FrameworkRecord,
    before: tuple[str, float | None],
    ended: list[tasks.Ended],
) -> list[Effect]:
    """`RemoveFramework` was not written: the framework and its tasks are back. One that
    was disconnected stays so, and is removed again at a later tick (the write retried)."""
    if fw.id in state.frameworks:
        return []
    state.completed_frameworks.pop(fw.id, None)
    state.frameworks[fw.id] = fw
    fw.status, fw.disconnected_at = before
    fw.unregistered_at = None
    for saved in reversed(ended):
        tasks.unend(state, fw, saved)
    state.allocation_wanted = True
    logger.warning("framework not removed (registry write failed) framework_id=%s", fw.id)
    return []


def revive(state: MasterState, fid: FrameworkId, roles: Sequence[str]) -> list[Effect]:
    fw = lookup.connected_framework(state, fid)
    for role in lookup.own_roles(fw, roles):
        fw.suppressed_roles.discard(role)
        fw.filters.pop(role, None)
        fw.refused.pop(role, None)
    state.allocation_wanted = True
    return []


def request(state: MasterState, fid: FrameworkId, demands: Sequence[Demand]) -> list[Effect]:
    fw = lookup.connected_framework(state, fid)
    fw.demands = check_demands(demands) or None
    state.allocation_wanted = True
    return []


def suppress(state: MasterState, fid: FrameworkId, roles: Sequence[str]) -> list[Effect]:
    fw = lookup.connected_framework(state, fid)
    fw.suppressed_roles.update(lookup.own_roles(fw, roles))
    return []


def _with_framework_id(info: FrameworkInfo, fid: FrameworkId) -> FrameworkInfo:
    return replace(info, id=fid)
