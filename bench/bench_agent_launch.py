"""How many trivial tasks per second the agent's launcher alone runs (a script, not a test).

    python bench/bench_agent_launch.py [--tasks N] [--shell]

Launches N `true` tasks through `TaskLauncher` (sandbox, output files, Popen in a new
session, pidfd reaping) on one asyncio loop, LAUNCH_CHUNK per loop iteration like the agent
does, and compares with the bare fork/exec rate (`os.posix_spawn` + `waitpid` of /bin/true,
one at a time) measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

from mesoslite.agent.constants import LAUNCH_CHUNK
from mesoslite.agent.launcher import LaunchedTask, TaskLauncher
from mesoslite.ids import FrameworkId, TaskId
from mesoslite.model import CommandSpec, TaskSpec
from mesoslite.resources import parse_resources


def bare_rate(n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        pid = os.posix_spawn("/bin/true", ["true"], os.environ)
        os.waitpid(pid, 0)
    return n / (time.perf_counter() - start)


async def launcher_rate(n: int, shell: bool, work_dir: Path) -> float:
    done = asyncio.get_running_loop().create_future()
    exited = 0

    def on_exit(launched: LaunchedTask, code: int) -> None:
        nonlocal exited
        assert code == 0, code
        exited += 1
        if exited == n and not done.done():
            done.set_result(None)

    launcher = TaskLauncher(work_dir, on_exit)
    launcher.agent_id = "bench"
    command = CommandSpec.of_shell("true") if shell else CommandSpec.of_argv(["/bin/true"])
    resources = parse_resources("cpus:0.01;mem:1")
    tasks = [TaskSpec(TaskId(f"t{i}"), command, resources) for i in range(n)]
    fid = FrameworkId("fw-bench")
    start = time.perf_counter()
    for i in range(0, n, LAUNCH_CHUNK):
        for task in tasks[i : i + LAUNCH_CHUNK]:
            launcher.launch(fid, task)
        await asyncio.sleep(0)  # let exits be reaped between chunks, as the agent does
    await done
    elapsed = time.perf_counter() - start
    launcher.close()
    return n / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument(
        "--shell", action="store_true", help="run `sh -c true` instead of /bin/true"
    )
    args = parser.parse_args()
    bare = bare_rate(min(args.tasks, 1000))
    with tempfile.TemporaryDirectory(prefix="bench-agent-") as tmp:
        rates = [
            asyncio.run(launcher_rate(args.tasks, args.shell, Path(tmp) / str(i))) for i in range(3)
        ]
    best = max(rates)
    kind = "sh -c true" if args.shell else "/bin/true"
    print(f"bare posix_spawn+waitpid of /bin/true: {bare:.0f}/s")
    print(
        f"TaskLauncher, {args.tasks} x {kind}: {best:.0f} tasks/s best of 3 "
        f"({', '.join(f'{r:.0f}' for r in rates)}); {best / bare:.0%} of bare"
    )


if __name__ == "__main__":
    main()
