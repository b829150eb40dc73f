"""Simulator speed: simulated task launches per second of wall time (a script, not a test).

    python bench/bench_simulator.py [--agents 10000] [--frameworks 1000] [--tasks 1000000]
                                    [--allocator drf] [--profile]

The workload: every framework submits `tasks / frameworks` tasks of one of a few shapes at
time 0, all declaring demands (--mixed: half), lasting 30-120 virtual seconds; agents have 16 cpus
and 64 GB in 10 racks. Floor (issue #4): at least 10,000 launches per wall second.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats

from mesoslite.resources import parse_resources
from mesoslite.sim.engine import Simulation
from mesoslite.sim.trace import AgentGroup, ClusterSpec, FrameworkSpec, TaskGroup, WorkloadSpec

SHAPES = ["cpus:1;mem:2048", "cpus:2;mem:4096", "cpus:0.5;mem:1024", "cpus:4;mem:8192"]


def build(
    agents: int, frameworks: int, tasks: int, demands: bool = True
) -> tuple[ClusterSpec, WorkloadSpec]:
    racks = 10
    groups = tuple(
        AgentGroup(
            agents // racks, parse_resources("cpus:16;mem:65536"), {"rack": f"r{r}"}, f"r{r}"
        )
        for r in range(racks)
    )
    per = tasks // frameworks
    fws = tuple(
        FrameworkSpec(
            name=f"fw{i:04}",
            role=f"role{i % 10}",
            tasks=(
                TaskGroup(per, parse_resources(SHAPES[i % len(SHAPES)]), 30.0 + (i % 4) * 30),
            ),
            demands=demands or i % 2 == 0,
        )
        for i in range(frameworks)
    )
    return ClusterSpec(groups, allocation_interval_s=1.0), WorkloadSpec(fws)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=10_000)
    parser.add_argument("--frameworks", type=int, default=1_000)
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--allocator", default="drf")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--mixed", action="store_true", help="half the frameworks without demands")
    args = parser.parse_args()
    cluster, workload = build(args.agents, args.frameworks, args.tasks, not args.mixed)
    sim = Simulation(cluster, workload, args.allocator, sample_interval_s=10.0)
    if args.profile:
        profiler = cProfile.Profile()
        result = profiler.runcall(sim.run)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
    else:
        result = sim.run()
    print(
        f"allocator={args.allocator} agents={args.agents} frameworks={args.frameworks}"
        f" tasks={args.tasks} launched={result.launched} finished={result.finished}"
        f" passes={result.passes} makespan={result.makespan_s:.0f}s wall={result.wall_s:.1f}s"
        f" launches/s={result.launches_per_s:,.0f} jain={result.jain_index:.3f}"
        f" util={ {k: round(v, 3) for k, v in result.utilization.items()} }"
    )


if __name__ == "__main__":
    main()
