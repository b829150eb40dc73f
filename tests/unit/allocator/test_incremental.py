"""Incremental passes (`HierarchicalAllocator.allocate_agents`, #15): a pass over just the
agents that changed makes the decisions a full pass makes over the same state."""

from __future__ import annotations

import random

import pytest

from mesoslite.allocator.agents import allocatable
from mesoslite.allocator.base import (
    AgentView,
    AllocationRound,
    ClusterView,
    Demand,
    FrameworkView,
    Quota,
)
from mesoslite.allocator.conformance import check_round
from mesoslite.allocator.hierarchical import HierarchicalAllocator
from mesoslite.allocator.loader import load_allocator
from mesoslite.allocator.reservations import offerable
from mesoslite.ids import AgentId, FrameworkId
from mesoslite.resources import Resources

NOW = 100.0
ROLES = ["web", "batch", "eng/ml", "eng/db", "eng"]
PORTS = {"ports": [(31000, 32000)]}


def _allocator(name: str) -> HierarchicalAllocator:
    allocator = load_allocator(name)
    assert isinstance(allocator, HierarchicalAllocator)
    return allocator


def _agent(rng: random.Random, i: int) -> AgentView:
    total = Resources.of({"cpus": 16, "mem": 65536}, PORTS)
    kind = rng.random()
    if kind < 0.5:  # spent: everything used or offered
        free = Resources.empty()
    elif kind < 0.6:  # a leftover below the minimum worth offering
        free = Resources.of({"cpus": 0.005, "mem": 16})
    else:
        free = Resources.of({"cpus": rng.randint(1, 16), "mem": rng.randint(1, 64) * 1024}, PORTS)
    reserved = {}
    if rng.random() < 0.15:
        reserved = {rng.choice(ROLES): Resources.of({"cpus": rng.randint(1, 4), "mem": 4096})}
    attributes = {"rack": f"r{i % 4}", "zone": f"z{i % 2}"}
    return AgentView(AgentId(f"a{i:03}"), f"h{i}", total, free, attributes, reserved)


def _framework(rng: random.Random, i: int, agents: list[AgentView]) -> FrameworkView:
    filters = {a.id: NOW + rng.choice([-1.0, 0.0, 5.0]) for a in agents if rng.random() < 0.2}
    demands: tuple[Demand, ...] = ()
    if rng.random() < 0.5:
        shape = Resources.of({"cpus": rng.choice([0.5, 1, 2]), "mem": rng.choice([512, 2048])})
        demands = (Demand(shape, rng.randint(0, 30)),)
    return FrameworkView(
        FrameworkId(f"f{i:02}"),
        rng.choice(ROLES),
        Resources.of({"cpus": rng.randint(0, 40), "mem": rng.randint(0, 40) * 2048}),
        suppressed=rng.random() < 0.1,
        filters=filters,
        demands=demands,
        locality=(f"rack:r{i % 4}",) if i % 3 == 0 else (),
    )


def random_view(seed: int) -> ClusterView:
    """A seeded cluster: spent and free agents, reservations, filters, demands, quota."""
    rng = random.Random(seed)
    agents = [_agent(rng, i) for i in range(rng.randint(20, 60))]
    frameworks = [_framework(rng, i, agents) for i in range(rng.randint(3, 12))]
    quotas = {}
    if rng.random() < 0.6:
        quotas["eng"] = Quota(
            Resources.of({"cpus": rng.randint(0, 60)}), Resources.of({"cpus": 200, "mem": 1e6})
        )
        quotas["web"] = Quota(Resources.of({"cpus": rng.randint(0, 30)}))
    weights = {"web": rng.choice([1.0, 2.0]), "eng": rng.choice([1.0, 3.0])}
    priorities = {"batch": 1} if rng.random() < 0.3 else {}
    return ClusterView(tuple(agents), tuple(frameworks), weights, seed, quotas, priorities)


