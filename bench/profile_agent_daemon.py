"""Where a real agent daemon's CPU goes per task (a script, not a test; issue 15).

    MESOSLITE_AGENT_TASK_LAUNCHER=supervisor python bench/profile_agent_daemon.py \
        [--instances 1000] [--rows 40]

A local cluster (master with its jobs framework) and one agent, the agent under cProfile
(`-m cProfile`, wall clock: its profile is where its time goes, idle waits aside). One batch
job of N instances of `true` (cpus 0.05, mem 16) is submitted with `mesoslite job submit
--wait`; then the agent is stopped (SIGTERM, so that cProfile writes its file) and its
functions with the largest own times, then the mesoslite ones by cumulative time, are
printed, with the agent's CPU seconds (psutil, before the stop) per instance.
"""

from __future__ import annotations

import argparse
import os
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from mesoslite.testing.local_cluster import LocalCluster


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--instances", type=int, default=1000)
    ap.add_argument("--rows", type=int, default=40)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="prof-agent-") as tmp:
        prof = Path(tmp) / "agent.prof"
        with LocalCluster(
            Path(tmp) / "c",
            agents=0,
            agent_resources="cpus:64;mem:65536",
            master_args=("--allocation-interval-s", "0.2"),
        ) as cluster:
            daemon = cluster._agent_daemon(0)
            daemon.argv[1:1] = ["-m", "cProfile", "-o", str(prof)]
            cluster.agents.append(daemon)
            cluster._agent_ids.append("")
            cluster._start_agent(0)
            job = Path(tmp) / "job.yaml"
            job.write_text(
                f'name: prof\ntype: batch\ncommand: "true"\ninstances: {args.instances}\n'
                "resources: {cpus: 0.05, mem: 16}\n"
            )
            agent = psutil.Process(daemon.pid)
            cpu0 = sum(agent.cpu_times()[:2])
            start = time.perf_counter()
            subprocess.run(
                [
                    str(Path(sys.executable).with_name("mesoslite")),
                    "job",
                    "submit",
                    "--wait",
                    str(job),
                ],
                env=cluster.cli_env(),
                check=True,
                stdout=subprocess.DEVNULL,
            )
            wall = time.perf_counter() - start
            cpu = sum(agent.cpu_times()[:2]) - cpu0
        print(
            f"{args.instances} instances in {wall:.2f} s; agent CPU "
            f"{cpu * 1000 / args.instances:.2f} ms per instance; "
            f"load average {os.getloadavg()[0]:.1f}"
        )
        stats = pstats.Stats(str(prof))
        stats.sort_stats("tottime").print_stats(args.rows)
        stats.sort_stats("cumulative").print_stats("mesoslite", args.rows)


if __name__ == "__main__":
    main()
