"""Jobs benchmark: the built-in jobs framework on a real local cluster.

    .venv/bin/python bench/bench_jobs.py [--instances 1000] [--agents 4] [--kills 10]
        [--poll-s 0.5] [--profile]

Measures, in one run on this machine:
  0. the bare fork/exec rate (`subprocess.Popen(["true"]).wait()` N times, as
     bench_launch.py does), before the cluster starts: the rate the job is compared with;
  1. a batch job of N instances of `true`: wall time from `submit` to SUCCEEDED (its status
     polled every `--poll-s`, as `job submit --wait` does every 0.5 s), the rate in
     instances per second and its share of the bare rate (the jobs framework writes every
     launch and every status change to the registry first, in batches);
  2. the size of that job's registry document, and the master's and the agents' CPU
     seconds (the agents' include their tasks) during (1);
  3. a 3-instance service: the time from SIGKILL of an instance's process to its
     replacement running, over K kills (p50, max).
With --profile, the master runs under cProfile and its top functions are printed.
Prints a Markdown block to paste into bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from mesoslite.jobs.model import InstanceState, JobState
from mesoslite.testing import LocalCluster, assert_eventually


def bare_spawn_rate(n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        subprocess.Popen(["true"]).wait()
    return n / (time.perf_counter() - started)


def cpu_seconds(pids: list[int]) -> float:
    """CPU of these processes and their children that ended (tasks the agents reaped)."""
    total = 0.0
    for pid in pids:
        t = psutil.Process(pid).cpu_times()
        total += t.user + t.system + t.children_user + t.children_system
    return total


def batch(cluster: LocalCluster, n: int, poll_s: float) -> tuple[float, float, float, int]:
    master, agents = [cluster.master_pid or 0], list(cluster.agent_pids)
    cpu0 = cpu_seconds(master), cpu_seconds(agents)
    with cluster.client() as c:
        started = time.perf_counter()
        c.submit_job(f"""
name: many
type: batch
command: ["true"]
resources: {{cpus: 0.01, mem: 4}}
instances: {n}
""")
        while True:
            view = c.job_status("many")
            if view.state.terminal:
                break
            time.sleep(poll_s)  # each status of a 1,000-instance job costs the master ~25 ms
        wall = time.perf_counter() - started
    assert view.state == JobState.SUCCEEDED, (view.state, view.message)
    cpu, agents_cpu = cpu_seconds(master) - cpu0[0], cpu_seconds(agents) - cpu0[1]
    db = sqlite3.connect(cluster.work_dir / "master" / "registry.sqlite")
    query = "SELECT length(doc) FROM objects WHERE kind='jobs' AND key='many'"
    (size,) = db.execute(query).fetchone()
    db.close()
    return wall, cpu, agents_cpu, int(size)


def service_recovery(cluster: LocalCluster, kills: int, pid_dir: Path) -> list[float]:
    with cluster.client() as c:
        c.submit_job(f"""
name: svc
type: service
command: 'echo $$ > {pid_dir}/$MESOSLITE_JOB_INSTANCE.$MESOSLITE_JOB_ATTEMPT; exec sleep 600'
resources: {{cpus: 0.1, mem: 16}}
instances: 3
retries: {{backoff_s: 0.1}}
""")

    def running() -> list[tuple[int, int]]:
        with cluster.client() as c:
            v = c.job_status("svc")
        out = [(i.index, i.attempt) for i in v.instances if i.state == InstanceState.RUNNING]
        assert len(out) == 3
        return out

    times = []
    for k in range(kills):
        index, attempt = assert_eventually(running, timeout_s=30)[k % 3]
        pid_file = pid_dir / f"{index}.{attempt}"
        assert_eventually(lambda f=pid_file: f.exists() and f.read_text().strip(), timeout_s=10)
        t0 = time.perf_counter()
        os.kill(int(pid_file.read_text()), signal.SIGKILL)
        nxt = pid_dir / f"{index}.{attempt + 1}"

        def back(f: Path = nxt, want: tuple[int, int] = (index, attempt + 1)) -> bool:
            return f.exists() and want in running()

        assert_eventually(back, timeout_s=30, interval_s=0.01)
        times.append(time.perf_counter() - t0)
        time.sleep(0.5)  # the instance ran a moment: the next kill is not a crash loop
    with cluster.client() as c:
        c.kill_job("svc")
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--instances", type=int, default=1000)
    ap.add_argument("--agents", type=int, default=4)
    ap.add_argument("--kills", type=int, default=10)
    ap.add_argument("--poll-s", type=float, default=0.5)
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()
    load = os.getloadavg()[0]
    bare = bare_spawn_rate(args.instances)
    with tempfile.TemporaryDirectory(prefix="bench-jobs-") as tmp:
        pids = Path(tmp) / "pids"
        pids.mkdir()
        prof = Path(tmp) / "master.prof"
        with LocalCluster(Path(tmp) / "c", agents=args.agents,
                          agent_resources="cpus:8;mem:8192",
                          master_args=("--allocation-interval-s", "0.2"),
                          master_python_args=("-m", "cProfile", "-o", str(prof))
                          if args.profile else ()) as cluster:
            wall, cpu, agents_cpu, size = batch(cluster, args.instances, args.poll_s)
            recovery = service_recovery(cluster, args.kills, pids)
        if args.profile:
            import pstats

            pstats.Stats(str(prof)).sort_stats("tottime").print_stats(25)
    print(f"### Jobs ({time.strftime('%Y-%m-%d')}, {platform.node()}, "
          f"{os.cpu_count()} cores, Python {platform.python_version()})\n")
    print(f"`{' '.join([os.path.basename(sys.executable), *sys.argv])}`\n")
    rate = args.instances / wall
    print(f"load average at the start {load:.2f}, at the end {os.getloadavg()[0]:.2f}\n")
    print("| measure | figure |\n| --- | --- |")
    print(f"| bare fork/exec of `true` ({args.instances}), same run | {bare:.0f}/s |")
    print(f"| batch job of {args.instances} `true` instances on {args.agents} agents, "
          f"submit to SUCCEEDED | {wall:.2f} s ({rate:.0f} instances/s, "
          f"{rate / bare:.2f} of bare) |")
    print(f"| master CPU during it / agents' (with their tasks) | {cpu:.2f} s / "
          f"{agents_cpu:.2f} s |")
    print(f"| that job's registry document | {size / 1024:.0f} KiB |")
    print(f"| service instance SIGKILLed to its replacement RUNNING, {len(recovery)} kills | "
          f"p50 {statistics.median(recovery) * 1000:.0f} ms, "
          f"max {max(recovery) * 1000:.0f} ms |")


if __name__ == "__main__":
    main()
