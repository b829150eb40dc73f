"""`mesoslite run` latency: wall time of R runs of `mesoslite run -- true` on a local cluster.

Usage: python bench/bench_run_latency.py [--runs 20] [--command 'true'] [--compare-src DIR]
       [--paths fast,slow] [--profile] [--gap 0.2]

Prints p50 and p95. It measures the whole CLI: start-up, subscribe, offer, launch, the output
streams and the exit, against one agent, so that `run`'s own path is what is timed.
`--paths` times the fast path (`mesoslite/fastrun.py` to `POST /run`, the default) and the
click/gRPC path (`MESOSLITE_NO_FASTRUN=1`) alternately on the same cluster. `--profile` adds
where the fast path's time goes: the interpreter's start (with `site` and, as the launcher
runs it, without), the client's imports, the launcher's sh, the request itself (the same
call in this process: the master's and the agent's share), and a bare fork/exec of the
command, each as a p50 over the same number of runs. With
`--compare-src` (e.g. `git archive main src | tar -x -C /tmp/base` then `/tmp/base/src`) a
second cluster and CLI run that source tree (through PYTHONPATH), and runs alternate between
the two, so that the machine's load weighs on both alike. Its CLI is started as its own
install would start it: its `scripts/mesoslite` launcher without `site` if it has one, else
the console script pip generates for an entry point (which imports `re`).
`--gap S` sleeps S seconds before each run, as a person typing commands does: back-to-back
runs keep the machine warm and hide costs that only a quiet machine pays (a cgroup v1 join
through `cgroup.procs` waits for an RCU grace period, 5-15 ms, unless the machine is busy).
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


PATH_ENV = {"fast": {}, "slow": {"MESOSLITE_NO_FASTRUN": "1"}}


# pip's console script for `mesoslite = "mesoslite.fastrun:main"` (before the launcher).
PIP_CONSOLE_SCRIPT = """#!{python}
# -*- coding: utf-8 -*-
import re
import sys
from mesoslite.fastrun import main
if __name__ == '__main__':
    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])
    sys.exit(main())
"""


def cli_for(src: str, work: Path) -> list[str]:
    """The `mesoslite` command to time: this install's, or `src`'s as its install runs it."""
    if not src:
        return [str(Path(sys.executable).with_name("mesoslite"))]
    launcher = Path(src).parent / "scripts" / "mesoslite"
    if launcher.exists():
        return [sys.executable, "-S", str(launcher)]
    script = work / "mesoslite"
    script.write_text(PIP_CONSOLE_SCRIPT.format(python=sys.executable))
    script.chmod(0o755)
    return [str(script)]


def run_once(cli: list[str], env: dict[str, str], command: list[str]) -> float:
    started = time.perf_counter()
    out = subprocess.run([*cli, "run", "--", *command], env=env, capture_output=True)
    if out.returncode != 0:
        raise SystemExit(f"mesoslite run failed: {out.stderr.decode()}")
    return time.perf_counter() - started


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def start_cluster(work: Path, src: str) -> tuple[LocalCluster, dict[str, str], list[str]]:
    """A one-agent cluster whose daemons (and CLI) run `src` if given, else this tree; its
    CLI's environment and command."""
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
    http = cluster.http_url()[len("http://"):].rstrip("/")
    env = {**env, "MESOSLITE_MASTER": cluster.master_address, "MESOSLITE_MASTER_HTTP": http}
    return cluster, env, cli_for(src, work)


def timed(argv: list[str], env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(argv, env=env, capture_output=True, check=True)
    return time.perf_counter() - started


def profile(env: dict[str, str], command: list[str], runs: int) -> dict[str, float]:
    """p50 seconds of each part of a fast `mesoslite run` (see the module docstring)."""
    from mesoslite.fastrun import parse_run
    from mesoslite.fastrun_http import run_on_master

    py = sys.executable
    import mesoslite

    home = str(Path(mesoslite.__file__).parents[1])
    imports = (f"import sys; sys.path.append({home!r}); "
               "import mesoslite.fastrun, mesoslite.fastrun_http")
    parts: dict[str, list[float]] = {"interpreter start with site (python -c pass)": [],
                                     "interpreter start without site (python -S -c pass)": [],
                                     "+ client imports, without site (fastrun, fastrun_http)": [],
                                     "sh start (the launcher's sh half runs first: sh -c :)": [],
                                     "request in process (master + agent + task)": [],
                                     "bare fork/exec of the command": []}
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        for _ in range(runs):
            values = list(parts.values())
            values[0].append(timed([py, "-c", "pass"]))
            values[1].append(timed([py, "-S", "-c", "pass"]))
            values[2].append(timed([py, "-S", "-c", imports]))
            values[3].append(timed(["/bin/sh", "-c", ":"]))
            parsed = parse_run(["run", "--", *command], env["MESOSLITE_MASTER"])
            master, request = parsed or ("", {})
            started = time.perf_counter()
            if run_on_master(master, request) != 0:
                raise SystemExit("the in-process fast run failed (or fell back)")
            values[4].append(time.perf_counter() - started)
            values[5].append(timed(command))
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return {name: percentile(v, 50) for name, v in parts.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--command", default="true", help="the task's command line")
    parser.add_argument("--compare-src", default="", help="another src/ tree to run alongside")
    parser.add_argument("--paths", default="fast", help="fast, slow or fast,slow")
    parser.add_argument("--profile", action="store_true", help="where the fast path's time goes")
    parser.add_argument("--gap", type=float, default=0.0, help="seconds of sleep before each run")
    args = parser.parse_args()
    command = shlex.split(args.command)
    paths = [p for p in args.paths.split(",") if p]
    if not 0 <= args.gap <= 60:
        parser.error(f"--gap: 0 to 60 seconds, got {args.gap}")
    if not paths or any(p not in PATH_ENV for p in paths):
        parser.error(f"--paths: fast, slow or both, got {args.paths!r}")
    sources = {"this tree": ""}
    if args.compare_src:
        sources[args.compare_src] = args.compare_src
    times: dict[str, list[float]] = {
        f"{name} ({path})": [] for name in sources for path in paths
    }
    parts: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="mesoslite-bench-") as tmp:
        clusters = {
            name: start_cluster(Path(tmp) / str(i), src)
            for i, (name, src) in enumerate(sources.items())
        }
        try:
            for i in range(WARM_UP_RUNS + args.runs):
                for name, (_, env, cli) in clusters.items():
                    for path in paths:
                        time.sleep(args.gap)
                        elapsed = run_once(cli, {**env, **PATH_ENV[path]}, command)
                        if i >= WARM_UP_RUNS:
                            times[f"{name} ({path})"].append(elapsed)
            if args.profile:
                parts = profile(clusters["this tree"][1], command, args.runs)
        finally:
            for cluster, _, _ in clusters.values():
                cluster.stop()
    for name, values in times.items():
        p50, p95 = percentile(values, 50), percentile(values, 95)
        print(f"{name}: mesoslite run -- {args.command}: {args.runs} runs, "
              f"p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms")
    for part, seconds in parts.items():
        print(f"  profile p50: {part}: {seconds * 1000:.1f} ms")


if __name__ == "__main__":
    main()
