"""How many trivial tasks per second the agent's launcher alone runs (a script, not a test).

    python bench/bench_agent_launch.py [--tasks N] [--shell] [--full] [--unwrapped]
        [--launcher wrapper|supervisor] [--profile N]

Launches N `true` tasks through `TaskLauncher` (sandbox, output files, Popen in a new
session, pidfd reaping) on one asyncio loop, LAUNCH_CHUNK per loop iteration like the agent
does, and compares with the bare fork/exec rate (`os.posix_spawn` + `waitpid` of /bin/true,
one at a time) measured in the same run.

With `--full`, each task also pays what the agent adds around the launcher (issue 15): its
checkpoint (`CheckpointStore`: launch record, RUNNING and FINISHED updates, their
acknowledgements, removal) and its cgroups (`detect_isolator`: made or taken from the pool,
OOM check, given back), in the order `AgentActor` does them. With `--unwrapped`, tasks run
without the wrapper process (what the wrapper costs: issue 15). With `--launcher supervisor`
(the agent's default, so this bench's too), tasks are children of the agent's task supervisor
(`agent/supervisor.py`), a chunk per exchange, one chunk in flight where the launcher has
`start_many` (as `LaunchQueue` does); its CPU is read from `/proc/PID/schedstat` and shown
apart (not our child). With `--profile N`, one more run (not counted) under cProfile on
process time: the agent's functions with the N largest own times, then the mesoslite ones by
cumulative time.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

try:  # the agent's checkpoint log (issue 15), else the directory per task it replaced
    from mesoslite.agent.checkpoint_log import CheckpointLog as CheckpointStore
except ImportError:
    from mesoslite.agent.checkpoint import CheckpointStore  # type: ignore[assignment]
from mesoslite.agent.config import AgentConfig
from mesoslite.agent.constants import LAUNCH_CHUNK
from mesoslite.agent.isolation import detect_isolator
from mesoslite.agent.launcher import LaunchedTask, TaskLauncher
from mesoslite.agent.status_updates import new_update_uuid
from mesoslite.ids import AgentId, FrameworkId, TaskId
from mesoslite.model import CommandSpec, StatusSource, TaskSpec, TaskState, TaskStatus
from mesoslite.resources import parse_resources


def bare_rate(n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        pid = os.posix_spawn("/bin/true", ["true"], os.environ)
        os.waitpid(pid, 0)
    return n / (time.perf_counter() - start)


def _status(launched: LaunchedTask, state: TaskState) -> TaskStatus:
    return TaskStatus(
        launched.task_id,
        launched.framework_id,
        AgentId("bench"),
        state,
        "",
        "",
        StatusSource.AGENT,
        new_update_uuid(),
        time.time(),
    )


Sent = tuple[FrameworkId, list[TaskSpec], list[tuple[str, ...]], Any]


class AgentPath:
    """The agent's per-task work around the launcher: checkpoints and cgroups."""

    def __init__(self, work_dir: Path) -> None:
        self.store = CheckpointStore(work_dir)
        self.isolator = detect_isolator(work_dir)
        self.flush: Callable[[], None] = getattr(self.store, "flush", lambda: None)

    def send(self, launcher: TaskLauncher, fid: FrameworkId, tasks: list[TaskSpec]) -> Sent:
        """A chunk sent, as `LaunchQueue.launch_some` does it (its results may come later:
        `finish`, after the next chunk is sent, as the agent does with the supervisor)."""
        sinks = [self.store.prepare_launch(fid, t.task_id) for t in tasks]
        self.flush()
        cgroups = [self.isolator.prepare(fid, t.task_id, t.resources) for t in tasks]
        items = [(fid, t, e, cg) for t, e, cg in zip(tasks, sinks, cgroups, strict=True)]
        start = getattr(launcher, "start_many", None) or getattr(launcher, "launch_many", None)
        done = start(items) if start is not None else [launcher.launch(*i) for i in items]
        return fid, tasks, cgroups, done

    def finish(self, sent: Sent) -> None:
        fid, tasks, cgroups, done = sent
        if callable(done):
            done = done()
        for task, cg, launched in zip(tasks, cgroups, done, strict=True):
            assert isinstance(launched, LaunchedTask), launched
            self.store.save_task(task, fid, launched.pid, launched.start_ticks, list(cg))
            running = _status(launched, TaskState.RUNNING)
            self.store.append_update(running)
            self.flush()  # before the update is sent
            self.store.append_ack(fid, task.task_id, running.uuid)

    def exited(self, launched: LaunchedTask) -> None:
        self.isolator.memory_limit_hit(launched.cgroups)
        self.isolator.remove(launched.cgroups)
        done = _status(launched, TaskState.FINISHED)
        self.store.append_update(done)
        self.flush()
        self.store.append_ack(launched.framework_id, launched.task_id, done.uuid)
        self.store.remove(launched.framework_id, launched.task_id)


