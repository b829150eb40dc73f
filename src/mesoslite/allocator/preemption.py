"""Choosing preemption victims (#16): a pure function of the tasks, agents and guarantees.

When a higher tier's work has waited longer than the grace period and fits on no agent,
the master (`master/preemption.py`) asks `choose_victims` which running tasks to kill so
that `count` tasks of the waiting shape fit. The rules, in order:

1. Only candidates of a lower tier than the waiting work are taken (the caller passes only
   preemptible roles' tasks), and never so many of a role that what the role still holds
   falls below its quota guarantee.
2. Room is made on one agent per waiting task: the agent that needs the fewest victims.
3. Among the tasks of an agent, victims are taken in this order: tasks that failed their
   health check or overran their declared `max_runtime_s` first; then lower tiers before
   higher ones; then the youngest (latest started) first.
4. Victims that turn out not to be needed (the later ones made room on their own) are
   given back, so no task is killed for nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from mesoslite.ids import AgentId
from mesoslite.resources import Resources

# Victims sort by this: (0 if slow or hung, else 1), priority, -started_at, key.
Order = tuple[int, int, float, tuple[str, str]]


@dataclass(frozen=True, slots=True)
class Candidate:
    """A running task that may be preempted. `key` identifies it to the caller."""

    key: tuple[str, str]
    agent_id: AgentId
    role: str
    priority: int
    resources: Resources
    started_at: float
    unhealthy: bool = False
    # Past the `max_runtime_s` its job declared.
    overrun: bool = False

    def order(self) -> Order:
        """Victims sort first by this key: slow or hung, lower tier, youngest."""
        slow = self.unhealthy or self.overrun
        return (0 if slow else 1, self.priority, -self.started_at, self.key)


def choose_victims(
    *,
    priority: int,
    shape: Resources,
    count: int,
    candidates: Sequence[Candidate],
    free: Mapping[AgentId, Resources],
    role_held: Mapping[str, Resources],
    guarantees: Mapping[str, Resources],
) -> list[Candidate]:
    """The tasks to kill so that `count` tasks shaped `shape` of tier `priority` fit.

    Args:
        free: each agent's free (unoffered, unused) resources.
        role_held: what each role holds now (for the guarantee rule).
        guarantees: each role's quota guarantee.

    Returns the victims in the order chosen; fewer tasks' room than `count` (even none) if
    that is all that can be made. Agents where the shape fits already count as room.
    """
    free_now = dict(free)
    held = dict(role_held)
    by_agent: dict[AgentId, list[Candidate]] = {}
    for c in sorted(candidates, key=Candidate.order):
        if c.priority < priority:
            by_agent.setdefault(c.agent_id, []).append(c)
    victims: list[Candidate] = []
    for _ in range(max(0, count)):
        best: tuple[tuple[int, list[Order]], AgentId, list[Candidate]] | None = None
        for agent_id in sorted(free_now):
            plan = _room_on(shape, free_now[agent_id], by_agent.get(agent_id, []), held, guarantees)
            if plan is None:
                continue
            cost = (len(plan), [c.order() for c in plan])
            if best is None or cost < best[0]:
                best = (cost, agent_id, plan)
            if not plan:
                break
        if best is None:
            break
        _, agent_id, plan = best
        freed = free_now[agent_id]
        for victim in plan:
            by_agent[agent_id].remove(victim)
            held[victim.role] = held.get(victim.role, Resources.empty()) - victim.resources
            freed = freed + victim.resources
        free_now[agent_id] = freed - shape
        victims.extend(plan)
    return victims


def _room_on(
    shape: Resources,
    free: Resources,
    ordered: Sequence[Candidate],
    held: Mapping[str, Resources],
    guarantees: Mapping[str, Resources],
) -> list[Candidate] | None:
    """The victims on one agent (in `Candidate.order`) that make room for `shape`, or None."""
    if free.contains(shape):
        return []
    taken: list[Candidate] = []
    room = free
    held_after = dict(held)
    for c in ordered:
        role_left = held_after.get(c.role, Resources.empty()) - c.resources
        if not _keeps_guarantee(role_left, guarantees.get(c.role)):
            continue
        held_after[c.role] = role_left
        taken.append(c)
        room = room + c.resources
        if room.contains(shape):
            return _prune(shape, free, taken)
    return None


def _prune(shape: Resources, free: Resources, taken: list[Candidate]) -> list[Candidate]:
    """Give back victims (least preferred first) whose room is not needed after all."""
    kept = list(taken)
    for c in reversed(taken):
        rest = [k for k in kept if k is not c]
        room = free
        for k in rest:
            room = room + k.resources
        if room.contains(shape):
            kept = rest
    return kept


def _keeps_guarantee(left: Resources, guarantee: Resources | None) -> bool:
    if guarantee is None:
        return True
    return all(left.scalars.get(name, 0) >= v for name, v in guarantee.scalars.items())
