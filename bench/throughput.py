"""Throughput of issue 15's two paths, with each process's CPU per task (issue 15, masterpath).

    .venv/bin/python bench/throughput.py [--count 1000] [--agents 4] [--runs 2]
        [--paths job,sdk] [--sdk-profile PATH] [--master-profile PATH] [--sdk-counts]

Starts what `mesoslite local --agents N` starts (a master and N agents with the default
resources), then `--runs` times, alternating: one batch job of `--count` instances of `true`
(`mesoslite job submit --wait`, cpus 0.05, mem 16: the side-by-side's spec) and the SDK
example (`examples/run_n_tasks.py --count N`, timed including its own start), each as a
subprocess. Prints per run: the rate and its share of bare fork/exec (`subprocess.run(['true'])`
x N, measured before each run), and the CPU (utime+stime from /proc) per task of the master
(with its threads: the event loop's and grpc's, by name), the agents (with their tasks, task
processes and live descendants such as the task supervisor) and the client process (the CLI
or the SDK framework).

For an A/B against another checkout, run this file with `PYTHONPATH=OTHER/src`: every process
it starts inherits it. `--sdk-profile PATH` runs the SDK example, `--master-profile PATH` the
master, under cProfile (their figures then include the profiler's cost; the master's profile
covers its whole life, so use it with one `--paths`). `--sdk-counts` runs the SDK example
through this file, which counts (without timing anything) the events the driver dispatched,
the updates in them and its calls to the master by method, and prints them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TICKS = os.sysconf("SC_CLK_TCK")
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "run_n_tasks.py"


def _count_sdk() -> None:
    """Run as `python throughput.py --count-sdk EXAMPLE ARGS...`: count the driver's events
    (by type), updates and calls (by method), print them at exit, run the example."""
    import atexit
    import runpy

    from mesoslite.scheduler_api import driver, driver_calls

    counts: dict[str, int] = {}

    def bump(key: str, n: int = 1) -> None:
        counts[key] = counts.get(key, 0) + n

    dispatch, unary = driver.SchedulerDriver._dispatch, driver_calls.DriverCalls._unary

    async def counted_dispatch(self: Any, event: Any) -> None:
        bump(f"event {event.type}")
        bump("updates", len(event.update.statuses))
        await dispatch(self, event)

    async def counted_unary(self: Any, method: str, request: Any) -> Any:
        bump(f"call {method}")
        return await unary(self, method, request)

    driver.SchedulerDriver._dispatch = counted_dispatch  # type: ignore[method-assign]
    driver_calls.DriverCalls._unary = counted_unary  # type: ignore[method-assign]
    atexit.register(lambda: print("SDK-COUNTS", json.dumps(counts, sort_keys=True)))
    sys.argv = sys.argv[2:]
    runpy.run_path(sys.argv[0], run_name="__main__")


def _stat(path: Path) -> tuple[str, float]:
    """(comm, utime+stime in s) of /proc/PID[/task/TID]/stat."""
    text = path.read_text()
    comm = text[text.index("(") + 1 : text.rindex(")")]
    f = text.rsplit(")", 1)[1].split()
    return comm, (int(f[11]) + int(f[12])) / TICKS


def proc_cpu(pid: int, children: bool = False) -> float:
    try:
        f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    t = int(f[11]) + int(f[12]) + ((int(f[13]) + int(f[14])) if children else 0)
    return t / TICKS


def tree_cpu(pid: int) -> float:
    """CPU of `pid`, of its reaped children, and of its live descendants likewise (the
    agent's long-lived task supervisor, whose tasks it reaps)."""
    total = proc_cpu(pid, True)
    try:
        kids = [int(k) for t in Path(f"/proc/{pid}/task").iterdir()
                for k in (t / "children").read_text().split()]
    except OSError:
        return total
    return total + sum(tree_cpu(k) for k in kids)


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU per thread name (threads of one name summed)."""
    out: dict[str, float] = {}
    for t in Path(f"/proc/{pid}/task").iterdir():
        try:
            comm, cpu = _stat(t / "stat")
        except (OSError, ValueError):
            continue
        out[comm] = out.get(comm, 0.0) + cpu
    return out


def bare_rate(n: int) -> float:
    t = time.perf_counter()
    for _ in range(n):
        subprocess.run(["true"])
    return n / (time.perf_counter() - t)


def measure(cluster: Any, argv: list[str], env: dict[str, str]) -> dict[str, Any]:
    master, agents = cluster.master_pid, list(cluster.agent_pids)
    m0, a0, th0 = proc_cpu(master), sum(tree_cpu(a) for a in agents), thread_cpu(master)
    t0 = time.perf_counter()
    p = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    assert p.stdout is not None
    out = p.stdout.read().decode(errors="replace")
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise SystemExit(f"{argv} exited {p.returncode}:\n{out[-2000:]}")
    # Let the master finish what the client's exit started (acks, teardown) before reading.
    time.sleep(0.3)
    th1 = thread_cpu(master)
    return {
        "wall": wall,
        "master": proc_cpu(master) - m0,
        "threads": {k: v - th0.get(k, 0.0) for k, v in th1.items() if v - th0.get(k, 0.0) > 0},
        "agents": sum(tree_cpu(a) for a in agents) - a0,
        "client": ru.ru_utime + ru.ru_stime,
        "out": out,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--agents", type=int, default=4)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--paths", default="job,sdk", help="which of job,sdk to run, in order")
    ap.add_argument("--sdk-profile", type=Path, default=None)
    ap.add_argument("--master-profile", type=Path, default=None)
    ap.add_argument("--sdk-counts", action="store_true")
    args = ap.parse_args()
    from mesoslite import __file__ as pkg
    from mesoslite.local.base import DEFAULT_AGENT_RESOURCES
    from mesoslite.testing import LocalCluster

    n = args.count
    print(f"mesoslite from {Path(pkg).parent}; {n} tasks, {args.agents} agents; "
          f"load {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("| run | path | rate | bare | share | CPU ms per task: master (threads) / agents "
          "(with tasks) / client |")
    print("| --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory(prefix="throughput-") as d:
        tmp = Path(d)
        prof = ("-m", "cProfile", "-o", str(args.master_profile)) if args.master_profile else ()
        with LocalCluster(tmp / "c", agents=args.agents, agent_resources=DEFAULT_AGENT_RESOURCES,
                          master_python_args=prof) as cluster:
            env = {**os.environ, "MESOSLITE_MASTER": cluster.master_address}
            cli = str(Path(sys.executable).with_name("mesoslite"))
            for k in range(args.runs):
                spec = tmp / f"job{k}.yaml"
                spec.write_text(f'name: tp-{k}\ntype: batch\ncommand: "true"\ninstances: {n}\n'
                                "resources: {cpus: 0.05, mem: 16}\n")
                sdk = [sys.executable, str(EXAMPLE), "--count", str(n), "--name", f"tp-{k}"]
                if args.sdk_profile:
                    sdk[1:1] = ["-m", "cProfile", "-o", str(args.sdk_profile)]
                elif args.sdk_counts:
                    sdk[1:1] = [__file__, "--count-sdk"]
                argvs = {"job": [cli, "job", "submit", "--wait", str(spec)], "sdk": sdk}
                for path in args.paths.split(","):
                    argv = argvs[path]
                    bare = bare_rate(n)
                    r = measure(cluster, argv, env)
                    rate = n / r["wall"]
                    threads = ", ".join(f"{name} {cpu / n * 1e3:.2f}" for name, cpu in
                                        sorted(r["threads"].items(), key=lambda kv: -kv[1]))
                    print(f"| {k} | {path} | {rate:.0f}/s | {bare:.0f}/s | {rate / bare:.2f} | "
                          f"{r['master'] / n * 1e3:.2f} ({threads}) / "
                          f"{r['agents'] / n * 1e3:.2f} / {r['client'] / n * 1e3:.2f} "
                          f"({r['client']:.2f} s) |", flush=True)
                    for line in r["out"].splitlines():
                        if line.startswith("SDK-COUNTS"):
                            print(f"|   | {line} |")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--count-sdk":
        _count_sdk()
    else:
        main()
