"""The master's tasks: status updates, kills, acknowledgements, reconciliation, completed tasks."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from mesoslite.errors import ConflictError, UnknownTaskError, ValidationError
from mesoslite.ids import AgentId, FrameworkId, TaskId
from mesoslite.master import records as rec
from mesoslite.master.books import MasterBooks
from mesoslite.master.events import (
    AckOnAgent,
    AllocateSoon,
    Effect,
    KillOnAgent,
    SendToFramework,
    UpdateEvent,
)
from mesoslite.master.preemption import mark_update
from mesoslite.master.task_book import TaskKey as TaskKey
from mesoslite.master.validation import check_duration
from mesoslite.model import (
    REASON_RECONCILIATION,
    REASON_UNREACHABLE_AGENT_REREGISTERED,
    TERMINAL_STATES,
    StatusSource,
    TaskState,
    TaskStatus,
)
from mesoslite.resources import Resources

# Effects are immutable values: one instance serves every batch of updates.
_ALLOCATE_SOON = AllocateSoon()


def status_updates(
    books: MasterBooks, agent_id: AgentId, statuses: Iterable[TaskStatus], now: float
) -> list[Effect]:
    by_framework: dict[FrameworkId, list[TaskStatus]] = {}
    orphan_acks: list[tuple[FrameworkId, TaskId, bytes]] = []
    freed = False  # a task ended: one `AllocateSoon` for the batch
    preempted = books.preemption.preempted
    framework = books.frameworks.get
    from_agent = StatusSource.AGENT
    for st in statuses:
        if st.agent_id != agent_id or st.source is not from_agent:
            st = _from_agent(st, agent_id)
        if preempted:
            st = mark_update(books, st)
        fw = framework(st.framework_id)
        if fw is None:
            # Nobody will acknowledge an update of a removed framework: do it for them.
            done = books.tasks.get((st.framework_id, st.task_id))
            if done is not None:
                done.status = st
            if st.uuid:
                orphan_acks.append((st.framework_id, st.task_id, st.uuid))
            continue
        record = fw.tasks.get(st.task_id)
        if record is not None and record.agent_id == agent_id:
            record.status = st
            if st.state in TERMINAL_STATES:  # `st.state.terminal`
                _finish(books, fw, record)
                freed = True
        elif _stale(books, fw, st, agent_id):
            # The master ended this task (killed as stale, see `agents._kill_stale`): the
            # framework must not see it run again. Acknowledge for it, so that the agent's
            # update stream moves on to the task's real end.
            if st.uuid:
                orphan_acks.append((fw.id, st.task_id, st.uuid))
            continue
        else:
            done = books.tasks.get((fw.id, st.task_id))
            if done is not None and not done.status.state.terminal:
                done.status = st
        if fw.status == rec.FRAMEWORK_CONNECTED:  # `fw.connected`
            by_framework.setdefault(fw.info.id, []).append(st)
    effects: list[Effect] = [_ALLOCATE_SOON] if freed else []
    effects += [
        SendToFramework(fid, UpdateEvent(tuple(items))) for fid, items in by_framework.items()
    ]
    if orphan_acks:
        effects.append(AckOnAgent(agent_id, tuple(orphan_acks)))
    return effects


def _stale(books: MasterBooks, fw: rec.FrameworkRecord, st: TaskStatus, agent_id: AgentId) -> bool:
    """An update of a copy of a task whose id now runs on another agent, or a non-terminal
    one of a task the master killed as stale."""
    live = fw.tasks.get(st.task_id)
    if live is not None:
        return live.agent_id != agent_id
    if st.state.terminal:
        return False
    done = books.tasks.get((fw.id, st.task_id))
    return done is not None and done.status.reason == REASON_UNREACHABLE_AGENT_REREGISTERED


def kill(
    books: MasterBooks, fid: FrameworkId, task_id: TaskId, grace_period_s: float
) -> list[Effect]:
    fw = books.frameworks.require(fid)
    check_duration("kill_grace_period_s", grace_period_s)
    task = fw.tasks.get(task_id)
    if task is None:
        if (fid, task_id) in books.tasks:
            return []
        raise UnknownTaskError(f"task {task_id!r} is not known in framework {fid}")
    if not books.agents.is_active(task.agent_id):
        # Mesos answers with TASK_LOST here; we keep the task and let the agent decide
        # when it comes back, but tell the framework nothing was killed yet.
        raise ConflictError(
            f"task {task_id!r} is on agent {task.agent_id}, which is "
            f"{books.agents[task.agent_id].status}: cannot kill it now"
        )
    return [KillOnAgent(task.agent_id, fid, task_id, grace_period_s)]


def acknowledge(
    books: MasterBooks, fid: FrameworkId, acks: Sequence[tuple[AgentId, TaskId, bytes]]
) -> list[Effect]:
    books.frameworks.require(fid)
    for i, (_agent_id, task_id, uuid) in enumerate(acks):
        if not uuid:
            raise ValidationError(
                f"acknowledgements[{i}].uuid", f"is empty for task {task_id!r}"
            )
    by_agent: dict[AgentId, list[tuple[FrameworkId, TaskId, bytes]]] = {}
    for agent_id, task_id, uuid in acks:
        if books.agents.is_active(agent_id):
            by_agent.setdefault(agent_id, []).append((fid, task_id, uuid))
    return [AckOnAgent(a, tuple(items)) for a, items in by_agent.items()]


def reconcile(
    books: MasterBooks, fid: FrameworkId, tasks: Sequence[tuple[TaskId, AgentId]], now: float
) -> list[Effect]:
    fw = books.frameworks.connected(fid)
    statuses: list[TaskStatus] = []
    if not tasks:
        statuses = [_reconciled(t.status, now) for t in fw.tasks.values()]
    for task_id, agent_id in tasks:
        record = fw.tasks.get(task_id) or books.tasks.get((fid, task_id))
        if record is not None:
            statuses.append(_reconciled(record.status, now))
            continue
        agent = books.agents.get(agent_id) if agent_id else None
        if agent is not None and agent.status == rec.AGENT_DISCONNECTED:
            # The agent may still re-register with the task (after a master failover):
            # answer nothing now, as Mesos does for a transitioning agent; the framework
            # asks again.
            continue
        if agent_id and agent_id in books.agents:
            task_state, msg = TaskState.GONE, "task is not known on its agent"
            if books.agents[agent_id].status == rec.AGENT_UNREACHABLE:
                task_state, msg = TaskState.UNREACHABLE, "agent is unreachable"
        elif agent_id:
            task_state, msg = TaskState.UNKNOWN, f"agent {agent_id} is not known"
        else:
            task_state, msg = TaskState.UNKNOWN, "task is not known to the master"
        statuses.append(
            TaskStatus(
                task_id, fid, agent_id, task_state, msg, REASON_RECONCILIATION, timestamp=now
            )
        )
    if not statuses:
        return []
    return [SendToFramework(fid, UpdateEvent(tuple(statuses)))]


def finish(
    books: MasterBooks, fw: rec.FrameworkRecord, record: rec.TaskRecord
) -> list[Effect]:
    """The task ended: off its framework's and agent's books, into the completed tasks.
    Returns `[AllocateSoon()]`: its resources are free."""
    _finish(books, fw, record)
    return [AllocateSoon()]


def _finish(books: MasterBooks, fw: rec.FrameworkRecord, record: rec.TaskRecord) -> None:
    spec = record.spec
    task_id, fid = spec.task_id, fw.info.id
    del fw.tasks[task_id]
    books.reservations.finished(fid, task_id)
    fw.remove_used(spec.allocation_role, spec.resources)
    agent = books.agents.get(record.agent_id)
    if agent is not None:
        agent.tasks.discard((fid, task_id))
        agent.unuse(spec.resources)  # clamped: ports may overlap
    books.tasks.remember(record)


@dataclass(frozen=True, slots=True)
class Ended:
    """A task `end` ended, and what it was before, for `unend`."""

    record: rec.TaskRecord
    status: TaskStatus
    reserved: tuple[AgentId, dict[str, Resources]] | None


def end(
    books: MasterBooks, fw: rec.FrameworkRecord, record: rec.TaskRecord, status: TaskStatus
) -> Ended:
    """`finish` the task with `status`, keeping what `unend` needs to take it back."""
    saved = Ended(record, record.status, books.reservations.of_task(fw.id, record.spec.task_id))
    record.status = status
    finish(books, fw, record)  # callers ask for allocation themselves
    return saved


def unend(books: MasterBooks, fw: rec.FrameworkRecord, saved: Ended) -> None:
    """The task `end` ended is live again: the registry write that ended it failed."""
    record = saved.record
    task_id = record.spec.task_id
    key = (fw.id, task_id)
    if task_id in fw.tasks:
        return
    books.tasks.forget(record)
    record.status = saved.status
    fw.tasks[task_id] = record
    fw.add_used(record.spec.allocation_role, record.spec.resources)
    agent = books.agents.get(record.agent_id)
    if agent is not None:
        agent.tasks.add(key)
        agent.use(record.spec.resources)
    if saved.reserved is not None:
        books.reservations.restore_task(fw.id, task_id, saved.reserved)


def _from_agent(st: TaskStatus, agent_id: AgentId) -> TaskStatus:
    if st.agent_id == agent_id and st.source == StatusSource.AGENT:
        return st
    return replace(st, agent_id=agent_id, source=StatusSource.AGENT)


def _reconciled(st: TaskStatus, now: float) -> TaskStatus:
    return replace(
        st, uuid=b"", reason=REASON_RECONCILIATION, source=StatusSource.MASTER, timestamp=now
    )
