"""A framework on a real cluster (master + 2 agents as processes): tasks, kills, restarts."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import psutil

from mesoslite.agent.supervisor import read_pidfile
from mesoslite.scheduler_api import (
    FrameworkInfo,
    SchedulerDriver,
    TaskState,
    TaskStatus,
    parse_resources,
)
from mesoslite.testing import LocalCluster, assert_eventually_async

from .agent_support import work_dir_processes
from .frameworks import OneTask

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "examples"))
from run_n_tasks import RunNTasks  # noqa: E402


def agent_summaries(cluster: LocalCluster) -> list[object]:
    import grpc

    from mesoslite._proto.v1 import operator_pb2, operator_pb2_grpc

    with grpc.insecure_channel(cluster.master_address) as ch:
        return list(
            operator_pb2_grpc.OperatorStub(ch).GetAgents(operator_pb2.GetAgentsRequest()).agents
        )


def task_tree(cluster: LocalCluster) -> list[psutil.Process]:
    """The agents' tasks: their descendants (wrappers and tasks, with the wrapper launcher)
    and the tasks of their work dirs (children of the agents' task supervisors, by default)."""
    procs: dict[int, psutil.Process] = {}
    for pid in cluster.agent_pids:
        try:
            procs.update((p.pid, p) for p in psutil.Process(pid).children(recursive=True))
        except psutil.NoSuchProcess:
            pass
    for work in cluster.agent_work_dirs:
        procs.update((p.pid, p) for p in work_dir_processes(work, supervisor=False))
    return list(procs.values())


def supervisors(cluster: LocalCluster) -> list[psutil.Process]:
    """The agents' task supervisors that run (none with the wrapper launcher)."""
    out = []
    for work in cluster.agent_work_dirs:
        pid = read_pidfile(work)
        if pid is not None:
            try:
                out.append(psutil.Process(pid))
            except psutil.NoSuchProcess:
                pass
    return out


async def test_example_framework_runs_200_tasks_across_2_agents(cluster: LocalCluster) -> None:
    framework = RunNTasks(200, "true", parse_resources("cpus:0.1;mem:16"))
    info = FrameworkInfo(name="run-200")
    async with SchedulerDriver(framework, info, master=cluster.master_address) as driver:
        await asyncio.wait_for(framework.done.wait(), 90)
        assert driver.connected
    assert framework.finished_count() == 200
    assert all(code == 0 for code in framework.exit_codes.values())
    # Every task went through the agents, and both agents ran some.
    assert len({s.agent_id for s in framework.updates if s.state == TaskState.FINISHED}) == 2
    # Every update with a uuid was acknowledged: the agents hold none.
    await assert_eventually_async(
        lambda: all(a.pending_updates == 0 for a in agent_summaries(cluster)), timeout_s=20
    )


def test_example_script_runs_to_completion(cluster: LocalCluster) -> None:
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "run_n_tasks.py"),
            "--master",
            cluster.master_address,
            "--count",
            "20",
            "--command",
            "echo hi",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("20/20 tasks finished")


async def test_a_running_task_is_killed(cluster: LocalCluster) -> None:
    fw = OneTask("sleep 60")
    async with SchedulerDriver(fw, FrameworkInfo(name="kill"), master=cluster.master_address) as d:
        await assert_eventually_async(lambda: fw.state() == TaskState.RUNNING, timeout_s=20)
        assert task_tree(cluster), "the task's process should be running under an agent"
        await d.kill(fw.task.task_id)
        await assert_eventually_async(lambda: fw.state() == TaskState.KILLED, timeout_s=20)
    await assert_eventually_async(lambda: not task_tree(cluster), timeout_s=10)


