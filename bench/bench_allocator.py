"""Time one `allocate()` pass over clusters of various sizes (a script, not a test).

    python bench/bench_allocator.py [--repeat N] [--policy drf|fair|ssf|drf-order-only|all]
                                    [--agents 1000,10000] [--frameworks 10,100,1000]
                                    [--changed N] [--filtered F]

Clusters are described by profiles (`AgentProfile`, `FrameworkProfile`), as Mesos's
`hierarchical_allocator_benchmarks.cpp` does; each pass sees every agent with some free
resources, so every pass makes one grant per agent (the worst case for progressive filling).
With `--changed N`, also the steady state the master is usually in (#15): only N agents have
free resources (added, or resources recovered), timed with a full pass and with an
incremental pass over those N (`HierarchicalAllocator.allocate_agents`).
Agents are in 20 racks and 4 zones; a third of the frameworks prefer a rack (for `ssf`).

# after Mesos `hierarchical_allocator_benchmarks.cpp`, Nomad `scheduler/benchmarks/`
"""

from __future__ import annotations

import argparse
import itertools
import random
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from functools import partial

from mesoslite.allocator.base import (
    AgentView,
    AllocationRound,
    ClusterView,
    FrameworkView,
    Policy,
)
from mesoslite.allocator.drf import DRFPolicy
from mesoslite.allocator.fair import FairPolicy
from mesoslite.allocator.hierarchical import HierarchicalAllocator
from mesoslite.allocator.ssf import SSFPolicy
from mesoslite.ids import AgentId, FrameworkId
from mesoslite.resources import Resources, parse_resources


@dataclass(frozen=True)
class AgentProfile:
    count: int
    total: str = "cpus:16;mem:65536;disk:512000;ports:[31000-32000]"
    used_fraction: float = 0.5  # of each scalar; the rest is free


@dataclass(frozen=True)
class FrameworkProfile:
    count: int
    roles: int = 5
    task: str = "cpus:1;mem:2048"
    max_tasks: int = 80  # each framework holds 0..max_tasks tasks' worth
    filtered_fraction: float = 0.1  # of (framework, agent) pairs with a live filter
    suppressed_fraction: float = 0.05


class OrderOnlyDRF:
    """DRF through `order_*` alone: the re-sorting path of `HierarchicalAllocator`."""

    name = "drf-order-only"

    def __init__(self) -> None:
        self._drf = DRFPolicy()

    def order_roles(
        self, roles: Mapping[str, Resources], weights: Mapping[str, float], total: Resources
    ) -> list[str]:
        return self._drf.order_roles(roles, weights, total)

    def order_frameworks(
        self, frameworks: Mapping[FrameworkId, Resources], total: Resources
    ) -> list[FrameworkId]:
        return self._drf.order_frameworks(frameworks, total)


def build_view(agents: AgentProfile, frameworks: FrameworkProfile, seed: int = 1) -> ClusterView:
    rng = random.Random(seed)
    total = parse_resources(agents.total)
    used = Resources.of({n: total.scalar(n) * agents.used_fraction for n in total.scalars})
    agent_views = tuple(
        AgentView(
            AgentId(f"agent-{i:05}"), f"host{i}", total, total - used,
            {"rack": f"r{i % 20}", "zone": f"z{i % 4}"},
        )
        for i in range(agents.count)
    )
    task = parse_resources(frameworks.task)
    framework_views = []
    for i in range(frameworks.count):
        allocated = Resources.empty()
        for _ in range(rng.randint(0, frameworks.max_tasks)):
            allocated = allocated + task
        filters = {a.id: 1000.0 for a in agent_views if rng.random() < frameworks.filtered_fraction}
        framework_views.append(
            FrameworkView(
                FrameworkId(f"fw-{i:04}"),
                f"role{i % frameworks.roles}",
                allocated,
                suppressed=rng.random() < frameworks.suppressed_fraction,
                filters=filters,
                # A third of the frameworks prefer a rack (only `ssf` looks).
                locality=(f"rack:r{i % 20}",) if i % 3 == 0 else (),
            )
        )
    weights = {f"role{r}": 1.0 + r % 3 for r in range(frameworks.roles)}
    return ClusterView(agent_views, tuple(framework_views), weights, seed=seed)


