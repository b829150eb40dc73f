"""Issue 11 item 3 on real daemons: an agent stopped past its ping timeout has its task
reported unreachable; the framework (not partition-aware) replaces it on another agent;
when the stopped agent continues, the master kills the stale task at once: its process is
gone, the framework sees it end TASK_KILLED (never running again), the replacement runs on."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from mesoslite._proto.v1 import common_pb2
from mesoslite.agent.checkpoint_log import read_checkpoints
from mesoslite.agent.launcher import kill_cgroup_members, process_start_ticks

from .agent_support import Daemon, Framework, alive, assert_eventually, shell_task, start_master
from .agent_support import start_agent as start_agent_daemon

S = common_pb2.TaskState
# Unreachable after 1 s x 2 without a message (the master pings every 0.5 s).
MASTER_ARGS = ("--agent-ping-timeout-s", "1", "--max-agent-ping-timeouts", "2")


@dataclass
class Daemons:
    tmp: Path
    master: Daemon
    address: str
    agents: dict[str, Daemon] = field(default_factory=dict)
    wrappers: set[tuple[int, int]] = field(default_factory=set)
    cgroups: set[str] = field(default_factory=set)

    def start_agent(self, name: str) -> Daemon:
        self.agents[name] = start_agent_daemon(self.address, self.tmp / name)
        return self.agents[name]

    def task_pid(self, agent: str, task_id: str) -> int:
        """The wrapper pid (= process group) of a checkpointed task, remembered for teardown."""
        for task in read_checkpoints(self.tmp / agent):
            if task.task_id == task_id and task.spec is not None:
                self.wrappers.add((task.pid, task.start_ticks))
                self.cgroups.update(task.cgroups)
                return task.pid
        raise AssertionError(f"no checkpoint of {task_id} on {agent}")

    def stop(self) -> None:
        for agent in self.agents.values():
            agent.signal(signal.SIGCONT)
            agent.stop()
        self.master.stop()
        for pid, ticks in self.wrappers:
            if process_start_ticks(pid) == ticks:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)
        kill_cgroup_members(tuple(self.cgroups))


@pytest.fixture
async def daemons(tmp_path: Path) -> AsyncIterator[Daemons]:
    d = Daemons(tmp_path, *start_master(tmp_path / "master", 0, *MASTER_ARGS))
    try:
        yield d
    finally:
        d.stop()
        print("--- master log\n", d.master.log_tail(60))


async def test_a_task_replaced_while_its_agent_was_stopped_is_killed_when_it_continues(
    daemons: Daemons,
) -> None:
    a = daemons.start_agent("a")
    fw = Framework(daemons.address)
    await fw.subscribe(failover_timeout_s=300)  # not partition-aware
    try:
        await fw.launch(shell_task("t1", "sleep 600"))
        await fw.ack(await fw.wait_state("t1", S.TASK_RUNNING))
        stale_pid = daemons.task_pid("a", "t1")
        daemons.start_agent("b")
        a.signal(signal.SIGSTOP)
        try:
            await fw.wait_state("t1", S.TASK_UNREACHABLE, timeout_s=10)
            # The framework replaces it: the only agent offered now is b.
            await fw.launch(shell_task("t1-again", "sleep 600"))
            await fw.ack(await fw.wait_state("t1-again", S.TASK_RUNNING))
            assert alive(stale_pid)  # twice running: what the kill ends
        finally:
            a.signal(signal.SIGCONT)
        killed = await fw.wait_state("t1", S.TASK_KILLED, timeout_s=15)
        assert killed.reason == "UNREACHABLE_AGENT_REREGISTERED"
        await assert_eventually(lambda: not alive(stale_pid), timeout_s=10, what="t1 gone")
        states = [u.state for u in fw.updates_of("t1")]
        after_lost = states[states.index(S.TASK_UNREACHABLE) :]
        assert S.TASK_RUNNING not in after_lost, states
        # The replacement runs on, untouched.
        assert alive(daemons.task_pid("b", "t1-again"))
        assert [u.state for u in fw.updates_of("t1-again")] == [S.TASK_RUNNING]
        tasks = {t.task_info.task_id: t.status.state for t in await fw.tasks()}
        assert tasks == {"t1-again": S.TASK_RUNNING}  # live tasks only
    finally:
        await fw.close()
