"""Simulator speed and memory: simulated task launches per second of wall time and peak RSS
(a script, not a test).

    python bench/bench_simulator.py [--agents 10000] [--frameworks 1000] [--tasks 1000000]
                                    [--allocator drf] [--mixed | --whole] [--profile]
    python bench/bench_simulator.py --memory 100000,1000000 [--whole] [--agents 10000]

The workload: every framework submits `tasks / frameworks` tasks of one of a few shapes at
time 0, all declaring demands (--mixed: half; --whole: none, so offers carry whole agents,
as in Mesos), lasting 30-120 virtual seconds; agents have 16 cpus and 64 GB in 10 racks.
Floor (issue #4): at least 10,000 launches per wall second. Issue #15: peak memory flat as
the run grows (--memory runs each size in a fresh process and reports its peak RSS).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import resource
import subprocess
import sys
import time
from dataclasses import replace

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
    offers = parser.add_mutually_exclusive_group()
    offers.add_argument("--mixed", action="store_true", help="half the frameworks without demands")
    offers.add_argument("--whole", action="store_true", help="no demands: whole-agent offers")
    parser.add_argument(
        "--memory", metavar="TASKS,...", help="peak RSS of one fresh run per task count"
    )
    args = parser.parse_args()
    if args.memory:
        memory(args)
        return
    cluster, workload = build(args.agents, args.frameworks, args.tasks, not args.mixed)
    if args.whole:
        workload = WorkloadSpec(tuple(replace(f, demands=False) for f in workload.frameworks))
    sim = Simulation(cluster, workload, args.allocator, sample_interval_s=10.0)
    cpu = time.process_time()
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
        f" peak_rss_mb={peak_rss_mb():.0f} cpu={time.process_time() - cpu:.1f}s"
    )


def peak_rss_mb() -> float:
    """This process's peak resident set so far (Linux reports `ru_maxrss` in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def memory(args: argparse.Namespace) -> None:
    """One fresh process per task count, so that each peak is its own run's."""
    for tasks in (int(n) for n in args.memory.split(",")):
        argv = [
            sys.executable, __file__, "--agents", str(args.agents), "--frameworks",
            str(args.frameworks), "--tasks", str(tasks), "--allocator", args.allocator,
        ]
        argv += ["--whole"] if args.whole else ["--mixed"] if args.mixed else []
        done = subprocess.run(argv, capture_output=True, text=True, check=True)
        print(done.stdout.strip(), flush=True)


if __name__ == "__main__":
    main()
