"""`mesoslite run` latency: wall time of R runs of `mesoslite run -- true` on a local cluster.

Usage: python bench/bench_run_latency.py [--runs 20] [--command 'true']

Prints p50 and p95. It measures the whole CLI: start-up, subscribe, offer, launch, the output
streams and the exit, against one agent, so that `run`'s own path is what is timed.
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


def run_latency(address: str, runs: int, command: list[str]) -> list[float]:
    exe = Path(sys.executable).with_name("mesoslite")
    env = {**os.environ, "MESOSLITE_MASTER": address}
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        out = subprocess.run([str(exe), "run", "--", *command], env=env, capture_output=True)
        times.append(time.perf_counter() - started)
        if out.returncode != 0:
            raise SystemExit(f"mesoslite run failed: {out.stderr.decode()}")
    return times


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--command", default="true", help="the task's command line")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mesoslite-bench-") as tmp:
        with LocalCluster(Path(tmp), agents=1) as cluster:
            run_latency(cluster.master_address, 2, shlex.split(args.command))  # warm up
            times = run_latency(cluster.master_address, args.runs, shlex.split(args.command))
    p50, p95 = percentile(times, 50), percentile(times, 95)
    print(f"mesoslite run -- {args.command}: {args.runs} runs, "
          f"p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms")


if __name__ == "__main__":
    main()
