"""Dump the rounds of many seeded random views, to compare two trees' allocators (a script).

    PYTHONPATH=/path/to/other/src python bench/dump_allocations.py [--views N] > out.txt

Every view is allocated by drf, fair (cpus and mem) and ssf, as a full pass, as an
incremental pass over half its agents, and for three passes in a row with the grants
accepted in between; so are the benchmark's views (`bench_allocator.py`: every agent
free, and a steady state, full and incremental). Each round is printed whole (grants with
resources, reservations, tasks and role; reasons). Views mix one role and nested roles,
weights (also 0 and inf), quotas (guarantees and limits), tiers, reservations, filters,
suppression, demands, port ranges, sets, locality hints and running tasks, multi-role
frameworks and spent agents.
Two allocators make the same offers when the outputs are byte-identical (`cmp`); the last
line is a digest of the rest.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import random
import sys
from dataclasses import replace

from mesoslite.allocator.base import (
    AgentView,
    AllocationRound,
    ClusterView,
    Demand,
    FrameworkView,
    Quota,
)
from mesoslite.allocator.drf import DRFPolicy
from mesoslite.allocator.fair import FairPolicy
from mesoslite.allocator.hierarchical import HierarchicalAllocator
from mesoslite.allocator.ssf import SSFPolicy
from mesoslite.ids import AgentId, FrameworkId
from mesoslite.resources import Resources

NOW = 100.0
NESTED = ["web", "batch", "eng", "eng/ml", "eng/ml/x", "eng/db"]
PORTS = [(31000, 32000), (40000, 40100)]


def _agent(rng: random.Random, i: int, roles: list[str]) -> AgentView:
    ports = {"ports": [rng.choice(PORTS)]} if rng.random() < 0.7 else {}
    sets = {"gpus": [f"g{k}" for k in range(rng.randint(0, 2))]} if rng.random() < 0.2 else {}
    total = Resources.of({"cpus": 16, "mem": 65536, "disk": 1000}, ports, sets)
    kind = rng.random()
    if kind < 0.3:
        free = Resources.empty()
    elif kind < 0.4:
        free = Resources.of({"cpus": 0.005, "mem": 16})
    elif kind < 0.7:
        free = total
    else:
        free = Resources.of(
            {"cpus": rng.randint(1, 16), "mem": rng.randint(1, 64) * 1024, "disk": 10},
            ports,
            sets if rng.random() < 0.5 else {},
        )
    reserved = {}
    if rng.random() < 0.15:
        reserved = {rng.choice(roles): Resources.of({"cpus": rng.randint(1, 4), "mem": 4096})}
    attributes = {"rack": f"r{i % 5}", "zone": f"z{i % 2}"}
    return AgentView(AgentId(f"a{i:03}"), f"h{i}", total, free, attributes, reserved)


def _allocated(rng: random.Random) -> Resources:
    if rng.random() < 0.2:
        return Resources.empty()
    ports = {"ports": [rng.choice(PORTS)]} if rng.random() < 0.3 else {}
    return Resources.of({"cpus": rng.randint(0, 40), "mem": rng.randint(0, 40) * 2048}, ports)


def _framework(rng: random.Random, i: int, role: str, agents: list[AgentView]) -> FrameworkView:
    filters = {a.id: NOW + rng.choice([-1.0, 0.0, 5.0]) for a in agents if rng.random() < 0.2}
    demands: tuple[Demand, ...] = ()
    if rng.random() < 0.4:
        demands = tuple(
            Demand(
                Resources.of({"cpus": rng.choice([0.5, 1, 2]), "mem": rng.choice([512, 2048])}),
                rng.randint(0, 30),
            )
            for _ in range(rng.randint(1, 2))
        )
    locality: tuple[str, ...] = ()
    if i % 3 == 0:
        locality = (rng.choice([f"rack:r{i % 5}", f"zone:z{i % 2}", f"a{i:03}", "h2"]),)
    running = tuple(rng.choice(agents).id for _ in range(rng.randint(0, 2)) if agents)
    return FrameworkView(
        FrameworkId(f"f{i:02}"),
        role,
        _allocated(rng),
        suppressed=rng.random() < 0.1,
        filters=filters,
        demands=demands,
        locality=locality,
        running_on=running,
    )


def random_view(seed: int) -> ClusterView:
    rng = random.Random(seed)
    roles = ["*"] if rng.random() < 0.3 else rng.sample(NESTED, rng.randint(2, len(NESTED)))
    agents = [_agent(rng, i, roles) for i in range(rng.randint(5, 80))]
    frameworks = []
    for i in range(rng.randint(1, 25)):
        frameworks.append(_framework(rng, i, rng.choice(roles), agents))
        if len(roles) > 1 and rng.random() < 0.15:  # a second role (MULTI_ROLE)
            other = rng.choice([r for r in roles if r != frameworks[-1].role])
            frameworks.append(_framework(rng, i, other, agents))
    weights = {r: rng.choice([1.0, 1.0, 2.0, 0.5, 3.0]) for r in roles if rng.random() < 0.5}
    if rng.random() < 0.1:
        weights[rng.choice(roles)] = rng.choice([0.0, math.inf])
    quotas = {}
    if rng.random() < 0.3:
        role = rng.choice(roles)
        limit = Resources.of({"cpus": rng.randint(10, 200)}) if rng.random() < 0.5 else None
        quotas[role] = Quota(Resources.of({"cpus": rng.randint(0, 60)}), limit)
    priorities = {rng.choice(roles): 1} if rng.random() < 0.2 else {}
    return ClusterView(tuple(agents), tuple(frameworks), weights, seed, quotas, priorities)


def _accept(view: ClusterView, result: AllocationRound) -> ClusterView:
    """`view` after every grant of `result` is taken (and a new seed)."""
    agents = {a.id: a for a in view.agents}
    held: dict[tuple[FrameworkId, str], Resources] = {}
    for g in result.grants:
        agent = agents[g.agent_id]
        reserved = dict(agent.reserved)
        unreserved = g.resources
        for role, part in g.reserved.items():
            reserved[role] = reserved[role] - part
            unreserved = unreserved - part
        agents[g.agent_id] = replace(agent, free=agent.free - unreserved, reserved=reserved)
        key = (g.framework_id, g.role)
        held[key] = held.get(key, Resources.empty()) + g.resources
    frameworks = tuple(
        replace(f, allocated=f.allocated + held.get((f.id, f.role), Resources.empty()))
        for f in view.frameworks
    )
    return replace(view, agents=tuple(agents.values()), frameworks=frameworks, seed=view.seed + 1)


def _dump(label: str, result: AllocationRound) -> list[str]:
    lines = [f"{label} seed={result.seed} grants={len(result.grants)}"]
    for g in result.grants:
        reserved = ",".join(f"{r}={res}" for r, res in sorted(g.reserved.items()))
        lines.append(
            f"  {g.framework_id} {g.role} {g.agent_id} {g.resources} [{reserved}] {g.tasks}"
        )
    for fid, text in sorted(result.reasons.items()):
        lines.append(f"  why {fid}: {text}")
    for fid, per_role in sorted(result.role_reasons.items()):
        lines.append(f"  roles {fid}: {sorted(per_role.items())}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--views", type=int, default=300)
    args = parser.parse_args()
    allocators = {
        "drf": HierarchicalAllocator(DRFPolicy()),
        "fair": HierarchicalAllocator(FairPolicy()),
        "fair-mem": HierarchicalAllocator(FairPolicy("mem")),
        "ssf": HierarchicalAllocator(SSFPolicy()),
    }
    digest = hashlib.sha256()
    for seed in range(args.views):
        view = random_view(seed)
        for name, allocator in allocators.items():
            lines = _dump(f"view {seed} {name} full", allocator.allocate(view, NOW))
            half = [a.id for a in view.agents[::2]]
            lines += _dump(f"view {seed} {name} incr", allocator.allocate_agents(view, NOW, half))
            state = view
            for step in range(3):
                result = allocator.allocate(state, NOW + step)
                lines += _dump(f"view {seed} {name} step {step}", result)
                state = _accept(state, result)
            text = "\n".join(lines) + "\n"
            digest.update(text.encode())
            sys.stdout.write(text)
    # The benchmark's views (`bench_allocator.py`, this directory): full and steady state.
    from bench_allocator import AgentProfile, FrameworkProfile, build_view, steady_view

    for n_agents, n_frameworks in ((2000, 200), (500, 50)):
        view = build_view(AgentProfile(n_agents), FrameworkProfile(n_frameworks))
        steady, ids = steady_view(view, 100)
        for name, allocator in allocators.items():
            lines = _dump(f"bench {n_agents} {name} full", allocator.allocate(view, 0.0))
            lines += _dump(f"bench {n_agents} {name} steady", allocator.allocate(steady, 0.0))
            lines += _dump(
                f"bench {n_agents} {name} incr", allocator.allocate_agents(steady, 0.0, ids)
            )
            text = "\n".join(lines) + "\n"
            digest.update(text.encode())
            sys.stdout.write(text)
    print(f"digest {digest.hexdigest()}")


if __name__ == "__main__":
    main()