def steady_view(
    view: ClusterView, changed: int, seed: int = 1
) -> tuple[ClusterView, list[AgentId]]:
    """`view` in a steady state: every agent's free resources offered or used (free empty)
    but `changed` agents' (added, or resources recovered since the last pass)."""
    ids = [a.id for a in view.agents]
    keep = set(random.Random(seed).sample(ids, min(changed, len(ids))))
    empty = Resources.empty()
    agents = tuple(a if a.id in keep else replace(a, free=empty) for a in view.agents)
    return replace(view, agents=agents), sorted(keep)


def time_pass(run: Callable[[], AllocationRound], repeat: int) -> tuple[float, float, int]:
    """Median wall and CPU milliseconds per pass (CPU: this process's own time, which a
    machine shared with other work inflates less), and the number of grants of a pass."""
    grants = len(run().grants)  # warm-up
    walls, cpus = [], []
    for _ in range(repeat):
        start, cpu = time.perf_counter(), time.process_time()
        run()
        walls.append((time.perf_counter() - start) * 1000)
        cpus.append((time.process_time() - cpu) * 1000)
    return statistics.median(walls), statistics.median(cpus), grants


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--policy", choices=["drf", "fair", "ssf", "drf-order-only", "all"], default="all"
    )
    parser.add_argument("--agents", default="1000,10000")
    parser.add_argument("--frameworks", default="10,100,1000")
    parser.add_argument(
        "--filtered",
        type=float,
        default=FrameworkProfile.filtered_fraction,
        help="the fraction of (framework, agent) pairs with a live filter (default %(default)s)",
    )
    parser.add_argument(
        "--changed",
        type=int,
        default=0,
        help="also time a steady state where only N agents have free resources: a full"
        " pass and an incremental one (allocate_agents) over those N",
    )
    args = parser.parse_args()
    policies: list[Policy] = []
    if args.policy in ("drf", "all"):
        policies.append(DRFPolicy())
    if args.policy in ("fair", "all"):
        policies.append(FairPolicy())
    if args.policy in ("ssf", "all"):
        policies.append(SSFPolicy())
    if args.policy in ("drf-order-only", "all"):
        policies.append(OrderOnlyDRF())
    agent_counts = [int(x) for x in args.agents.split(",")]
    framework_counts = [int(x) for x in args.frameworks.split(",")]
    print(
        f"{'policy':<16} {'pass':<12} {'agents':>7} {'frameworks':>10} {'grants':>7}"
        f" {'ms/pass':>9} {'cpu ms':>9}"
    )
    for policy in policies:
        for n_agents in agent_counts:
            for n_frameworks in framework_counts:
                view = build_view(
                    AgentProfile(n_agents),
                    FrameworkProfile(n_frameworks, filtered_fraction=args.filtered),
                )
                for kind, run in passes(HierarchicalAllocator(policy), view, args.changed):
                    ms, cpu, grants = time_pass(run, args.repeat)
                    print(
                        f"{policy.name:<16} {kind:<12} {n_agents:>7} {n_frameworks:>10}"
                        f" {grants:>7} {ms:>9.2f} {cpu:>9.2f}"
                    )


def passes(
    allocator: HierarchicalAllocator, view: ClusterView, changed: int
) -> list[tuple[str, Callable[[], AllocationRound]]]:
    """The passes to time: a full pass over `view`, and with `changed`, a full and an
    incremental pass over its steady state."""
    seeds = itertools.count(view.seed + 1)

    def cold() -> AllocationRound:
        # A new view each time, as the master makes (new tuple, new seed): no reuse of the
        # last pass's agent set-up or agent order, which only a repeated view gets.
        return allocator.allocate(replace(view, agents=tuple(view.agents), seed=next(seeds)), 0.0)

    out: list[tuple[str, Callable[[], AllocationRound]]] = [
        ("full", partial(allocator.allocate, view, 0.0)),
        ("full/cold", cold),
    ]
    if changed:
        steady, ids = steady_view(view, changed)
        out.append((f"full/{changed}", partial(allocator.allocate, steady, 0.0)))
        out.append((f"incr/{changed}", partial(allocator.allocate_agents, steady, 0.0, ids)))
    return out


if __name__ == "__main__":
    main()
