"""Preemption in the master (#16): when a higher tier's work has waited longer than the
grace period and fits on no agent, tell the frameworks of lower tiers' victims, then kill
the victims; hold the emptied agents for the waiting tier.

Stages, on every tick (`check`), when `--preemption-grace-s` is above 0:
  1. Waiting work: per (framework, role), what the framework still needs: the per-role
     declaration of the jobs framework (`declare_waiting`), else the framework's REQUEST
     demands less whole tasks' worth sitting in its offers (not in suppressed roles).
  2. Work waiting longer than the grace, highest tier first, gets victims from
     `allocator.preemption.choose_victims` among the running tasks of *preemptible* roles
     of lower tiers (see there for the order: unhealthy or overrun first, then lower
     tiers, then the youngest; never below a role's quota guarantee).
  3. Effects, in this order: a `PreemptionEvent` per victim framework (task ids and the
     deadline, now + the longest kill grace among them), then a kill of each victim with
     its own kill grace. Each emptied agent is held for the waiting tier (`Hold`): lower
     tiers are filtered from it until the waiting work is placed or the hold lapses.
  4. While victims are still running, no more are chosen; after a preemption the work's
     wait starts again, so a tier that still waits preempts again only after another grace.

A victim's TASK_KILLED is sent with reason `PREEMPTED` (`mark_update`).
Pure: `now` is an argument, effects are returned.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Mapping
from dataclasses import replace

from mesoslite.allocator.base import Demand
from mesoslite.allocator.preemption import Candidate, choose_victims
from mesoslite.allocator.tiers import priority_of, tier_of
from mesoslite.errors import ValidationError
from mesoslite.ids import AgentId, FrameworkId, TaskId
from mesoslite.master import records as rec
from mesoslite.master.books import MasterBooks
from mesoslite.master.events import Effect, KillOnAgent, PreemptionEvent, SendToFramework
from mesoslite.master.preemption_book import Hold
from mesoslite.master.roles import check_demands, outstanding
from mesoslite.model import MAX_RUNTIME_LABEL, REASON_PREEMPTED, TaskState, TaskStatus
from mesoslite.resources import Resources

logger = logging.getLogger(__name__)

# Bounds one round's work: at most this many waiting tasks are made room for per tick.
MAX_PLACEMENTS_PER_ROUND = 100
# How long after the deadline an emptied agent stays held if the waiting work is not placed.
HOLD_SLACK_S = 10.0
_LIVE = (TaskState.STAGING, TaskState.STARTING, TaskState.RUNNING)

Waiting = tuple[FrameworkId, str, int, tuple[Demand, ...]]


def declare_waiting(
    books: MasterBooks, fid: FrameworkId, by_role: Mapping[str, tuple[Demand, ...]]
) -> list[Effect]:
    """Replace what the framework says waits, by role. Raises `ValidationError`."""
    fw = books.frameworks.require(fid)
    for role, demands in by_role.items():
        if role not in fw.info.all_roles:
            raise ValidationError("role", f"the framework does not hold role {role!r}")
        check_demands(demands)
    book = books.preemption
    book.declared[fid] = {r: tuple(d) for r, d in by_role.items() if d}
    return []


def check(books: MasterBooks, now: float) -> list[Effect]:
    """Stages 1-4 of the module doc; [] when preemption is off or nothing waits too long."""
    book = books.preemption
    if book.grace_s <= 0:
        return []
    _forget_ended(books, now)
    waiting = sorted(_waiting(books), key=lambda w: (-w[2], w[0], w[1]))
    keys = {(fid, role) for fid, role, _, _ in waiting}
    for key in [k for k in book.since if k not in keys]:
        del book.since[key]
    effects: list[Effect] = []
    busy = any(_live_task(books, key) is not None for key in book.preempted)
    for fid, role, priority, demands in waiting:
        since = book.since.setdefault((fid, role), now)
        if busy or now - since < book.grace_s:
            continue
        made = _make_room(books, fid, role, priority, demands, now)
        if made:
            effects += made
            busy = True
        book.since[(fid, role)] = now
    return effects


def mark_update(books: MasterBooks, status: TaskStatus) -> TaskStatus:
    """A preempted task's TASK_KILLED carries reason `PREEMPTED`."""
    preempted = books.preemption.preempted
    key = (status.framework_id, status.task_id)
    if not preempted or key not in preempted or not status.state.terminal:
        return status
    del preempted[key]
    if status.state != TaskState.KILLED:
        return status
    return replace(status, reason=REASON_PREEMPTED)


def held_from(books: MasterBooks, role: str, now: float) -> dict[AgentId, float]:
    """Agents held for a higher tier than `role`'s: filtered for it until the hold ends."""
    holds = books.preemption.holds
    if not holds:
        return {}
    priority = priority_of(role, books.roles.priorities)
    return {a: h.until for a, h in holds.items() if h.priority > priority and h.until > now}


