"""Issue 15: with `--task-launcher supervisor`, tasks outlive a SIGKILLed agent under their
supervisor, and a restarted agent reconnects to it and learns their exact exit codes.
A real master and agent as processes, a real supervisor, real tasks."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from mesoslite.agent.supervisor import read_pidfile

from .agent_support import Framework, alive, assert_eventually, shell_task, start_master
from .test_agent_recovery import MASTER_ARGS, Cluster, S, wait_for
from .test_supervisor_tasks import ppid

pytestmark = pytest.mark.skipif(
    not any(os.access(f"/usr/bin/{cc}", os.X_OK) for cc in ("cc", "gcc")),
    reason="the supervisor needs a C compiler",
)
SUPERVISED = ("--task-launcher", "supervisor")


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp_path, *start_master(tmp_path / "master", 0, *MASTER_ARGS))
    try:
        c.start_agent(*SUPERVISED)
        yield c
    finally:
        if c.agent is not None:
            c.agent.stop()
        c.master.stop()
        c.end_tasks()
        sup = read_pidfile(c.agent_dir)
        if sup is not None and alive(sup):
            with open(f"/proc/{sup}/cmdline", "rb") as f:
                ours = b"mesoslite-supervisor-" in f.read()
            if ours:  # it ends by itself once its tasks are gone; never leave it behind
                with contextlib.suppress(ProcessLookupError):
                    os.kill(sup, signal.SIGKILL)
        print("--- agent log\n", c.agent.log_tail(80) if c.agent else "")


@pytest.fixture
async def framework(cluster: Cluster) -> AsyncIterator[Framework]:
    fw = Framework(cluster.address)
    await fw.subscribe(failover_timeout_s=300)
    try:
        yield fw
    finally:
        await fw.close()


async def test_a_task_ending_while_the_agent_is_sigkilled_gets_its_exact_code_via_the_supervisor(
    cluster: Cluster, framework: Framework
) -> None:
    go = cluster.tmp / "go"
    await framework.launch(shell_task("late", wait_for(go, 7)), shell_task("stays", "sleep 60"))
    await framework.wait_state("late", S.TASK_RUNNING)
    await framework.wait_state("stays", S.TASK_RUNNING)
    sup = read_pidfile(cluster.agent_dir)
    assert sup is not None
    pids = cluster.task_pids()
    assert [ppid(p) for p in pids] == [sup, sup]  # one process per task, under it
    late_pid = pids[0]
    cluster.kill_agent(signal.SIGKILL)
    go.touch()
    await assert_eventually(lambda: not alive(late_pid), what="the task ended, reaped")
    assert alive(sup), "the supervisor died with its agent"
    cluster.start_agent(*SUPERVISED)
    done = await framework.wait_state("late", S.TASK_FAILED, timeout_s=15)
    assert (done.exit_code, done.has_exit_code) == (7, True)
    assert done.message == "command exited with status 7 (while the agent was down)"
    assert read_pidfile(cluster.agent_dir) == sup  # the new agent reconnected to it
    # The other one was taken back through the supervisor: killed, with its real signal.
    await framework.kill("stays")
    killed = await framework.wait_state("stays", S.TASK_KILLED)
    assert killed.exit_code == -signal.SIGTERM


async def test_a_task_ending_after_the_restart_reports_its_code_through_the_supervisor(
    cluster: Cluster, framework: Framework
) -> None:
    go = cluster.tmp / "go"
    await framework.launch(shell_task("t", wait_for(go, 3)))
    await framework.wait_state("t", S.TASK_RUNNING)
    [pid] = cluster.task_pids()
    cluster.kill_agent(signal.SIGKILL)
    cluster.start_agent(*SUPERVISED)
    await assert_eventually(
        lambda: "recovered from checkpoints" in cluster.agent.log_tail(200),  # type: ignore[union-attr]
        what="the agent recovered",
    )
    go.touch()
    done = await framework.wait_state("t", S.TASK_FAILED, timeout_s=15)
    assert (done.exit_code, done.message) == (3, "command exited with status 3")
    assert not alive(pid)


async def test_a_task_whose_pid_the_killed_agent_never_recorded_is_killed_and_lost(
    cluster: Cluster, framework: Framework
) -> None:
    # The window of a launch chunk in flight: the launch's `P` record is on disk, the
    # supervisor started the task, the agent was SIGKILLed before it wrote the `L` record
    # with the pid. The log is cut back to that state by hand (the window is microseconds).
    await framework.launch(shell_task("stays", "sleep 60"))
    await framework.wait_state("stays", S.TASK_RUNNING)
    [pid] = cluster.task_pids()
    cluster.kill_agent(signal.SIGKILL)
    log = cluster.agent_dir / "meta" / "log"
    lines = log.read_text().splitlines(keepends=True)
    kept = [line for line in lines if '"t":"stays"' not in line or '"o":"P"' in line]
    assert len(kept) < len(lines) and any('"t":"stays"' in line for line in kept)
    log.write_text("".join(kept))
    cluster.start_agent(*SUPERVISED)
    lost = await framework.wait_state("stays", S.TASK_LOST, timeout_s=15)
    assert lost.message == "the agent restarted before the task's process was recorded"
    await assert_eventually(lambda: not alive(pid), what="the unrecorded task killed")
