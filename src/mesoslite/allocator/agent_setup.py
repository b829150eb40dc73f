"""The agents of a pass as it starts: their index and total, the free resources and
reservations it may grant from (its own copies), and those with something to offer.

A full pass over the same agents as the last full pass (the same tuple of immutable views,
index and total: a benchmark, or a cluster where nothing changed) finds all of it made
already (`AgentSetup`, kept by its allocator) and copies only what it changes (#15).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import NamedTuple

from mesoslite.allocator.agents import sum_resources
from mesoslite.allocator.base import AgentView, ClusterView
from mesoslite.allocator.reservations import alive_check
from mesoslite.ids import AgentId
from mesoslite.resources import Resources


def agents_and_total(view: ClusterView) -> tuple[Mapping[AgentId, AgentView], Resources]:
    """The view's agents by id (the first of each id) and their totals' sum: the view's
    own when its caller keeps them (`ClusterView.total`, `agents_by_id`), else computed."""
    agents = view.agents_by_id
    if agents is None:
        by_id: dict[AgentId, AgentView] = {}
        for agent in view.agents:
            by_id.setdefault(agent.id, agent)
        agents = by_id
    total = view.total
    if total is None:
        total = sum_resources([a.total for a in agents.values()])
    return agents, total


def offering(agents: Iterable[AgentView], is_alive: Callable[[AgentId], bool]) -> list[AgentView]:
    """The agents with something to offer at the start of a pass."""
    # Nothing free and no reservation: spent (most agents in a busy cluster), said cheaply.
    return [a for a in agents if (a.free.scalars or a.reserved) and is_alive(a.id)]


class AgentSetup:
    """What a full pass reads of the view's agents before it grants anything: their index
    and total, their free resources and reservations, and those with something to offer.
    Its allocator keeps the last one for the next full pass over the same agents (the same
    tuple of immutable views, total and index, #15); each pass copies what it changes."""

    __slots__ = (
        "view_agents",
        "view_index",
        "view_total",
        "agents",
        "total",
        "free",
        "reserved",
        "alive",
    )

    def __init__(self, view: ClusterView) -> None:
        # Kept, not just their ids: identity says "the same agents" only while they live.
        self.view_agents = view.agents
        self.view_index = view.agents_by_id
        self.view_total = view.total
        self.agents, self.total = agents_and_total(view)
        self.free = {a.id: a.free for a in self.agents.values()}
        self.reserved: dict[AgentId, Mapping[str, Resources]] = {
            a.id: a.reserved for a in self.agents.values() if a.reserved
        }
        # A tuple: the same object next pass says the same agents (`SSFPolicy`'s ranking).
        self.alive = tuple(
            offering(
                self.agents.values(),
                alive_check(self.free, {a: dict(p) for a, p in self.reserved.items()}),
            )
        )

    def serves(self, view: ClusterView) -> bool:
        return (
            view.agents is self.view_agents
            and view.agents_by_id is self.view_index
            and view.total is self.view_total
        )


class PassAgents(NamedTuple):
    """What `pass_agents` gives a pass."""

    setup: AgentSetup | None  # to keep for the next full pass
    agents: Mapping[AgentId, AgentView]
    total: Resources
    free: dict[AgentId, Resources]
    reserved: dict[AgentId, dict[str, Resources]]
    is_alive: Callable[[AgentId], bool]
    alive: Sequence[AgentView]


def pass_agents(
    setup: AgentSetup | None, view: ClusterView, only: Collection[AgentId] | None
) -> PassAgents:
    """The agents of a pass over `view` (`only`: an incremental pass over those), using
    `setup` (the last full pass's) when it was made from the same agents."""
    if setup is None or not setup.serves(view):
        setup = AgentSetup(view) if only is None else None
    if setup is not None and only is None:
        # The same agents as the last full pass (#15): their index, total, free
        # resources and which have something to offer are as they were.
        free = dict(setup.free)
        reserved = {a: dict(pools) for a, pools in setup.reserved.items()}
        is_alive = alive_check(free, reserved)
        return PassAgents(setup, setup.agents, setup.total, free, reserved, is_alive, setup.alive)
    agents, total = (setup.agents, setup.total) if setup is not None else agents_and_total(view)
    # Only the agents in scope can be granted from, so only theirs are copied; quota's
    # headroom reads the rest from the view (`AllocationPass._unallocated`).
    scope = (
        agents.values() if only is None else [agents[a] for a in dict.fromkeys(only) if a in agents]
    )
    free = {a.id: a.free for a in scope}
    reserved = {a.id: dict(a.reserved) for a in scope if a.reserved}
    # Not a bound method: the orders keep it, and must not keep the pass (#15).
    is_alive = alive_check(free, reserved)
    return PassAgents(setup, agents, total, free, reserved, is_alive, offering(scope, is_alive))