def _waiting(books: MasterBooks) -> Iterator[Waiting]:
    declared = books.preemption.declared
    priorities = books.roles.priorities
    for fw in books.frameworks.values():
        if not fw.connected:
            continue
        by_role = declared.get(fw.id)
        for role in fw.info.all_roles:
            if by_role is not None:
                demands = by_role.get(role, ())
            elif fw.demands is not None and role not in fw.suppressed_roles:
                demands = tuple(fw.demands)
            else:
                continue
            offered = fw.offered_by_role.get(role, Resources.empty())
            left = tuple(d for d in outstanding(demands, offered) if d.count > 0)
            if left:
                yield fw.id, role, priority_of(role, priorities), left


def _make_room(
    books: MasterBooks,
    fid: FrameworkId,
    role: str,
    priority: int,
    demands: tuple[Demand, ...],
    now: float,
) -> list[Effect]:
    candidates = list(_candidates(books, priority, now))
    if not candidates:
        return []
    free = {a.id: a.free for a in books.agents.values() if a.status == rec.AGENT_ACTIVE}
    held = _role_held(books)
    guarantees = {r: q.guarantee for r, q in books.roles.quotas.items()}
    victims: list[Candidate] = []
    budget = MAX_PLACEMENTS_PER_ROUND
    for demand in demands:
        count = min(demand.count, budget)
        budget -= count
        chosen = choose_victims(
            priority=priority,
            shape=demand.resources,
            count=count,
            candidates=[c for c in candidates if c not in victims],
            free=free,
            role_held=held,
            guarantees=guarantees,
        )
        for victim in chosen:
            free[victim.agent_id] = free[victim.agent_id] + victim.resources
            held[victim.role] = held.get(victim.role, Resources.empty()) - victim.resources
        victims += chosen
    if not victims:
        return []
    return _preempt(books, fid, role, priority, victims, now)


def _candidates(books: MasterBooks, priority: int, now: float) -> Iterator[Candidate]:
    tiers = books.roles.tiers
    preempted = books.preemption.preempted
    for fw in books.frameworks.values():
        for task in fw.tasks.values():
            role = task.spec.allocation_role or fw.info.all_roles[0]
            tier = tier_of(role, tiers)
            if not tier.preemptible or priority_of(role, books.roles.priorities) >= priority:
                continue
            if task.state not in _LIVE or (fw.id, task.spec.task_id) in preempted:
                continue
            if not books.agents.is_active(task.agent_id):
                continue
            yield Candidate(
                key=(fw.id, task.spec.task_id),
                agent_id=task.agent_id,
                role=role,
                priority=priority_of(role, books.roles.priorities),
                resources=task.spec.resources,
                started_at=task.launched_at,
                unhealthy=task.status.healthy is False,
                overrun=_overrun(task, now),
            )


def _overrun(task: rec.TaskRecord, now: float) -> bool:
    text = task.spec.labels.get(MAX_RUNTIME_LABEL)
    if not text:
        return False
    try:
        limit = float(text)
    except ValueError:
        return False
    return math.isfinite(limit) and now - task.launched_at > limit


def _role_held(books: MasterBooks) -> dict[str, Resources]:
    held: dict[str, Resources] = {}
    for fw in books.frameworks.values():
        for role, used in fw.used_by_role.items():
            held[role] = held.get(role, Resources.empty()) + used
    return held


def _preempt(
    books: MasterBooks,
    fid: FrameworkId,
    role: str,
    priority: int,
    victims: list[Candidate],
    now: float,
) -> list[Effect]:
    """Tell each victim's framework, then kill the victims; hold their agents."""
    book = books.preemption
    by_framework: dict[FrameworkId, list[rec.TaskRecord]] = {}
    for v in victims:
        task = books.frameworks[FrameworkId(v.key[0])].tasks[TaskId(v.key[1])]
        by_framework.setdefault(task.framework_id, []).append(task)
    deadline = now + max(t.spec.kill_grace_period_s for ts in by_framework.values() for t in ts)
    why = f"preempted for role {role} (priority {priority})"
    effects: list[Effect] = []
    for victim_fid, tasks in by_framework.items():
        ids = tuple(t.spec.task_id for t in tasks)
        if books.frameworks[victim_fid].connected:
            effects.append(SendToFramework(victim_fid, PreemptionEvent(ids, deadline, why)))
    for tasks in by_framework.values():
        for t in tasks:
            effects.append(KillOnAgent(t.agent_id, t.framework_id, t.spec.task_id, 0.0))
            book.preempted[(t.framework_id, t.spec.task_id)] = now
            book.holds[t.agent_id] = Hold(fid, role, priority, deadline + HOLD_SLACK_S)
    logger.info(
        "preempting tasks=%d for framework_id=%s role=%s priority=%d",
        len(victims),
        fid,
        role,
        priority,
    )
    return effects


def _live_task(books: MasterBooks, key: tuple[FrameworkId, TaskId]) -> rec.TaskRecord | None:
    fw = books.frameworks.get(key[0])
    return None if fw is None else fw.tasks.get(key[1])


def _forget_ended(books: MasterBooks, now: float) -> None:
    """Drop preempted tasks that are gone (their end was not seen: a lost agent) and holds
    that lapsed or whose work no longer waits."""
    book = books.preemption
    for key in [k for k in book.preempted if _live_task(books, k) is None]:
        del book.preempted[key]
    for agent_id in [
        a
        for a, h in book.holds.items()
        if h.until <= now or (h.framework_id, h.role) not in book.since
    ]:
        del book.holds[agent_id]