def _offerable(view: ClusterView) -> list[AgentId]:
    return [a.id for a in view.agents if offerable(a.free, a.reserved)]


@pytest.mark.parametrize("policy", ["drf", "fair", "ssf"])
@pytest.mark.parametrize("seed", range(12))
def test_incremental_pass_over_the_agents_with_free_resources_agrees_with_a_full_pass(
    policy: str, seed: int
) -> None:
    view = random_view(seed)
    rng = random.Random(seed + 1000)
    # In scope: every agent with something to offer, some spent ones and an unknown id.
    spent = [a.id for a in view.agents if a.id not in set(_offerable(view))]
    scope = _offerable(view) + rng.sample(spent, len(spent) // 2) + [AgentId("gone")]
    rng.shuffle(scope)
    full = _allocator(policy).allocate(view, NOW)
    incremental = _allocator(policy).allocate_agents(view, NOW, scope)
    assert full.grants, "the random state should leave something to offer"
    assert incremental == full


def _apply(view: ClusterView, round: AllocationRound) -> ClusterView:
    """The state after the round's offers were made: agents' free resources and the
    frameworks' allocations moved by each grant."""
    free = {a.id: a.free for a in view.agents}
    held = {(f.id, f.role): f.allocated for f in view.frameworks}
    for g in round.grants:
        free[g.agent_id] = free[g.agent_id] - g.resources
        held[(g.framework_id, g.role)] = held[(g.framework_id, g.role)] + g.resources
    agents = tuple(AgentView(a.id, a.hostname, a.total, free[a.id]) for a in view.agents)
    frameworks = tuple(FrameworkView(f.id, f.role, held[(f.id, f.role)]) for f in view.frameworks)
    return ClusterView(agents, frameworks, view.role_weights, view.seed + 1)


def _cluster(n_agents: int) -> ClusterView:
    total = Resources.of({"cpus": 8, "mem": 16384}, PORTS)
    agents = tuple(AgentView(AgentId(f"a{i:02}"), f"h{i}", total, total) for i in range(n_agents))
    frameworks = tuple(
        FrameworkView(FrameworkId(f"f{i}"), "web", Resources.empty()) for i in range(3)
    )
    return ClusterView(agents, frameworks, seed=7)


@pytest.mark.parametrize("policy", ["drf", "ssf"])
def test_an_added_agent_and_recovered_resources_are_offered_by_a_pass_over_them_alone(
    policy: str,
) -> None:
    allocator = _allocator(policy)
    before = _cluster(20)
    first = allocator.allocate(before, NOW)
    after = _apply(before, first)
    assert not any(allocatable(a.free) for a in after.agents), "whole agents were offered"
    # A task on a05 ended (its resources are recovered) and agent a99 registered.
    recovered = Resources.of({"cpus": 2, "mem": 4096})
    agents = [
        AgentView(a.id, a.hostname, a.total, recovered) if a.id == "a05" else a
        for a in after.agents
    ]
    agents.append(AgentView(AgentId("a99"), "h99", before.agents[0].total, before.agents[0].total))
    state = ClusterView(tuple(agents), after.frameworks, seed=after.seed)

    changed = allocator.allocate_agents(state, NOW, [AgentId("a99"), AgentId("a05")])

    check_round(state, changed, NOW)
    assert {g.agent_id: g.resources for g in changed.grants} == {
        "a05": recovered,
        "a99": before.agents[0].total,
    }
    assert changed == allocator.allocate(state, NOW)


def test_an_incremental_pass_offers_nothing_beyond_its_agents() -> None:
    view = _cluster(10)  # every agent free
    round = _allocator("drf").allocate_agents(view, NOW, [AgentId("a03")])
    assert [g.agent_id for g in round.grants] == ["a03"]
    # Shares still count the whole cluster: one agent of ten is a tenth of it.
    assert round.reasons[FrameworkId("f0")].startswith("offered 1 agent")
