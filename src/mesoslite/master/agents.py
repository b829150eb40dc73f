"""Agents in the master: registration and re-registration with their tasks, liveness,
unreachable agents, draining, and agents marked gone."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace

from mesoslite.errors import ConflictError
from mesoslite.ids import AgentId, FrameworkId
from mesoslite.master import records as rec
from mesoslite.master import tasks
from mesoslite.master.allocation import rescind
from mesoslite.master.books import MasterBooks
from mesoslite.master.events import (
    AllocateSoon,
    DisconnectAgent,
    Effect,
    FailureEvent,
    KillOnAgent,
    PersistRegistry,
    SendToFramework,
    ShutdownFrameworkOnAgent,
    UpdateEvent,
)
from mesoslite.master.registry.base import AdmitAgent, MarkAgentGone
from mesoslite.master.task_book import TaskKey
from mesoslite.master.validation import check_agent_info
from mesoslite.model import (
    REASON_AGENT_REMOVED,
    REASON_AGENT_RESTARTED,
    REASON_AGENT_UNREACHABLE,
    REASON_RECONCILIATION,
    REASON_UNREACHABLE_AGENT_REREGISTERED,
    AgentInfo,
    TaskSpec,
    TaskState,
    TaskStatus,
)

logger = logging.getLogger(__name__)


def register(
    books: MasterBooks,
    info: AgentInfo,
    reported: Sequence[tuple[FrameworkId, TaskSpec, TaskState]],
    now: float,
) -> tuple[AgentId, list[Effect]]:
    check_agent_info(info)
    if books.agents.is_gone(info.id):
        raise ConflictError(
            f"agent {info.id} was marked gone: start it with an empty work dir to join anew"
        )
    effects: list[Effect] = []
    agent_id = info.id or books.agents.new_id()
    info = _with_agent_id(info, agent_id)
    agent = books.agents.get(agent_id)
    before = None if agent is None else (agent.info, agent.status, agent.disconnected_at)
    was_unreachable = agent is not None and agent.status == rec.AGENT_UNREACHABLE
    if agent is None:
        agent = rec.AgentRecord(info=info, status=rec.AGENT_ACTIVE, registered_at=now)
        books.agents.add(agent)
        logger.info(
            "agent registered agent_id=%s hostname=%s resources=%s",
            agent_id, info.hostname, info.resources,
        )
    else:
        for offer in list(books.offers.of_agent(agent_id)):
            effects += rescind(books, offer, notify=True)
        agent.info = info
        agent.status = rec.AGENT_ACTIVE
        agent.disconnected_at = None
        logger.info("agent re-registered agent_id=%s tasks=%d", agent_id, len(reported))
    agent.last_seen_at = now
    record = agent
    effects.append(
        PersistRegistry((AdmitAgent(info),), lambda: _undo_register(books, record, before))
    )
    effects += _adopt_reported_tasks(books, agent, reported, now, was_unreachable)
    effects.append(AllocateSoon())
    return agent_id, effects


def _undo_register(
    books: MasterBooks,
    agent: rec.AgentRecord,
    before: tuple[AgentInfo, str, float | None] | None,
) -> list[Effect]:
    """The agent's admission was not written: a new agent is forgotten, a known one is as
    it was before (what it reported of its tasks stays known: it is what it runs)."""
    if books.agents.get(agent.id) is not agent:
        return []
    effects: list[Effect] = []
    for offer in list(books.offers.of_agent(agent.id)):
        effects += rescind(books, offer, notify=True)
    if before is None:
        for fid, task_id in sorted(agent.tasks):
            fw = books.frameworks.get(fid)
            record = fw.tasks.pop(task_id, None) if fw else None
            if fw is not None and record is not None:
                fw.remove_used(record.spec.allocation_role, record.spec.resources)
        books.agents.remove(agent.id)
    else:
        agent.info, agent.status, agent.disconnected_at = before
    effects.append(AllocateSoon())
    return effects


def disconnected(books: MasterBooks, agent_id: AgentId, now: float) -> list[Effect]:
    agent = books.agents.get(agent_id)
    if agent is None or agent.status != rec.AGENT_ACTIVE:
        return []
    agent.status = rec.AGENT_DISCONNECTED
    agent.disconnected_at = now
    logger.warning("agent disconnected agent_id=%s", agent_id)
    effects: list[Effect] = []
    for offer in list(books.offers.of_agent(agent_id)):
        effects += rescind(books, offer, notify=True)
    return effects


def expire(books: MasterBooks, now: float) -> list[Effect]:
    """Mark unreachable the agents that did not re-register in time or went silent."""
    effects: list[Effect] = []
    for agent in books.agents.missed_reregistration(now):
        effects += _mark_unreachable(books, agent, now, "agent did not re-register in time")
    for agent in books.agents.silent(now):
        # Its stream may look open (a stopped or partitioned agent): close it, so that the
        # agent registers again when it can, and reconcile then.
        effects.append(DisconnectAgent(agent.id))
        for offer in list(books.offers.of_agent(agent.id)):
            effects += rescind(books, offer, notify=True)
        silent_s = now - (agent.last_seen_at or now)
        effects += _mark_unreachable(
            books, agent, now, f"agent missed its pings for {silent_s:.1f}s"
        )
        effects.append(AllocateSoon())
    return effects


def drain(books: MasterBooks, agent_id: AgentId, now: float) -> list[Effect]:
    agent = books.agents.require(agent_id)
    agent.draining = True
    effects: list[Effect] = []
    for offer in list(books.offers.of_agent(agent_id)):
        effects += rescind(books, offer, notify=True)
    if agent.status == rec.AGENT_ACTIVE:
        for fid, task_id in sorted(agent.tasks):
            effects.append(KillOnAgent(agent_id, fid, task_id, 0.0))
    logger.info("agent draining agent_id=%s tasks=%d", agent_id, len(agent.tasks))
    return effects


def mark_gone(books: MasterBooks, agent_id: AgentId, now: float) -> list[Effect]:
    agent = books.agents.require(agent_id)
    effects: list[Effect] = []
    for offer in list(books.offers.of_agent(agent_id)):
        effects += rescind(books, offer, notify=True)
    by_framework: dict[FrameworkId, list[TaskStatus]] = {}
    ended: list[tuple[rec.FrameworkRecord, tasks.Ended]] = []
    for fid, task_id in sorted(agent.tasks):
        fw = books.frameworks.get(fid)
        record = fw.tasks.get(task_id) if fw else None
        if fw is None or record is None:
            continue
        gone = TaskStatus(
            task_id, fid, agent_id, TaskState.GONE, "its agent was marked gone",
            REASON_AGENT_REMOVED, timestamp=now,
        )
        ended.append((fw, tasks.end(books, fw, record, gone)))
        if fw.connected:
            by_framework.setdefault(fid, []).append(gone)
    books.agents.remove(agent_id, gone=True)
    # What follows the write waits for it (see `PersistRegistry`).
    effects.append(
        PersistRegistry((MarkAgentGone(agent_id),), lambda: _undo_gone(books, agent, ended))
    )
    if agent.status == rec.AGENT_ACTIVE:
        for fid in sorted(books.frameworks):
            effects.append(ShutdownFrameworkOnAgent(agent_id, fid))
        effects.append(DisconnectAgent(agent_id))
    effects += [SendToFramework(f, UpdateEvent(tuple(s))) for f, s in by_framework.items()]
    effects.append(AllocateSoon())
    logger.warning("agent marked gone agent_id=%s", agent_id)
    return effects


def _undo_gone(
    books: MasterBooks,
    agent: rec.AgentRecord,
    ended: list[tuple[rec.FrameworkRecord, tasks.Ended]],
) -> list[Effect]:
    """`MarkAgentGone` was not written: the agent and its tasks are back as they were."""
    if agent.id in books.agents:
        return []
    books.agents.restore(agent)
    for fw, saved in reversed(ended):
        tasks.unend(books, fw, saved)
    logger.warning("agent not marked gone (registry write failed) agent_id=%s", agent.id)
    return [AllocateSoon()]


def _mark_unreachable(
    books: MasterBooks, agent: rec.AgentRecord, now: float, why: str
) -> list[Effect]:
    agent.status = rec.AGENT_UNREACHABLE
    agent.disconnected_at = agent.disconnected_at or now
    logger.warning(
        "agent unreachable agent_id=%s tasks=%d: %s", agent.id, len(agent.tasks), why
    )
    by_framework: dict[FrameworkId, list[TaskStatus]] = {}
    for fid, task_id in sorted(agent.tasks):
        fw = books.frameworks.get(fid)
        if fw is None or task_id not in fw.tasks:
            continue
        record = fw.tasks[task_id]
        record.status = TaskStatus(
            task_id, fid, agent.id, TaskState.UNREACHABLE,
            why, REASON_AGENT_UNREACHABLE, timestamp=now,
        )
        if fw.connected:
            by_framework.setdefault(fid, []).append(record.status)
    effects: list[Effect] = [
        SendToFramework(fid, UpdateEvent(tuple(s))) for fid, s in by_framework.items()
    ]
    for fw in books.frameworks.values():
        if fw.connected:
            effects.append(SendToFramework(fw.id, FailureEvent(agent.id, "agent unreachable")))
    return effects


def _adopt_reported_tasks(
    books: MasterBooks,
    agent: rec.AgentRecord,
    reported: Sequence[tuple[FrameworkId, TaskSpec, TaskState]],
    now: float,
    was_unreachable: bool,
) -> list[Effect]:
    effects: list[Effect] = []
    seen: set[TaskKey] = set()
    shutdown: set[FrameworkId] = set()
    changed: dict[FrameworkId, list[TaskStatus]] = {}
    for fid, spec, task_state in reported:
        seen.add((fid, spec.task_id))
        fw = books.frameworks.get(fid)
        if fw is None:
            if not task_state.terminal:
                shutdown.add(fid)
            continue
        record = fw.tasks.get(spec.task_id)
        if was_unreachable and not task_state.terminal and not fw.info.partition_aware:
            kill, killed = _kill_stale(books, fw, agent, spec, now)
            effects.append(kill)
            if killed is not None:
                changed.setdefault(fid, []).append(killed)
            continue
        if task_state.terminal:
            # Its terminal update is still pending on the agent and will come. A master
            # that never saw the task (a new leader) remembers it as completed, so that
            # reconciliation answers its end state rather than TASK_GONE.
            key = (fid, spec.task_id)
            if record is None and key not in books.tasks:
                status = TaskStatus(spec.task_id, fid, agent.id, task_state, timestamp=now)
                books.tasks.remember(rec.TaskRecord(fid, spec, agent.id, status))
            continue
        if record is None:
            spec = _in_role_of(fw, spec)
            status = TaskStatus(spec.task_id, fid, agent.id, task_state, timestamp=now)
            fw.tasks[spec.task_id] = rec.TaskRecord(fid, spec, agent.id, status, now)
            agent.tasks.add((fid, spec.task_id))
            agent.used = agent.used + spec.resources
            fw.add_used(spec.allocation_role, spec.resources)
        elif record.state != task_state:
            record.status = TaskStatus(
                spec.task_id, fid, agent.id, task_state, "agent re-registered",
                REASON_RECONCILIATION, timestamp=now,
            )
            changed.setdefault(fid, []).append(record.status)
    _lose_missing(books, agent, seen, now, changed)
    for fid in sorted(shutdown):
        effects.append(ShutdownFrameworkOnAgent(agent.id, fid))
    for fid, items in changed.items():
        if books.frameworks[fid].connected:
            effects.append(SendToFramework(fid, UpdateEvent(tuple(items))))
    return effects


def _lose_missing(
    books: MasterBooks,
    agent: rec.AgentRecord,
    seen: set[TaskKey],
    now: float,
    changed: dict[FrameworkId, list[TaskStatus]],
) -> None:
    """The tasks the master knew on the agent that it did not report are TASK_LOST."""
    for fid, task_id in sorted(agent.tasks - seen):
        fw = books.frameworks.get(fid)
        record = fw.tasks.get(task_id) if fw else None
        if fw is None or record is None:
            agent.tasks.discard((fid, task_id))
            continue
        record.status = TaskStatus(
            task_id, fid, agent.id, TaskState.LOST,
            "task was not found on its agent when it re-registered",
            REASON_AGENT_RESTARTED, timestamp=now,
        )
        tasks.finish(books, fw, record)
        changed.setdefault(fid, []).append(record.status)


def _kill_stale(
    books: MasterBooks,
    fw: rec.FrameworkRecord,
    agent: rec.AgentRecord,
    spec: TaskSpec,
    now: float,
) -> tuple[KillOnAgent, TaskStatus | None]:
    """Kill a task its framework was told is unreachable, now that its agent is back: the
    framework is not partition-aware and may have started it again elsewhere (#11). It ends
    TASK_KILLED at once in the master, so that the framework never sees it run again;
    updates the agent still holds for it are acknowledged for the framework (`tasks.py`)."""
    status = TaskStatus(
        spec.task_id, fw.id, agent.id, TaskState.KILLED,
        "killed: its agent came back after it was marked unreachable, and the framework "
        "(not partition-aware) was told the task was lost",
        REASON_UNREACHABLE_AGENT_REREGISTERED, timestamp=now,
    )
    kill = KillOnAgent(agent.id, fw.id, spec.task_id, 0.0)
    record = fw.tasks.get(spec.task_id)
    if record is not None and record.agent_id != agent.id:
        # Its id was reused elsewhere: kill this copy, say nothing of the live one.
        return kill, None
    if record is not None:
        record.status = status
        tasks.finish(books, fw, record)
    else:
        # A new leader that never knew the task (it recovered the agent from the registry).
        books.tasks.remember(rec.TaskRecord(fw.id, spec, agent.id, status))
    logger.warning(
        "killing stale task framework_id=%s task_id=%s agent_id=%s",
        fw.id, spec.task_id, agent.id,
    )
    return kill, status


def _in_role_of(fw: rec.FrameworkRecord, spec: TaskSpec) -> TaskSpec:
    """The task accounted to one of the framework's roles: the one its agent kept, or the
    framework's first (a task launched before the agent kept roles, or a role it left)."""
    roles = fw.info.all_roles
    if spec.allocation_role in roles:
        return spec
    return replace(spec, allocation_role=roles[0])


def _with_agent_id(info: AgentInfo, agent_id: AgentId) -> AgentInfo:
    return replace(info, id=agent_id)
