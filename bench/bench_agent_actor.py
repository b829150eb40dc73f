"""The agent's whole per-task CPU through `AgentActor` (a script, not a test; issue 15).

    python bench/bench_agent_actor.py [--tasks N] [--launcher wrapper|supervisor]
        [--profile N]

`bench_agent_launch.py` times the launcher with the checkpoint and cgroup work the agent adds
around it; this runs the agent itself: `AgentActor` with its `AgentState`, status updates,
checkpoint log, cgroups, launch queue and launcher, and a master stand-in that turns each
update message into its protobuf (`master_link.outgoing_to_pb`, as the real link does before
it writes) and acknowledges every update at once. N `/bin/true` tasks (cpus 0.01, mem 1) are
launched in one `LaunchTasks`; the figures are the agent's process CPU per task
(`time.process_time`), the supervisor's (`/proc/PID/stat`) and the tasks' (reaped children),
least of 3 runs. With `--profile N`, one more run under cProfile (process time), the N
largest own times, then the mesoslite functions by cumulative time.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import tempfile
import time
from pathlib import Path

from mesoslite.agent.actor import AgentActor
from mesoslite.agent.master_link import outgoing_to_pb
from mesoslite.agent.messages import Outgoing, StatusUpdatesOut
from mesoslite.agent.supervisor import read_pidfile
from mesoslite.ids import AgentId, FrameworkId, TaskId
from mesoslite.model import CommandSpec, TaskSpec
from mesoslite.resources import parse_resources


class Master:
    """Encodes what the agent sends, acknowledges every update on the next iteration."""

    def __init__(self, n: int) -> None:
        self.actor: AgentActor | None = None
        self.left = n
        self.done = asyncio.get_running_loop().create_future()

    def send(self, item: Outgoing) -> bool:
        outgoing_to_pb(item).SerializeToString()
        if isinstance(item, StatusUpdatesOut):
            acks = [(s.framework_id, s.task_id, s.uuid) for s in item.statuses]
            self.left -= sum(1 for s in item.statuses if s.state.terminal)
            asyncio.get_running_loop().call_soon(self._ack, acks)
        return True

    def _ack(self, acks: list[tuple[FrameworkId, TaskId, bytes]]) -> None:
        assert self.actor is not None
        self.actor.acknowledge(acks)
        if self.left <= 0 and not self.done.done():
            self.done.set_result(None)


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


async def run(n: int, work_dir: Path, launcher: str) -> tuple[float, float, float, float]:
    """Tasks per second; agent, supervisor and task CPU ms per task."""
    actor = AgentActor(
        work_dir=work_dir,
        hostname="bench",
        resources=parse_resources(f"cpus:{n};mem:{n * 2}"),
        attributes={},
        kill_grace_period_s=1,
        status_update_retry_s=30,
        recover="cleanup",
        task_launcher=launcher,
    )
    master = Master(n)
    master.actor = actor
    actor.start(master)
    actor.registered(AgentId("ag-bench"))
    fid = FrameworkId("fw-bench")
    warm = Master(1)
    warm.actor, actor._sender = actor, warm
    actor.launch_tasks(
        fid,
        [
            TaskSpec(
                TaskId("warm"),
                CommandSpec.of_argv(["/bin/true"]),
                parse_resources("cpus:0.01;mem:1"),
            )
        ],
    )
    await warm.done  # the supervisor (if any) runs before the clock starts
    actor._sender = master
    sup = read_pidfile(work_dir) if launcher == "supervisor" else None
    specs = [
        TaskSpec(
            TaskId(f"t{i}"), CommandSpec.of_argv(["/bin/true"]), parse_resources("cpus:0.01;mem:1")
        )
        for i in range(n)
    ]
    start = time.perf_counter()
    cpu0, t0, s0 = time.process_time(), os.times(), _cpu_s(sup)
    actor.launch_tasks(fid, specs)
    await master.done
    elapsed = time.perf_counter() - start
    cpu, t1, s1 = time.process_time() - cpu0, os.times(), _cpu_s(sup)
    children = t1.children_user + t1.children_system - t0.children_user - t0.children_system
    children += s1[1] - s0[1]
    await actor.stop(flush_s=0)
    return n / elapsed, 1000 * cpu / n, 1000 * (s1[0] - s0[0]) / n, 1000 * children / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--launcher", choices=("wrapper", "supervisor"), default="supervisor")
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="print N rows")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-actor-") as tmp:
        runs = [asyncio.run(run(args.tasks, Path(tmp) / str(i), args.launcher)) for i in range(3)]
        if args.profile:
            profile = cProfile.Profile(time.process_time)
            profile.runcall(asyncio.run, run(args.tasks, Path(tmp) / "p", args.launcher))
    print(
        f"AgentActor, {args.tasks} x /bin/true, {args.launcher}: "
        f"{max(r[0] for r in runs):.0f} tasks/s best of 3 "
        f"({', '.join(f'{r[0]:.0f}' for r in runs)})"
    )
    print(
        f"CPU per task (least of 3): agent {min(r[1] for r in runs):.2f} ms, "
        f"supervisor {min(r[2] for r in runs):.2f} ms, tasks {min(r[3] for r in runs):.2f} ms"
    )
    print(f"load average {os.getloadavg()[0]:.1f}")
    if args.profile:
        stats = pstats.Stats(profile)
        stats.sort_stats("tottime").print_stats(args.profile)
        stats.sort_stats("cumulative").print_stats("mesoslite", args.profile)


if __name__ == "__main__":
    main()