async def test_master_restart_agents_reregister_and_framework_resubscribes(
    cluster: LocalCluster,
) -> None:
    fw = OneTask("sleep 120")
    info = FrameworkInfo(name="survivor", failover_timeout_s=300)
    agent_ids = sorted(a.agent_info.id for a in agent_summaries(cluster))
    subscribed: list[str] = []
    fw.on_subscribed = lambda d, fid, m: subscribed.append(fid)  # type: ignore[attr-defined]
    async with SchedulerDriver(fw, info, master=cluster.master_address) as d:
        await assert_eventually_async(lambda: fw.state() == TaskState.RUNNING, timeout_s=20)
        fid = d.framework_id
        cluster.restart_master()
        # Agents come back with their ids, the framework with its id, and the task is kept.
        await assert_eventually_async(
            lambda: (
                sorted(a.agent_info.id for a in agent_summaries(cluster) if a.status == "active")
                == agent_ids
            ),
            timeout_s=30,
        )
        await assert_eventually_async(lambda: subscribed == [fid, fid], timeout_s=30)
        fw.updates.clear()
        await d.reconcile()
        await assert_eventually_async(lambda: fw.state() == TaskState.RUNNING, timeout_s=10)
        await d.kill(fw.task.task_id)
        await assert_eventually_async(lambda: fw.state() == TaskState.KILLED, timeout_s=20)


def test_stopping_the_cluster_leaves_no_process_behind(tmp_path: Path) -> None:
    cluster = LocalCluster(tmp_path, agents=2)
    cluster.start()
    try:
        out = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "examples" / "run_n_tasks.py"),
                "--master",
                cluster.master_address,
                "--count",
                "4",
                "--command",
                "sleep 300",
                "--failover-timeout",
                "600",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while len(task_tree(cluster)) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        out.kill()
        out.wait()
        procs = [psutil.Process(cluster.master_pid), *map(psutil.Process, cluster.agent_pids)]
        procs += task_tree(cluster)
        assert len(procs) >= 2 + 1 + 4
        procs += supervisors(cluster)
    finally:
        cluster.stop()
    gone, alive = psutil.wait_procs(procs, timeout=10)
    assert not alive, f"left behind: {alive}"


async def test_tasks_of_a_framework_gone_past_its_failover_timeout_are_killed(
    cluster: LocalCluster,
) -> None:
    fw = OneTask("sleep 120", task_id="orphan")
    info = FrameworkInfo(name="leaver", failover_timeout_s=1.0)
    driver = SchedulerDriver(fw, info, master=cluster.master_address)
    await driver.start()
    await assert_eventually_async(lambda: fw.state() == TaskState.RUNNING, timeout_s=20)
    await driver.stop(failover=True)  # the process "dies": no teardown
    assert task_tree(cluster), "the task keeps running within the failover timeout"

    def killed() -> bool:
        with cluster.client() as c:
            states = [t.state for t in c.tasks(include_completed=True) if t.id == "orphan"]
        return states == ["TASK_KILLED"] and not task_tree(cluster)

    await assert_eventually_async(killed, timeout_s=20)


async def test_stop_from_on_update_still_acknowledges_that_update(tmp_path: Path) -> None:
    # Regression: the implicit ack was sent after the callback, on a channel stop() had closed.
    fw = OneTask("true", task_id="last")

    async def on_update(driver: SchedulerDriver, status: TaskStatus) -> None:
        fw.updates.append(status)
        if status.state.terminal:
            await driver.stop(failover=True)  # keep the framework: nobody else will ack

    fw.on_update = on_update  # type: ignore[method-assign,assignment]
    info = FrameworkInfo(name="stopper", failover_timeout_s=300)
    # Pings every 0.1 s, so the agents' pending-update counts are fresh.
    with LocalCluster(tmp_path, agents=1, master_args=("--agent-ping-interval-s", "0.1")) as c:
        driver = SchedulerDriver(fw, info, master=c.master_address)
        await driver.start()
        await asyncio.wait_for(driver.join(), 20)
        assert fw.state() == TaskState.FINISHED
        await asyncio.sleep(1.0)  # several pongs after the last update
        assert [a.pending_updates for a in agent_summaries(c)] == [0]
