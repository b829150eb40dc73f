"""`mesoslite run` latency: wall time of R runs of `mesoslite run -- true` on a local cluster.

Usage: python bench/bench_run_latency.py [--runs 20] [--command 'true'] [--compare-src DIR]

Prints p50 and p95. It measures the whole CLI: start-up, subscribe, offer, launch, the output
streams and the exit, against one agent, so that `run`'s own path is what is timed. With
`--compare-src` (e.g. `git archive main src | tar -x -C /tmp/base` then `/tmp/base/src`) a
second cluster and CLI run that source tree (through PYTHONPATH), and runs alternate between
the two, so that the machine's load weighs on both alike.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mesoslite.testing import LocalCluster

WARM_UP_RUNS = 2


def run_once(env: dict[str, str], command: list[str]) -> float:
    exe = Path(sys.executable).with_name("mesoslite")
    started = time.perf_counter()
    out = subprocess.run([str(exe), "run", "--", *command], env=env, capture_output=True)
    if out.returncode != 0:
        raise SystemExit(f"mesoslite run failed: {out.stderr.decode()}")
    return time.perf_counter() - started


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def start_cluster(work: Path, src: str) -> tuple[LocalCluster, dict[str, str]]:
    """A one-agent cluster whose daemons (and CLI) run `src` if given, else this tree."""
    env = {**os.environ}
    if src:
        env["PYTHONPATH"] = src
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)  # the daemons inherit it
    try:
        cluster = LocalCluster(work, agents=1).start()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return cluster, {**env, "MESOSLITE_MASTER": cluster.master_address}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--command", default="true", help="the task's command line")
    parser.add_argument("--compare-src", default="", help="another src/ tree to run alongside")
    args = parser.parse_args()
    command = shlex.split(args.command)
    sources = {"this tree": ""}
    if args.compare_src:
        sources[args.compare_src] = args.compare_src
    times: dict[str, list[float]] = {name: [] for name in sources}
    with tempfile.TemporaryDirectory(prefix="mesoslite-bench-") as tmp:
        clusters = {
            name: start_cluster(Path(tmp) / str(i), src)
            for i, (name, src) in enumerate(sources.items())
        }
        try:
            for i in range(WARM_UP_RUNS + args.runs):
                for name, (_, env) in clusters.items():
                    elapsed = run_once(env, command)
                    if i >= WARM_UP_RUNS:
                        times[name].append(elapsed)
        finally:
            for cluster, _ in clusters.values():
                cluster.stop()
    for name, values in times.items():
        p50, p95 = percentile(values, 50), percentile(values, 95)
        print(f"{name}: mesoslite run -- {args.command}: {args.runs} runs, "
              f"p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms")


if __name__ == "__main__":
    main()
