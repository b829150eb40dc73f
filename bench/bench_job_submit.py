"""`mesoslite job submit [--wait]`: the fast path (`fastjob.py`) against the click/gRPC path.

Usage: python bench/bench_job_submit.py [--runs 4] [--instances 1000] [--start-runs 20]
       [--agents 4] [--paths fast,slow]

On a cluster like `mesoslite local --agents 4` (its default agent resources), alternating
the paths run by run so that the machine's load weighs on both alike (`slow` is
`MESOSLITE_NO_FASTRUN=1`):

- the CLI's start alone: `job submit` of a one-instance job without `--wait`, p50 over
  `--start-runs` runs of each path (after a warm-up run of each), and the master's CPU
  during those runs, per run (`/proc`, 10 ms ticks: the fast path's master checks the spec
  the click path checks in the CLI, and runs the one-instance job as the other does);
- the throughput measure of issue 15: `job submit --wait` of one batch job of
  `--instances` instances of `true` (cpus 0.05, mem 16), `--runs` runs of each path.

Each command's wall time, the time from its last line on stderr (`NAME: SUCCEEDED`) to its
exit, and its own CPU (user + system, of the launcher's sh and the Python
it execs, and any child it waited for) are what `/usr/bin/time -f '%e %U %S'` reports, taken
here from `wait4`'s rusage at microsecond resolution (`time` prints 10 ms steps, the fast
path's whole CPU). Each job is removed after its run. Prints the load average before and
after, the commit, and one line per run.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mesoslite.testing import LocalCluster

PATH_ENV = {"fast": {}, "slow": {"MESOSLITE_NO_FASTRUN": "1"}}
SPEC = """name: {name}
type: batch
command: "true"
instances: {instances}
resources: {{cpus: 0.05, mem: 16}}
"""
MESOSLITE = str(Path(sys.executable).with_name("mesoslite"))


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, float, float]:
    """(wall s, user+sys CPU s, s from its last line on stderr to its exit) of `argv`, from
    its `wait4` rusage; the last is how long `--wait` takes to exit once it has the outcome."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    lines, last_at = [], started
    for line in proc.stderr:  # to EOF: the process has exited (or closed stderr)
        lines.append(line)
        last_at = time.perf_counter()
    _, status, usage = os.wait4(proc.pid, 0)
    ended = time.perf_counter()
    proc.returncode = code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({code}): {b''.join(lines).decode()[-2000:]}")
    return ended - started, usage.ru_utime + usage.ru_stime, ended - last_at


def cpu_of(pid: int | None) -> float:
    """A process's user+system CPU seconds so far (`/proc/PID/stat`, 10 ms ticks)."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def p50(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[(len(ordered) - 1) // 2]


def remove(env: dict[str, str], name: str) -> None:
    subprocess.run([MESOSLITE, "job", "remove", name], env=env, capture_output=True, timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--start-runs", type=int, default=20)
    parser.add_argument("--agents", type=int, default=4)
    parser.add_argument("--paths", default="fast,slow")
    args = parser.parse_args()
    paths = args.paths.split(",")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, cwd=Path(__file__).parent).stdout.strip()
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    print(f"commit {commit}, {now}, load {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        with LocalCluster(tmp / "cluster", agents=args.agents) as cluster:
            base = {**os.environ, "MESOSLITE_MASTER": cluster.master_address,
                    "MESOSLITE_MASTER_HTTP": cluster.http_url()[len("http://"):].rstrip("/"),
                    "XDG_CACHE_HOME": str(tmp / "cache")}
            envs = {p: {**base, **PATH_ENV[p]} for p in paths}
            start: dict[str, list[tuple[float, float, float]]] = {p: [] for p in paths}
            master_cpu = dict.fromkeys(paths, 0.0)  # during the start runs, by path
            for i in range(args.start_runs + 1):
                for p in paths:
                    name = f"tiny-{p}-{i}"
                    spec = tmp / f"{name}.yaml"
                    spec.write_text(SPEC.format(name=name, instances=1))
                    before = cpu_of(cluster.master_pid)
                    got = timed([MESOSLITE, "job", "submit", str(spec)], envs[p])
                    if i:  # the first run of each path warms the caches up
                        start[p].append(got)
                        master_cpu[p] += cpu_of(cluster.master_pid) - before
            for p in paths:
                walls, cpus = [w for w, _, _ in start[p]], [c for _, c, _ in start[p]]
                print(f"start  {p}: `job submit` (1 instance, no --wait), p50 of {len(walls)}: "
                      f"wall {p50(walls) * 1000:.1f} ms, CLI CPU {p50(cpus) * 1000:.1f} ms "
                      f"(min wall {min(walls) * 1000:.1f} ms); the master's CPU during these "
                      f"runs {master_cpu[p] / len(walls) * 1000:.1f} ms per run")
            for i in range(args.runs):
                for p in paths:
                    name = f"big-{p}-{i}"
                    spec = tmp / f"{name}.yaml"
                    spec.write_text(SPEC.format(name=name, instances=args.instances))
                    time.sleep(1.0)  # the agents' cleanup of the last run settles
                    load = os.getloadavg()[0]
                    wall, cpu, tail = timed([MESOSLITE, "job", "submit", "--wait", str(spec)],
                                            envs[p])
                    print(f"wait   {p}: `job submit --wait` of {args.instances}: "
                          f"wall {wall:.2f} s ({args.instances / wall:.0f}/s), "
                          f"CLI CPU {cpu * 1000:.1f} ms, last line to exit {tail * 1000:.1f} ms, "
                          f"load {load:.1f}", flush=True)
                    remove(envs[p], name)
    print(f"load after {os.getloadavg()}")


if __name__ == "__main__":
    main()
