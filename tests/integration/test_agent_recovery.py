"""Issue 6: tasks outlive their agent, updates survive it, a silent agent is unreachable, and
frameworks reconcile. A real master and agent as processes; tasks are real processes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from mesoslite._proto.v1 import common_pb2, scheduler_pb2
from mesoslite.agent.checkpoint_log import read_checkpoints
from mesoslite.agent.launcher import kill_cgroup_members, process_start_ticks

from .agent_support import (
    BIN,
    Daemon,
    Framework,
    alive,
    assert_eventually,
    shell_task,
    start_agent,
    start_master,
)

S = common_pb2.TaskState
# The master marks an agent unreachable after 1 s x 2 without a message from it (it pings
# every 0.5 s, see `start_master`).
MASTER_ARGS = ("--agent-ping-timeout-s", "1", "--max-agent-ping-timeouts", "2")


@dataclass
class Cluster:
    tmp: Path
    master: Daemon
    address: str
    agent: Daemon | None = None
    # (pid, start ticks) of every task wrapper seen, so teardown ends them by pid.
    wrappers: set[tuple[int, int]] = field(default_factory=set)
    cgroups: set[str] = field(default_factory=set)

    @property
    def agent_dir(self) -> Path:
        return self.tmp / "agent"

    def start_agent(self, *extra: str) -> None:
        self.agent = start_agent(self.address, self.agent_dir, *extra)

    def kill_agent(self, sig: int = signal.SIGKILL) -> None:
        assert self.agent is not None
        self.agent.signal(sig)
        assert self.agent.wait(15) is not None, "the agent did not exit"

    def task_pids(self) -> list[int]:
        """The wrapper pid (= process group) of every checkpointed task, remembered."""
        pids = []
        for task in read_checkpoints(self.agent_dir):
            if task.spec is not None:
                self.wrappers.add((task.pid, task.start_ticks))
                self.cgroups.update(task.cgroups)
                pids.append(task.pid)
        return pids

    def end_tasks(self) -> None:
        """Kill what the agents left running, and remove their cgroups (no agent will)."""
        self.task_pids()
        for pid, ticks in self.wrappers:
            if process_start_ticks(pid) == ticks:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)
        kill_cgroup_members(tuple(self.cgroups))
        for cg in sorted(self.cgroups):
            for d in (Path(cg), Path(cg).parent, Path(cg).parent.parent):
                for _ in range(50):  # rmdir fails while a killed process is still exiting
                    try:
                        d.rmdir()
                        break
                    except FileNotFoundError:
                        break
                    except OSError:
                        time.sleep(0.01)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp_path, *start_master(tmp_path / "master", 0, *MASTER_ARGS))
    try:
        c.start_agent()
        yield c
    finally:
        if c.agent is not None:
            if c.agent.proc is not None and c.agent.proc.poll() is None:
                c.agent.signal(signal.SIGCONT)
            c.agent.stop()
        c.master.stop()
        c.end_tasks()
        print("--- agent log\n", c.agent.log_tail(80) if c.agent else "")
        print("--- master log\n", c.master.log_tail(40))


@pytest.fixture
async def framework(cluster: Cluster) -> AsyncIterator[Framework]:
    fw = Framework(cluster.address)
    await fw.subscribe(failover_timeout_s=300)
    try:
        yield fw
    finally:
        await fw.close()


def wait_for(go: Path, code: int) -> str:
    """A shell command that runs until `go` exists, then exits with `code`."""
    return f"while [ ! -e {go} ]; do sleep 0.05; done; exit {code}"


async def agent_active(fw: Framework, agent_id: str) -> bool:
    return [(a.agent_info.id, a.status) for a in await fw.agents()] == [(agent_id, "active")]


async def test_twenty_tasks_outlive_a_sigkilled_agent_and_report_their_real_exit_codes(
    cluster: Cluster, framework: Framework
) -> None:
    go = cluster.tmp / "go"
    await framework.launch(
        *[shell_task(f"t{i}", wait_for(go, i % 4), "cpus:0.1;mem:8") for i in range(20)]
    )
    for i in range(20):
        running = await framework.wait_state(f"t{i}", S.TASK_RUNNING)
    wrappers = cluster.task_pids()
    assert len(wrappers) == 20
    cluster.kill_agent(signal.SIGKILL)
    await asyncio.sleep(0.3)
    assert all(alive(pid) for pid in wrappers), "a task died with its agent"
    cluster.start_agent()
    await assert_eventually(
        lambda: agent_active(framework, running.agent_id), what="the same agent id, active"
    )
    tasks = await framework.tasks()
    assert sorted(t.status.state for t in tasks) == [S.TASK_RUNNING] * 20
    go.touch()
    for i in range(20):
        state = S.TASK_FINISHED if i % 4 == 0 else S.TASK_FAILED
        done = await framework.wait_state(f"t{i}", state, timeout_s=15)
        assert (done.exit_code, done.has_exit_code) == (i % 4, True)
    await assert_eventually(lambda: not any(alive(pid) for pid in wrappers), timeout_s=5)


async def test_a_task_ending_while_its_agent_is_down_is_reported_with_its_exit_code(
    cluster: Cluster, framework: Framework
) -> None:
    go = cluster.tmp / "go"
    await framework.launch(shell_task("late", wait_for(go, 7)), shell_task("stays", "sleep 60"))
    await framework.wait_state("late", S.TASK_RUNNING)
    await framework.wait_state("stays", S.TASK_RUNNING)
    late_pid = cluster.task_pids()[0]
    cluster.kill_agent(signal.SIGKILL)
    go.touch()
    await assert_eventually(lambda: not alive(late_pid), what="the task ended")
    cluster.start_agent()
    done = await framework.wait_state("late", S.TASK_FAILED, timeout_s=15)
    assert done.exit_code == 7
    assert done.message == "command exited with status 7 (while the agent was down)"
    # The other one was re-adopted: it can be killed and is reported killed.
    await framework.kill("stays")
    killed = await framework.wait_state("stays", S.TASK_KILLED)
    assert killed.exit_code == -signal.SIGTERM


async def test_sigterm_leaves_tasks_running_and_a_cleanup_agent_kills_them_at_start(
    cluster: Cluster, framework: Framework
) -> None:
    await framework.launch(shell_task("a", "sleep 60"))
    running = await framework.wait_state("a", S.TASK_RUNNING)
    [pid] = cluster.task_pids()
    cluster.kill_agent(signal.SIGTERM)
    assert alive(pid)
    cluster.start_agent("--recover", "cleanup")
    killed = await framework.wait_state("a", S.TASK_KILLED, timeout_s=15)
    assert killed.agent_id == running.agent_id
    assert not alive(pid)
    # A cleanup agent kills its tasks when it stops.
    await framework.launch(shell_task("b", "sleep 60"))
    await framework.wait_state("b", S.TASK_RUNNING)
    pids = cluster.task_pids()
    cluster.kill_agent(signal.SIGTERM)
    await framework.wait_state("b", S.TASK_KILLED, timeout_s=5)
    assert not any(alive(p) for p in pids)


async def test_a_stopped_agent_is_unreachable_and_reconciled_when_it_continues(
    cluster: Cluster, framework: Framework
) -> None:
    # Partition-aware: its tasks go on when the agent returns (else they are killed, see
    # test_stale_tasks.py).
    await framework.subscribe(failover_timeout_s=300, partition_aware=True)
    go = cluster.tmp / "go"
    await framework.launch(shell_task("long", "sleep 60"), shell_task("short", wait_for(go, 4)))
    running = await framework.wait_state("long", S.TASK_RUNNING)
    await framework.wait_state("short", S.TASK_RUNNING)
    assert cluster.agent is not None
    cluster.agent.signal(signal.SIGSTOP)
    try:
        gone = await framework.wait_state("long", S.TASK_UNREACHABLE, timeout_s=10)
        assert gone.reason == "AGENT_UNREACHABLE"
        await framework.wait_state("short", S.TASK_UNREACHABLE, timeout_s=2)
        agents = await framework.agents()
        assert [a.status for a in agents] == ["unreachable"]
        go.touch()  # "short" ends while its agent is stopped
        await asyncio.sleep(0.3)
    finally:
        cluster.agent.signal(signal.SIGCONT)

    def long_running_again() -> bool:
        states = [u.state for u in framework.updates_of("long")]
        return S.TASK_RUNNING in states[states.index(S.TASK_UNREACHABLE) :]

    await assert_eventually(long_running_again, timeout_s=15, what="long reconciled to RUNNING")
    done = await framework.wait_state("short", S.TASK_FAILED, timeout_s=15)
    assert done.exit_code == 4
    await assert_eventually(lambda: agent_active(framework, running.agent_id))


async def test_withheld_acknowledgements_get_every_update_in_order_even_across_a_restart(
    cluster: Cluster, framework: Framework
) -> None:
    ids = [f"t{i}" for i in range(5)]
    await framework.launch(*[shell_task(t, f"exit {i}") for i, t in enumerate(ids)])
    for t in ids:
        await framework.wait_state(t, S.TASK_RUNNING)
        terminal = S.TASK_FINISHED if t == "t0" else S.TASK_FAILED
        await framework.wait_state(t, terminal)

    def resent(t: str) -> bool:
        last = framework.updates_of(t)[-1]
        return sum(u.uuid == last.uuid for u in framework.updates_of(t)) >= 2

    # Retried while nobody acknowledges (every 0.5 s)...
    await assert_eventually(lambda: all(resent(t) for t in ids), what="updates retried")
    # ... and still after the agent is SIGKILLed and started again (they were on disk).
    cluster.kill_agent(signal.SIGKILL)
    seen = len(framework.updates)
    cluster.start_agent()
    await assert_eventually(lambda: len(framework.updates) >= seen + 10, timeout_s=15)
    uuids_before = {t: [u.uuid for u in framework.updates_of(t)] for t in ids}
    for t in ids:
        await framework.ack(framework.updates_of(t)[-1])
    for t in ids:
        first_seen: list[Any] = []
        for u in framework.updates_of(t):
            if u.uuid not in [f.uuid for f in first_seen]:
                first_seen.append(u)
        assert [u.state for u in first_seen][:2] == [S.TASK_RUNNING, S.TASK_FAILED - (t == "t0")]
        assert len(first_seen) == 2, f"{t}: {len(first_seen)} distinct updates"
        # Resent updates are the same updates: same uuid, same order.
        assert set(uuids_before[t]) == {u.uuid for u in first_seen}

    async def nothing_pending() -> bool:
        return all(a.pending_updates == 0 for a in await framework.agents())

    await assert_eventually(nothing_pending, what="no pending updates on the agent")
    quiet = len(framework.updates)
    await asyncio.sleep(1.5)  # three retry intervals
    assert len(framework.updates) == quiet
    assert not list((cluster.agent_dir / "meta").glob("*/*")), "checkpoints left behind"


async def test_implicit_reconciliation_after_a_framework_restart_returns_every_task(
    cluster: Cluster, framework: Framework
) -> None:
    ids = [f"r{i}" for i in range(6)]
    await framework.launch(*[shell_task(t, "sleep 60") for t in ids])
    for t in ids:
        await framework.ack(await framework.wait_state(t, S.TASK_RUNNING))
    fid = framework.id
    await framework.close()
    again = Framework(cluster.address)
    again.id = fid
    try:
        await again.subscribe(failover_timeout_s=300)
        again.updates.clear()
        await again.scheduler.Reconcile(scheduler_pb2.ReconcileRequest(framework_id=fid))

        def reconciled() -> dict[str, int]:
            got = {u.task_id: u.state for u in again.updates if u.reason == "RECONCILIATION"}
            return got if len(got) == len(ids) else {}

        got = await assert_eventually(reconciled, what="every task reconciled")
        assert got == {t: S.TASK_RUNNING for t in ids}
        # Explicit reconciliation of a task nobody knows is answered, not ignored.
        again.updates.clear()
        T = scheduler_pb2.ReconcileRequest.Task
        await again.scheduler.Reconcile(
            scheduler_pb2.ReconcileRequest(framework_id=fid, tasks=[T(task_id="nope")])
        )
        unknown = await assert_eventually(lambda: again.updates_of("nope"))
        assert (unknown[0].state, unknown[0].reason) == (S.TASK_UNKNOWN, "RECONCILIATION")
    finally:
        await again.close()


# ---------------------------------------------------------------------- drain and gone


def cli(address: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "mesoslite"), "--master", address, *args],
        capture_output=True, text=True, timeout=30,
    )


async def test_a_drained_agent_is_offered_no_more_and_its_tasks_are_killed(
    cluster: Cluster, framework: Framework
) -> None:
    await framework.launch(shell_task("d", "sleep 60", kill_grace_period_s=0.2))
    running = await framework.wait_state("d", S.TASK_RUNNING)
    done = await asyncio.to_thread(cli, cluster.address, "agent", "drain", running.agent_id)
    assert (done.returncode, done.stdout) == (0, f"draining agent {running.agent_id}\n")
    killed = await framework.wait_state("d", S.TASK_KILLED)
    assert killed.exit_code == -signal.SIGTERM

    async def drained() -> bool:
        return [a.status for a in await framework.agents()] == ["drained"]

    await assert_eventually(drained, what="the agent drained")
    framework.offers.clear()
    await asyncio.sleep(1.5)  # more than one periodic allocation pass (1 s)
    assert not framework.offers


async def test_an_agent_marked_gone_has_its_tasks_gone_and_killed_and_may_not_return(
    cluster: Cluster, framework: Framework
) -> None:
    await framework.launch(shell_task("g", "sleep 60"))
    running = await framework.wait_state("g", S.TASK_RUNNING)
    [pid] = cluster.task_pids()
    done = await asyncio.to_thread(cli, cluster.address, "agent", "gone", running.agent_id)
    assert done.returncode == 0, done.stderr
    gone = await framework.wait_state("g", S.TASK_GONE)
    assert gone.reason == "AGENT_REMOVED"
    await assert_eventually(lambda: not alive(pid), what="its task killed")
    await asyncio.sleep(1)  # the agent keeps trying to register, and is refused
    assert await framework.agents() == []
    assert cluster.agent is not None
    assert "was marked gone" in cluster.agent.log.read_text()
    again = await asyncio.to_thread(cli, cluster.address, "agent", "drain", running.agent_id)
    assert again.returncode != 0
    assert f"agent {running.agent_id} was marked gone" in again.stderr


async def test_a_task_being_killed_when_its_agent_dies_is_still_reported_killed(
    cluster: Cluster, framework: Framework
) -> None:
    # It ignores SIGTERM: the agent is SIGKILLed during its 3 s grace period, and the next
    # agent kills it again (its grace restarts) and reports it killed.
    cmd = "trap '' TERM; echo ready; while true; do sleep 0.05; done"
    await framework.launch(shell_task("k", cmd, kill_grace_period_s=3))
    await framework.wait_state("k", S.TASK_RUNNING)
    out = cluster.agent_dir / "sandboxes" / framework.id / "k" / "stdout"
    await assert_eventually(lambda: out.exists() and out.read_text() == "ready\n")
    [pid] = cluster.task_pids()
    await framework.kill("k")
    await assert_eventually(
        lambda: any(t.kill_requested for t in read_checkpoints(cluster.agent_dir))
    )
    cluster.kill_agent(signal.SIGKILL)
    assert alive(pid)
    cluster.start_agent()
    killed = await framework.wait_state("k", S.TASK_KILLED, timeout_s=20)
    assert killed.reason == "TASK_KILLED"
    assert not alive(pid)
