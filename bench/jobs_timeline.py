"""Where a batch job's wall time goes, on a real local cluster (issue 15).

    .venv/bin/python bench/jobs_timeline.py [--instances 1000] [--agents 4] [--runs 1]

Starts what `mesoslite local --agents N` starts (a master and N agents with the default
resources), submits one batch job (`command: "true"`, cpus 0.05, mem 16) with the real
`mesoslite job submit --wait` as a subprocess, and records:
  - in the master (this file is run as the master's interpreter wrapper, see `_trace_master`):
    timestamps of the submit, every offer event (offers, tasks placed), accept, decline,
    status-update batch (size, terminal ones), registry write (duration), acknowledgement,
    allocation pass and `job status` call (duration);
  - per process CPU (utime+stime from /proc, children included for the agents) over the run;
  - the CLI's own wall time from start to exit.
Prints a timeline summary in Markdown: the phases, the gaps, and the CPU per instance.
With MESOSLITE_JOBS_PROFILE=PATH the master also runs under cProfile (written at exit).
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TRACE_ENV = "MESOSLITE_JOBS_TRACE"
PROFILE_ENV = "MESOSLITE_JOBS_PROFILE"
TICKS = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------------------- in the master


def _trace_master() -> None:
    """Run as `python jobs_timeline.py -m mesoslite.master.main ...`: wrap the jobs
    framework's and the master's hot calls with timestamps, then run the master."""
    import runpy

    from mesoslite.jobs import framework as fw
    from mesoslite.master import actor, jobs_port, jobs_service

    events: list[tuple[float, str, float, float]] = []  # (t, kind, count, duration)
    out = os.environ[TRACE_ENV]

    def wrap_async(cls: Any, name: str, kind: str, count: Any) -> None:
        orig = getattr(cls, name)

        async def wrapped(self: Any, *a: Any, **k: Any) -> Any:
            t0 = time.time()
            try:
                return await orig(self, *a, **k)
            finally:
                events.append((t0, kind, count(*a), time.time() - t0))

        setattr(cls, name, wrapped)

    def wrap_sync(cls: Any, name: str, kind: str, count: Any, method: bool = True) -> None:
        """Records the CPU time (this thread) of the call as its duration."""
        orig = getattr(cls, name)

        def wrapped(*a: Any, **k: Any) -> Any:
            t0, c0 = time.time(), time.thread_time()
            try:
                return orig(*a, **k)
            finally:
                events.append((t0, kind, count(*a[1:] if method else a),
                               time.thread_time() - c0))

        setattr(cls, name, wrapped)

    one = lambda *a: 1  # noqa: E731
    JF, Port = fw.JobsFramework, jobs_port.InProcessMasterPort
    wrap_async(JF, "submit", "submit", one)
    wrap_async(JF, "on_offers", "offers", lambda offers: len(offers))
    wrap_async(JF, "on_updates", "updates", lambda s: len(s))
    wrap_async(Port, "accept", "accept", lambda oid, tasks: len(tasks))
    wrap_async(Port, "decline", "decline", lambda ids, refuse: len(ids))
    wrap_async(Port, "persist", "persist", lambda put, rm: len(put))
    wrap_async(Port, "acknowledge", "ack", lambda s: len(s))
    wrap_async(Port, "revive", "revive", one)
    wrap_async(Port, "suppress", "suppress", one)
    wrap_sync(actor.MasterActor, "_allocate", "allocate", lambda: 1)
    # CPU of the master's and the jobs framework's own steps (`cpu:` kinds).
    from mesoslite.jobs import convert, core
    from mesoslite.master import state

    many = lambda *a: len(a[-2]) if len(a) > 1 else 1  # noqa: E731
    wrap_sync(core.JobsCore, "on_updates", "cpu:jobs.on_updates", lambda s, now: len(s))
    wrap_sync(core.JobsCore, "place", "cpu:jobs.place", lambda o, now: len(o))
    wrap_sync(fw, "job_to_doc", "cpu:jobs.job_to_doc", one, method=False)
    wrap_sync(fw.JobsFramework, "status", "cpu:jobs.status_view", one)
    wrap_sync(convert, "job_to_pb", "cpu:jobs.job_to_pb", one, method=False)
    if hasattr(convert, "summary_to_pb"):
        wrap_sync(convert, "summary_to_pb", "cpu:jobs.summary_to_pb", one, method=False)
        from mesoslite.jobs import watch

        wrap_sync(watch, "summarise", "cpu:jobs.summarise", one, method=False)
    wrap_sync(state.MasterState, "status_updates", "cpu:master.status_updates", many)
    wrap_sync(state.MasterState, "accept", "cpu:master.accept", one)
    wrap_sync(state.MasterState, "allocate", "cpu:master.allocate", one)
    wrap_sync(state.MasterState, "acknowledge", "cpu:master.acknowledge", one)
    wrap_async(jobs_service.JobsServicer, "Status", "status", lambda req, ctx: 1)
    orig_updates = fw.JobsFramework.on_updates

    async def updates(self: Any, statuses: list[Any]) -> None:
        done = sum(1 for s in statuses if s.state.terminal)
        if done:
            events.append((time.time(), "terminal", done, 0.0))
        await orig_updates(self, statuses)

    fw.JobsFramework.on_updates = updates  # type: ignore[method-assign]

    def dump() -> None:
        Path(out).write_text(json.dumps(events))

    atexit.register(dump)
    prof_path = os.environ.get(PROFILE_ENV)
    sys.argv = [sys.argv[2], *sys.argv[3:]]
    if prof_path:
        import cProfile

        prof = cProfile.Profile()
        atexit.register(lambda: prof.dump_stats(prof_path))
        prof.enable()
    runpy.run_module("mesoslite.master.main", run_name="__main__", alter_sys=True)


# ---------------------------------------------------------------------------- the driver


def proc_cpu(pid: int, children: bool = False) -> float:
    try:
        f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # utime stime cutime cstime are fields 14-17 (1-based); after ")" they are 12-15.
    t = int(f[11]) + int(f[12]) + ((int(f[13]) + int(f[14])) if children else 0)
    return t / TICKS


def bare_rate(n: int) -> float:
    t = time.perf_counter()
    for _ in range(n):
        subprocess.run(["true"])
    return n / (time.perf_counter() - t)


def run_once(cluster: Any, n: int, tmp: Path, k: int) -> dict[str, Any]:
    spec = tmp / f"job{k}.yaml"
    spec.write_text(f'name: tl-{k}\ntype: batch\ncommand: "true"\ninstances: {n}\n'
                    f"resources: {{cpus: 0.05, mem: 16}}\n")
    master, agents = cluster.master_pid, list(cluster.agent_pids)
    c0 = proc_cpu(master), sum(proc_cpu(a, True) for a in agents)
    env = {**os.environ, "MESOSLITE_MASTER": cluster.master_address}
    cli = [str(Path(sys.executable).with_name("mesoslite")), "job", "submit", "--wait",
           str(spec)]
    t0 = time.time()
    p = subprocess.Popen(cli, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ru = os.wait4(p.pid, 0)[2]
    t1 = time.time()
    p.returncode = 0
    assert p.stderr is not None
    err = p.stderr.read().decode()
    assert "SUCCEEDED" in err, err[-500:]
    return {"t0": t0, "t1": t1, "master_cpu": proc_cpu(master) - c0[0],
            "agents_cpu": sum(proc_cpu(a, True) for a in agents) - c0[1],
            "cli_cpu": ru.ru_utime + ru.ru_stime}


def summarise(n: int, run: dict[str, Any], events: list[list[Any]]) -> list[str]:
    t0, t1 = run["t0"], run["t1"]
    ev = [e for e in events if t0 <= e[0] <= t1]

    def of(kind: str) -> list[list[Any]]:
        return [e for e in ev if e[1] == kind]

    def at(e: list[Any]) -> str:
        return f"{(e[0] - t0) * 1000:.0f}"

    wall = t1 - t0
    acc, term, upd, per = of("accept"), of("terminal"), of("updates"), of("persist")
    st = of("status")
    lines = [f"| submit to `--wait` exit | {wall * 1000:.0f} ms ({n / wall:.0f}/s) |"]
    if of("submit"):
        s = of("submit")[0]
        lines.append(f"| CLI start to submit arrives / submit answered | {at(s)} / "
                     f"{(s[0] + s[3] - t0) * 1000:.0f} ms |")
    if acc:
        tasks = [e[2] for e in acc]
        lines.append(f"| first accept / last accept | {at(acc[0])} / {at(acc[-1])} ms "
                     f"({len(acc)} accepts, tasks per accept p50 {statistics.median(tasks):.0f},"
                     f" max {max(tasks)}) |")
    if term:
        done = 0
        marks = {}
        for e in term:
            done += e[2]
            for q in (0.1, 0.5, 0.9, 1.0):
                if done >= q * n and q not in marks:
                    marks[q] = at(e)
        lines.append(f"| terminal updates at 10/50/90/100 % | {marks.get(0.1)} / "
                     f"{marks.get(0.5)} / {marks.get(0.9)} / {marks.get(1.0)} ms |")
        lines.append(f"| last terminal update to `--wait` exit | "
                     f"{(t1 - term[-1][0]) * 1000:.0f} ms |")
    if upd:
        sizes = [e[2] for e in upd]
        lines.append(f"| update batches to the framework | {len(upd)}, p50 "
                     f"{statistics.median(sizes):.0f} updates |")
    if per:
        lines.append(f"| registry writes (jobs) | {len(per)}, p50 "
                     f"{statistics.median(e[3] for e in per) * 1000:.1f} ms, sum "
                     f"{sum(e[3] for e in per) * 1000:.0f} ms |")
    if st:
        lines.append(f"| status calls by `--wait` | {len(st)}, p50 "
                     f"{statistics.median(e[3] for e in st) * 1000:.1f} ms |")
    al = of("allocate")
    lines.append(f"| allocation passes | {len(al)}, sum {sum(e[3] for e in al) * 1000:.0f} ms;"
                 f" offers events {len(of('offers'))}, declines {len(of('decline'))} |")
    cpu: dict[str, float] = {}
    for e in ev:
        if e[1].startswith("cpu:"):
            cpu[e[1][4:]] = cpu.get(e[1][4:], 0.0) + e[3]
    lines.append("| master CPU in its steps (thread CPU) | " + ", ".join(
        f"{k} {v * 1000:.0f} ms" for k, v in sorted(cpu.items(), key=lambda kv: -kv[1])) + " |")
    lines.append(f"| CPU: master / agents (with tasks) / CLI | {run['master_cpu']:.2f} / "
                 f"{run['agents_cpu']:.2f} / {run['cli_cpu']:.2f} s "
                 f"({run['master_cpu'] / n * 1e3:.2f} / {run['agents_cpu'] / n * 1e3:.2f} ms "
                 f"per instance) |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--instances", type=int, default=1000)
    ap.add_argument("--agents", type=int, default=4)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--dump", type=Path, default=None, help="write the master's events here")
    args = ap.parse_args()
    from mesoslite.local.base import DEFAULT_AGENT_RESOURCES
    from mesoslite.testing import LocalCluster

    load = os.getloadavg()
    bare = bare_rate(args.instances)
    with tempfile.TemporaryDirectory(prefix="jobs-tl-") as d:
        tmp = Path(d)
        os.environ[TRACE_ENV] = str(tmp / "trace.json")
        runs = []
        with LocalCluster(tmp / "c", agents=args.agents, agent_resources=DEFAULT_AGENT_RESOURCES,
                          master_python_args=(__file__,)) as cluster:
            for k in range(args.runs):
                runs.append(run_once(cluster, args.instances, tmp, k))
        events = json.loads((tmp / "trace.json").read_text())
        if args.dump:
            args.dump.write_text(json.dumps({"runs": runs, "events": events}))
    print(f"load {load[0]:.2f} {load[1]:.2f}; bare fork/exec {bare:.0f}/s; "
          f"{args.instances} instances, {args.agents} agents")
    for k, run in enumerate(runs):
        wall = run["t1"] - run["t0"]
        print(f"\nrun {k}: {args.instances / wall:.0f}/s = "
              f"{args.instances / wall / bare:.2f} of bare\n")
        print("| what | figure |\n| --- | --- |")
        print("\n".join(summarise(args.instances, run, events)))


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "-m":
        _trace_master()
    else:
        main()
