"""Jobs benchmark: the built-in jobs framework on a real local cluster.

    .venv/bin/python bench/bench_jobs.py [--instances 1000] [--agents 4] [--kills 10]
        [--poll-s 0.5] [--cli] [--profile]

Measures, in one run on this machine:
  0. the bare fork/exec rate (`subprocess.Popen(["true"]).wait()` N times, as
     bench_launch.py does), before the cluster starts: the rate the job is compared with;
  1. a batch job of N instances of `true`: wall time from `submit` to SUCCEEDED (its status
     polled every `--poll-s`; with --cli, `mesoslite job submit --wait` itself, its start
     included, as the side-by-side runs it), the rate in
     instances per second and its share of the bare rate (the jobs framework writes every
     launch and every status change to the registry first, in batches);
  2. the size of that job's registry document, and the master's and the agents' CPU
     seconds (the agents' include their tasks) during (1);
  3. a 3-instance service: the time from SIGKILL of an instance's process to its
     replacement running, over K kills (p50, max).
With --profile, the master runs under cProfile and its top functions are printed.

With --master-only, no daemons at all: the master's actor, its SQLite registry and the jobs
framework run in this process, and a stand-in agent on the actor's agent stream answers
every launch at once with RUNNING and FINISHED, `--batch` updates per message (as an agent's
status-update flush sends them). It measures the master's own CPU per instance (submit to
SUCCEEDED), free of the agents' spawning and of the machine's load; with --profile, its
top functions.
Prints a Markdown block to paste into bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
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

from mesoslite.allocator.loader import load_allocator
from mesoslite.clock import SystemClock
from mesoslite.jobs.model import InstanceState, JobState
from mesoslite.master.actor import CLOSE, Connection, MasterActor
from mesoslite.master.events import AckOnAgent, LaunchOnAgent
from mesoslite.master.jobs_port import new_jobs_framework
from mesoslite.master.registry.sqlite import SqliteRegistryStore
from mesoslite.master.state import MasterState
from mesoslite.model import AgentInfo, StatusSource, TaskState, TaskStatus
from mesoslite.resources import parse_resources
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


SPEC = """
name: many
type: batch
command: ["true"]
resources: {{cpus: 0.01, mem: 4}}
instances: {n}
"""


def submit_wait_cli(cluster: LocalCluster, spec: str) -> float:
    """`mesoslite job submit --wait` as a user runs it (its start included): wall seconds."""
    path = cluster.work_dir / "many.yaml"
    path.write_text(spec)
    cli = str(Path(sys.executable).with_name("mesoslite"))
    started = time.perf_counter()
    done = subprocess.run([cli, "job", "submit", "--wait", str(path)], env=cluster.cli_env(),
                          capture_output=True, text=True, timeout=600)
    wall = time.perf_counter() - started
    assert done.returncode == 0, done.stderr[-2000:]
    return wall


def batch(
    cluster: LocalCluster, n: int, poll_s: float, cli: bool = False
) -> tuple[float, float, float, int]:
    master, agents = [cluster.master_pid or 0], list(cluster.agent_pids)
    cpu0 = cpu_seconds(master), cpu_seconds(agents)
    with cluster.client() as c:
        started = time.perf_counter()
        if cli:
            wall = submit_wait_cli(cluster, SPEC.format(n=n))
        else:
            c.submit_job(SPEC.format(n=n))
        while not cli:
            view = c.job_status("many")
            if view.state.terminal:
                break
            time.sleep(poll_s)  # each status of a 1,000-instance job costs the master ~25 ms
        if not cli:
            wall = time.perf_counter() - started
        view = c.job_status("many")
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


async def master_only(n: int, batch: int, db: Path) -> tuple[float, float, int]:
    """(wall s, CPU s of this process, agent messages acknowledged) for one batch job of
    `n` instances on the in-process master (see the module docstring)."""
    state = MasterState(allocator=load_allocator("drf"), offer_timeout_s=30,
                        agent_reregister_timeout_s=10)
    actor = MasterActor(state, SqliteRegistryStore(db), SystemClock(), allocation_interval_s=0.2,
                        heartbeat_interval_s=3600, agent_ping_interval_s=3600)
    await actor.start()
    jobs = new_jobs_framework(actor, actor.clock, ("*",), 0)
    await jobs.start()
    conn = Connection()
    info = AgentInfo(hostname="h1", resources=parse_resources(f"cpus:{n};mem:{8 * n}"))
    agent_id = await actor.register_agent(info, [], conn)
    acks = 0

    async def agent() -> None:
        nonlocal acks
        while (item := await conn.queue.get()) is not CLOSE:
            acks += isinstance(item, AckOnAgent)
            if not isinstance(item, LaunchOnAgent):
                continue
            updates = [TaskStatus(t.task_id, item.framework_id, agent_id, st,
                                  source=StatusSource.AGENT, uuid=f"{st.name}{t.task_id}".encode(),
                                  exit_code=0 if st == TaskState.FINISHED else None)
                       for t in item.tasks for st in (TaskState.RUNNING, TaskState.FINISHED)]
            for i in range(0, len(updates), batch):
                part = updates[i:i + batch]
                await actor.run(lambda now, p=part: actor.state.status_updates(agent_id, p, now))
                await asyncio.sleep(0)

    player = asyncio.create_task(agent())
    cpu0, started = time.process_time(), time.perf_counter()
    await jobs.submit(f'name: many\ntype: batch\ncommand: "true"\n'
                      f'resources: {{cpus: 0.01, mem: 4}}\ninstances: {n}\n')
    while not jobs.core.get("many").state.terminal:  # not `status`: no view of 1,000
        await asyncio.sleep(0.01)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu0
    assert jobs.status("many").state == JobState.SUCCEEDED
    player.cancel()
    await jobs.stop()
    await actor.stop()
    return wall, cpu, acks


def main_master_only(args: argparse.Namespace) -> None:
    import cProfile
    import pstats

    with tempfile.TemporaryDirectory(prefix="bench-jobs-") as tmp:
        prof = cProfile.Profile() if args.profile else None
        if prof is not None:
            prof.enable()
        wall, cpu, acks = asyncio.run(master_only(args.instances, args.batch,
                                                  Path(tmp) / "r.sqlite"))
        if prof is not None:
            prof.disable()
            pstats.Stats(prof).sort_stats("tottime").print_stats(20)
    print(f"| in-process master, batch job of {args.instances} instances, {args.batch} "
          f"updates per agent message | {wall:.2f} s wall, {cpu:.2f} s CPU "
          f"({cpu / args.instances * 1e6:.0f} us per instance), {acks} ack messages |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--instances", type=int, default=1000)
    ap.add_argument("--agents", type=int, default=4)
    ap.add_argument("--kills", type=int, default=10)
    ap.add_argument("--poll-s", type=float, default=0.5)
    ap.add_argument("--cli", action="store_true",
                    help="submit with `mesoslite job submit --wait` (its start included)")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--master-only", action="store_true")
    ap.add_argument("--batch", type=int, default=20, help="with --master-only")
    args = ap.parse_args()
    if args.master_only:
        main_master_only(args)
        return
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
            wall, cpu, agents_cpu, size = batch(cluster, args.instances, args.poll_s, args.cli)
            recovery = service_recovery(cluster, args.kills, pids) if args.kills else []
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
          f"{agents_cpu:.2f} s ({cpu / args.instances * 1e3:.2f} / "
          f"{agents_cpu / args.instances * 1e3:.2f} ms per instance) |")
    print(f"| that job's registry document | {size / 1024:.0f} KiB |")
    if recovery:
        print(f"| service instance SIGKILLed to its replacement RUNNING, {len(recovery)} kills"
              f" | p50 {statistics.median(recovery) * 1000:.0f} ms, "
              f"max {max(recovery) * 1000:.0f} ms |")


if __name__ == "__main__":
    main()