async def launcher_rate(
    n: int,
    shell: bool,
    work_dir: Path,
    full: bool = False,
    unwrapped: bool = False,
    kind: str = "wrapper",
) -> tuple[float, float, float, float]:  # rate, agent, children, supervisor
    """Tasks per second, and CPU ms per task spent by the agent, by its children (wrappers
    and tasks; or the supervisor's reaped children: the tasks) and by the supervisor (the
    CPU figures hold up on a loaded machine; the rate does not)."""
    done = asyncio.get_running_loop().create_future()
    exited = 0
    path = AgentPath(work_dir) if full else None

    def on_exit(launched: LaunchedTask, code: int) -> None:
        nonlocal exited
        assert code == 0, code
        if path is not None:
            path.exited(launched)
        exited += 1
        if exited == n and not done.done():
            done.set_result(None)

    launcher = (
        TaskLauncher(work_dir, on_exit, kind=kind)
        if kind != "wrapper"
        else TaskLauncher(work_dir, on_exit)
    )
    mode = getattr(launcher, "supervisor", None)
    sup = mode.ensure() if mode is not None else None  # started before the clock starts
    launcher.agent_id = "bench"
    if unwrapped:
        launcher.wrapper = None
    command = CommandSpec.of_shell("true") if shell else CommandSpec.of_argv(["/bin/true"])
    resources = parse_resources("cpus:0.01;mem:1")
    tasks = [TaskSpec(TaskId(f"t{i}"), command, resources) for i in range(n)]
    fid = FrameworkId("fw-bench")
    start = time.perf_counter()
    cpu0, t0, s0 = time.process_time(), os.times(), _cpu_s(sup.pid if sup else 0)
    sent: Sent | None = None
    for i in range(0, n, LAUNCH_CHUNK):
        if path is not None:
            chunk = path.send(launcher, fid, tasks[i : i + LAUNCH_CHUNK])
            if sent is not None:
                path.finish(sent)  # the chunk before, while this one starts
            sent = chunk
            if not callable(sent[3]):
                path.finish(sent)
                sent = None
        elif hasattr(launcher, "launch_many"):
            launcher.launch_many([(fid, t, None, ()) for t in tasks[i : i + LAUNCH_CHUNK]])
        else:
            for task in tasks[i : i + LAUNCH_CHUNK]:
                launcher.launch(fid, task)
        if path is not None:
            path.flush()
        await asyncio.sleep(0)  # let exits be reaped between chunks, as the agent does
    if path is not None and sent is not None:
        path.finish(sent)
    await done
    elapsed = time.perf_counter() - start
    s1 = _cpu_s(sup.pid if sup else 0)
    sup_s, sup_children_s = s1[0] - s0[0], s1[1] - s0[1]
    launcher.close()
    if path is not None:
        path.flush()
        path.isolator.close()
    cpu, t1 = time.process_time() - cpu0, os.times()
    children = t1.children_user + t1.children_system - t0.children_user - t0.children_system
    children += sup_children_s  # the tasks, whoever's children they were
    return n / elapsed, 1000 * cpu / n, 1000 * children / n, 1000 * sup_s / n


def _cpu_s(pid: int | None) -> tuple[float, float]:
    """The CPU of `pid` (`/proc/PID/schedstat`, in ns: finer than the stat's ticks) and that
    of its reaped children (cutime + cstime, ticks: the tasks), in seconds (0 for none)."""
    if not pid:
        return 0.0, 0.0
    with open(f"/proc/{pid}/schedstat", "rb") as f:
        own = int(f.read().split()[0]) / 1e9
    with open(f"/proc/{pid}/stat", "rb") as f:
        data = f.read()
    tick = os.sysconf("SC_CLK_TCK")
    v = [int(x) / tick for x in data[data.rindex(b")") + 2 :].split()[13:15]]
    return own, v[0] + v[1]


# The agent's own default (`agent/config.py`), so that the bench measures what agents run.
DEFAULT_LAUNCHER = AgentConfig.__dataclass_fields__["task_launcher"].default


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument(
        "--shell", action="store_true", help="run `sh -c true` instead of /bin/true"
    )
    parser.add_argument(
        "--full", action="store_true", help="add the agent's checkpoints and cgroups per task"
    )
    parser.add_argument("--unwrapped", action="store_true", help="run tasks without the wrapper")
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="print N rows")
    parser.add_argument(
        "--launcher",
        choices=("wrapper", "supervisor"),
        default=DEFAULT_LAUNCHER,
        help=f"the agent's --task-launcher (default: the agent's, {DEFAULT_LAUNCHER})",
    )
    args = parser.parse_args()
    bare = bare_rate(min(args.tasks, 1000))
    with tempfile.TemporaryDirectory(prefix="bench-agent-") as tmp:

        def run(i: int) -> tuple[float, float, float, float]:
            return asyncio.run(
                launcher_rate(
                    args.tasks,
                    args.shell,
                    Path(tmp) / str(i),
                    args.full,
                    args.unwrapped,
                    args.launcher,
                )
            )

        rates = [run(i) for i in range(3)]
        if args.profile:
            profile = cProfile.Profile(time.process_time)
            profile.runcall(run, 3)
    best = max(r[0] for r in rates)
    agent_ms = min(r[1] for r in rates)
    child_ms = min(r[2] for r in rates)
    sup_ms = min(r[3] for r in rates)
    kind = "sh -c true" if args.shell else "/bin/true"
    if args.full:
        kind += " with checkpoints and cgroups"
    if args.unwrapped:
        kind += ", unwrapped"
    if args.launcher != "wrapper":
        kind += f", {args.launcher}"
    print(f"bare posix_spawn+waitpid of /bin/true: {bare:.0f}/s")
    print(
        f"TaskLauncher, {args.tasks} x {kind}: {best:.0f} tasks/s best of 3 "
        f"({', '.join(f'{r[0]:.0f}' for r in rates)}); {best / bare:.0%} of bare"
    )
    print(
        f"CPU per task (least of 3): agent {agent_ms:.2f} ms, its children {child_ms:.2f} ms, "
        f"supervisor {sup_ms:.2f} ms"
    )
    print(f"load average {os.getloadavg()[0]:.1f}")
    if args.profile:
        stats = pstats.Stats(profile)
        stats.sort_stats("tottime").print_stats(args.profile)
        stats.sort_stats("cumulative").print_stats("mesoslite", args.profile)


if __name__ == "__main__":
    main()
