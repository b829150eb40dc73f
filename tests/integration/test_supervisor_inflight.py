"""Issue 15 (agentcost): with the task supervisor the agent keeps one launch chunk in flight
(chunk k+1 is sent before chunk k's pids are collected). What may happen in that window: an
exit read before its pid, a kill, the agent stopping, the supervisor dying. Real
`AgentActor`, real supervisor, real tasks; a fake master."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import psutil
import pytest

from mesoslite.agent.actor import AgentActor
from mesoslite.agent.constants import LAUNCH_CHUNK
from mesoslite.agent.supervisor import read_pidfile
from mesoslite.ids import AgentId, TaskId
from mesoslite.model import TaskState

from .agent_support import alive, assert_eventually
from .test_agent_actor import FW, FakeMaster, shell, terminal
from .test_supervisor_tasks import make_actor

pytestmark = pytest.mark.skipif(
    not any(os.access(f"/usr/bin/{cc}", os.X_OK) for cc in ("cc", "gcc")),
    reason="the supervisor needs a C compiler",
)


@pytest.fixture
async def agent(tmp_path: Path) -> AsyncIterator[tuple[AgentActor, FakeMaster]]:
    actor = make_actor(tmp_path)
    master = FakeMaster()
    actor.start(master)
    actor.registered(AgentId("ag-1"))
    try:
        yield actor, master
    finally:
        await actor.stop(flush_s=0)
        sup = read_pidfile(tmp_path)
        if sup is not None:
            await assert_eventually(lambda: not alive(sup), timeout_s=5, what="supervisor gone")


def running_with(marker: str) -> list[int]:
    """Live processes whose command line is `sleep <marker>`."""
    out = []
    for p in psutil.process_iter(["cmdline", "status"]):
        if p.info["cmdline"] == ["sleep", marker] and p.info["status"] != psutil.STATUS_ZOMBIE:
            out.append(p.pid)
    return out


async def sent_not_collected(actor: AgentActor) -> None:
    """One loop iteration: the queued chunk is sent, its pids not collected yet."""
    await asyncio.sleep(0)
    sent = actor.launches.inflight
    assert sent is not None and callable(sent.results)


def hold(actor: AgentActor) -> None:
    """Keep the chunk out while the test makes something happen (white box: the pending
    `launch_some` is what would collect it at the next loop iteration)."""
    handle = actor.launches.handle
    assert handle is not None
    handle.cancel()
    actor.launches.handle = None


def release(actor: AgentActor) -> None:
    actor.launches.launch_some()


async def test_a_burst_of_quick_tasks_reports_every_exit_even_one_read_before_its_pid(
    agent: tuple[AgentActor, FakeMaster],
) -> None:
    actor, master = agent
    n = 4 * LAUNCH_CHUNK
    actor.launch_tasks(FW, [shell(f"q{i}", f"exit {i % 7}", "cpus:0.01;mem:1") for i in range(n)])
    for i in range(n):
        done = await terminal(master, f"q{i}", timeout_s=30)
        assert done.exit_code == i % 7, done
    assert len([u for u in master.updates if u.state.terminal]) == n
    assert not actor.processes and not actor.launcher.running


async def test_an_exit_read_before_its_pid_is_collected_is_kept_for_it(
    agent: tuple[AgentActor, FakeMaster], tmp_path: Path
) -> None:
    actor, master = agent
    actor.launch_tasks(FW, [shell("fast", "exit 3")])
    await sent_not_collected(actor)
    hold(actor)
    exits = tmp_path / "meta" / "exits"
    await assert_eventually(lambda: exits.exists() and exits.read_text(), what="it ended")
    await asyncio.sleep(0.1)  # the loop reads its `X` line: a pid the agent does not know yet
    assert not master.of("fast")
    release(actor)
    done = await terminal(master, "fast")
    assert (done.state, done.exit_code) == (TaskState.FAILED, 3)


async def test_a_kill_while_the_chunk_is_out_ends_the_task_killed_once_and_its_group_gone(
    agent: tuple[AgentActor, FakeMaster],
) -> None:
    actor, master = agent
    actor.launch_tasks(FW, [shell("victim", "exec sleep 31.7"), shell("other", "exit 2")])
    await sent_not_collected(actor)
    hold(actor)
    await asyncio.sleep(0.05)  # the supervisor starts them meanwhile
    actor.kill_task(FW, TaskId("victim"), 0.3)
    done = await terminal(master, "victim")
    assert done.state == TaskState.KILLED
    await asyncio.sleep(0.2)  # nothing more comes for it
    assert [u.state for u in master.of("victim") if u.state.terminal] == [TaskState.KILLED]
    assert not running_with("31.7")
    assert (await terminal(master, "other")).exit_code == 2  # its chunk-mate is untouched


async def test_stopping_while_the_chunk_is_out_kills_its_tasks(tmp_path: Path) -> None:
    actor = make_actor(tmp_path)  # recover="cleanup": stop kills every task
    master = FakeMaster()
    actor.start(master)
    actor.registered(AgentId("ag-1"))
    actor.launch_tasks(FW, [shell(f"s{i}", "exec sleep 32.3") for i in range(3)])
    await sent_not_collected(actor)
    await actor.stop(flush_s=0)
    for i in range(3):
        ends = [u for u in master.of(f"s{i}") if u.state.terminal]
        assert [u.state for u in ends] == [TaskState.KILLED]
    await assert_eventually(lambda: not running_with("32.3"), what="no task left")
    sup = read_pidfile(tmp_path)
    if sup is not None:
        await assert_eventually(lambda: not alive(sup), timeout_s=5, what="supervisor gone")


async def test_the_supervisor_dying_while_the_chunk_is_out_ends_each_task_once(
    agent: tuple[AgentActor, FakeMaster], tmp_path: Path
) -> None:
    actor, master = agent
    actor.launch_tasks(FW, [shell("warm", "true")])  # starts the supervisor
    await terminal(master, "warm")
    sup = read_pidfile(tmp_path)
    assert sup is not None
    n = LAUNCH_CHUNK + 4
    actor.launch_tasks(FW, [shell(f"d{i}", "exec sleep 33.1", "cpus:0.01;mem:1") for i in range(n)])
    await sent_not_collected(actor)
    hold(actor)
    await asyncio.sleep(0.05)  # it starts some or all of them
    os.kill(sup, signal.SIGKILL)
    mode = actor.launcher.supervisor
    assert mode is not None
    old = mode.client
    await assert_eventually(lambda: mode.client is not old, what="the loss seen")
    release(actor)  # the pids of a supervisor that is gone: watched as orphans
    # Those it started outlive it (watched through pidfds); end them, the rest never started.
    await assert_eventually(
        lambda: all(
            actor.tasks[(FW, TaskId(f"d{i}"))].state != TaskState.STAGING for i in range(n)
        ),
        what="every launch answered",
    )
    keys = [(FW, TaskId(f"d{i}")) for i in range(n)]
    started = [k for k in keys if actor.tasks[k].state == TaskState.RUNNING]
    # `sh -c 'exec sleep'` becomes `sleep` a moment after its pid is known.
    await assert_eventually(lambda: len(running_with("33.1")) == len(started), what="execs")
    for pid in running_with("33.1"):
        os.kill(pid, signal.SIGTERM)
    lost = "the task's process ended; its exit status is lost (the task supervisor died)"
    for i in range(n):
        done = await terminal(master, f"d{i}")
        assert done.state == TaskState.FAILED, done
        if i < LAUNCH_CHUNK:  # the chunk that was out: lost with it, or never started
            assert done.message == lost or "the task supervisor died" in done.message, done
        else:  # the next chunk went to the new supervisor: its real status
            assert done.exit_code == -signal.SIGTERM, done
    await asyncio.sleep(0.2)
    assert len([u for u in master.updates if u.state.terminal]) == n + 1
    assert not running_with("33.1")
    actor.launch_tasks(FW, [shell("after", "exit 4")])  # a new supervisor runs it
    assert (await terminal(master, "after")).exit_code == 4
