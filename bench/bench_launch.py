"""Launch benchmark: trivial tasks through a real local cluster, against bare fork/exec.

    .venv/bin/python bench/bench_launch.py [--tasks 2000] [--agents 4] [--runs 20] [--profile]
                                           [--tls] [--auth]

Measures, in one run on this machine:
  1. bare spawn rate: `subprocess.Popen(["true"]).wait()` in a loop (the floor of the floor);
  2. end-to-end rate: the example framework (`examples/run_n_tasks.py`) runs N `true` tasks on
     a local cluster of A agents, from its first accept to the last TASK_FINISHED;
  3. `mesoslite run -- true` wall time over R runs (p50, p95);
  4. where the time goes: CPU seconds used by the master, the agents and the framework
     during (2), and with `--profile` a cProfile of the master (top functions printed).
With `--tls`, (2) and (3) run twice, on a plain-text cluster and then on one with mutual TLS
(`LocalCluster(tls=True)`), so that the cost of TLS is read from one run. With `--auth` the
master has `--credentials` and every client (agents, the framework, `mesoslite run`)
authenticates: run it with and without to see what authentication costs.
Prints a Markdown block to paste into bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))

from run_n_tasks import RunNTasks  # noqa: E402

from mesoslite.scheduler_api import FrameworkInfo, SchedulerDriver, parse_resources  # noqa: E402
from mesoslite.security.credentials import hash_secret  # noqa: E402
from mesoslite.testing import LocalCluster  # noqa: E402
from mesoslite.transport import PLAIN, Security, use_client_credentials  # noqa: E402


def bare_spawn_rate(n: int = 1000) -> float:
    started = time.perf_counter()
    for _ in range(n):
        subprocess.Popen(["true"]).wait()
    return n / (time.perf_counter() - started)


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            t = psutil.Process(pid).cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
        except psutil.NoSuchProcess:
            pass
    return total


async def end_to_end(
    address: str, count: int, security: Security = PLAIN, auth: dict[str, str] | None = None
) -> tuple[float, int, float]:
    framework = RunNTasks(count, "true", parse_resources("cpus:0.01;mem:4"), prefix="bench")
    me = psutil.Process()
    cpu_before = sum(me.cpu_times()[:2])
    info = FrameworkInfo(name="bench", principal=auth["principal"] if auth else "")
    secret = auth["secret"] if auth else ""
    async with SchedulerDriver(
        framework, info, master=address, security=security, secret=secret
    ):
        await asyncio.wait_for(framework.done.wait(), 600)
    cpu = sum(me.cpu_times()[:2]) - cpu_before
    assert framework.first_accept_at is not None and framework.last_terminal_at is not None
    elapsed = framework.last_terminal_at - framework.first_accept_at
    return elapsed, framework.finished_count(), cpu


def run_latency(cluster: LocalCluster, runs: int, auth: dict[str, str] | None) -> list[float]:
    exe = Path(sys.executable).with_name("mesoslite")
    env = cluster.cli_env()  # MESOSLITE_MASTER, and MESOSLITE_TLS_* with TLS
    if auth:
        env.update(MESOSLITE_PRINCIPAL=auth["principal"], MESOSLITE_SECRET_FILE=auth["file"])
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        out = subprocess.run([str(exe), "run", "--", "true"], env=env, capture_output=True)
        times.append(time.perf_counter() - started)
        if out.returncode != 0:
            raise SystemExit(f"mesoslite run failed: {out.stderr.decode()}")
    return times


def call_times(cluster: LocalCluster, calls: int, connects: int) -> tuple[float, float]:
    """Median seconds of a GetAgents call on a warm channel, and of a new channel's
    connect (TCP, and the TLS handshake with TLS) plus its first call."""
    from mesoslite._proto.v1 import operator_pb2, operator_pb2_grpc
    from mesoslite.transport import open_channel

    request = operator_pb2.GetAgentsRequest()

    def one(channel: object) -> float:
        started = time.perf_counter()
        operator_pb2_grpc.OperatorStub(channel).GetAgents(request, timeout=10)
        return time.perf_counter() - started

    with open_channel(cluster.master_address, cluster.security, aio=False) as ch:
        one(ch)
        warm = [one(ch) for _ in range(calls)]
    cold = []
    for _ in range(connects):
        with open_channel(cluster.master_address, cluster.security, aio=False) as ch:
            cold.append(one(ch))
    return percentile(warm, 50), percentile(cold, 50)


def auth_setup(tmp: Path) -> tuple[dict[str, str], list[str], list[str]]:
    """Credentials for one principal used by every client; the daemons' flags."""
    secret = "bench-secret"
    (tmp / "secret").write_text(secret + "\n")
    (tmp / "credentials.yaml").write_text(f"bench: {hash_secret(secret)}\n")
    auth = {"principal": "bench", "secret": secret, "file": str(tmp / "secret")}
    agent_args = ["--principal", "bench", "--secret-file", auth["file"]]
    return auth, ["--credentials", str(tmp / "credentials.yaml")], agent_args


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def measure(args: argparse.Namespace, tls: bool) -> tuple[float, float, float, float, float]:
    """(2) to (4) on a fresh cluster; returns (tasks/s, run p50 s, run p95 s, warm call s,
    connect + first call s)."""
    with tempfile.TemporaryDirectory(prefix="mesoslite-bench-") as tmp:
        prof = Path(tmp) / "master.prof"
        master_prefix = ("-m", "cProfile", "-o", str(prof)) if args.profile else ()
        auth, master_args, agent_args = auth_setup(Path(tmp)) if args.auth else (None, [], [])
        cluster = LocalCluster(
            Path(tmp),
            agents=args.agents,
            agent_resources="cpus:16;mem:16384;disk:10000;ports:[31000-32000]",
            master_python_args=master_prefix,
            tls=tls,
            master_args=master_args,
            agent_args=agent_args,
        )
        if auth:  # this process's own polling of the master
            use_client_credentials(auth["principal"], auth["secret"])
        label = ("TLS" if tls else "plain") + (" + auth" if auth else "")
        with cluster:
            pids = {"master": [cluster.master_pid], "agents": list(cluster.agent_pids)}
            before = {k: cpu_seconds(v) for k, v in pids.items()}
            elapsed, finished, fw_cpu = asyncio.run(
                end_to_end(cluster.master_address, args.tasks, cluster.security, auth)
            )
            cpu = {k: cpu_seconds(v) - before[k] for k, v in pids.items()}
            rate = finished / elapsed
            print(
                f"[{label}] end to end: {finished}/{args.tasks} tasks in {elapsed:.2f}s = "
                f"{rate:.0f}/s",
                flush=True,
            )
            print(
                "[{label}] cpu seconds during the run: master {master:.2f}, agents {agents:.2f} "
                "(incl. their tasks), framework {fw:.2f}".format(**cpu, fw=fw_cpu, label=label)
            )
            times = run_latency(cluster, args.runs, auth)
            p50, p95 = percentile(times, 50), percentile(times, 95)
            print(f"[{label}] mesoslite run -- true: p50 {p50 * 1000:.0f} ms, "
                  f"p95 {p95 * 1000:.0f} ms", flush=True)
            warm, cold = call_times(cluster, calls=500, connects=50)
            print(f"[{label}] GetAgents median: {warm * 1e3:.2f} ms on a warm channel, "
                  f"{cold * 1e3:.2f} ms with a new channel's connect", flush=True)
        if args.profile and prof.exists():
            print(f"\n[{label}] master profile (top 25 by own time):")
            pstats.Stats(str(prof)).sort_stats("tottime").print_stats(25)
    return rate, p50, p95, warm, cold


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--agents", type=int, default=4)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--profile", action="store_true", help="cProfile the master")
    parser.add_argument(
        "--tls", action="store_true", help="also measure a cluster with mutual TLS, after plain"
    )
    parser.add_argument("--auth", action="store_true", help="authentication on (--credentials)")
    args = parser.parse_args()

    bare = bare_spawn_rate()
    print(f"bare Popen(['true']).wait(): {bare:.0f}/s", flush=True)
    results = {mode: measure(args, mode == "TLS") for mode in (
        ("plain", "TLS") if args.tls else ("plain",)
    )}
    machine = f"{platform.machine()}, {psutil.cpu_count()} cpus, Python {platform.python_version()}"
    print("\n| figure | value |\n| --- | --- |")
    print(f"| bare spawn of `true` | {bare:.0f}/s |")
    for mode, (rate, p50, p95, warm, cold) in results.items():
        tag = f" ({mode})" if args.tls else ""
        e2e = f"end to end, {args.tasks} `true` tasks, {args.agents} agents{tag}"
        print(f"| {e2e} | {rate:.0f}/s ({rate / bare:.0%} of bare) |")
        latency = f"{p50 * 1000:.0f} ms / {p95 * 1000:.0f} ms"
        print(f"| `mesoslite run -- true` p50 / p95 ({args.runs} runs){tag} | {latency} |")
        calls = f"{warm * 1e3:.2f} ms / {cold * 1e3:.2f} ms"
        print(f"| GetAgents median, warm channel / new channel{tag} | {calls} |")
    print(f"machine: {machine}; date {time.strftime('%Y-%m-%d')}")


if __name__ == "__main__":
    main()
