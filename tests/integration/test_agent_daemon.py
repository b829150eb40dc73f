"""`mesoslite-agent` as a process against a real `mesoslite-master`, driven by a raw framework."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mesoslite import convert
from mesoslite._proto.v1 import common_pb2
from mesoslite.agent.supervisor import read_pidfile
from mesoslite.resources import parse_resources

from .agent_support import (
    AGENT_RESOURCES,
    Daemon,
    Framework,
    alive,
    assert_eventually,
    group_members,
    shell_task,
    start_agent,
    start_master,
)

S = common_pb2.TaskState


@dataclass
class Cluster:
    tmp: Path
    master: Daemon
    address: str
    agent: Daemon | None = None

    @property
    def agent_dir(self) -> Path:
        return self.tmp / "agent"

    def sandbox_file(self, framework_id: str, task_id: str, name: str = "stdout") -> Path:
        return self.agent_dir / "sandboxes" / framework_id / task_id / name

    def agent_log(self) -> str:
        assert self.agent is not None
        return self.agent.log.read_text()

    def restart_master(self) -> None:
        port = self.address.rsplit(":", 1)[1]
        self.master.stop()
        self.master, self.address = start_master(self.tmp / "master", int(port))


@pytest.fixture
def daemons(tmp_path: Path) -> Iterator[Cluster]:
    """A master and an agent as processes; both (and anything the agent left) ended by pid."""
    c = Cluster(tmp_path, *start_master(tmp_path / "master"))
    try:
        c.agent = start_agent(c.address, c.agent_dir)
        yield c
    finally:
        if c.agent is not None:
            c.agent.stop()
        c.master.stop()
        # Shown by pytest only when the test failed.
        print("--- agent log\n", c.agent.log_tail() if c.agent else "")
        print("--- master log\n", c.master.log_tail())


@pytest.fixture
async def framework(daemons: Cluster) -> AsyncIterator[Framework]:
    fw = Framework(daemons.address)
    # A failover timeout keeps the framework's tasks through a master restart.
    await fw.subscribe(failover_timeout_s=300)
    try:
        yield fw
    finally:
        await fw.close()


async def stdout_int(path: Path) -> int:
    return int(await assert_eventually(lambda: path.exists() and path.read_text().strip()))


async def test_the_agent_registers_with_its_resources_and_attributes(
    daemons: Cluster, framework: Framework
) -> None:
    agents = await assert_eventually(framework.agents, what="an agent")
    assert len(agents) == 1
    info = agents[0].agent_info
    assert convert.resources_from_pb(info.resources) == parse_resources(AGENT_RESOURCES)
    attributes = {a.name: a.value for a in info.attributes}
    # The agent adds how it enforces limits (issue 6): cgroups v1 here as root, else psutil.
    assert attributes.pop("isolation") in ("cgroups-v1:cpu,memory", "psutil")
    assert attributes == {"rack": "r1", "zone": "z1"}
    assert agents[0].status == "active"
    # The master lists the agent before its reply reaches the agent, which then keeps its id.
    id_file = daemons.agent_dir / "agent_id"
    await assert_eventually(lambda: id_file.exists() and id_file.read_text().strip())
    assert id_file.read_text().strip() == info.id


async def test_a_command_finishes_with_readable_output_and_a_failure_keeps_its_exit_code(
    daemons: Cluster, framework: Framework
) -> None:
    await framework.launch(shell_task("hello", "echo hello"), shell_task("three", "exit 3"))
    done = await framework.wait_state("hello", S.TASK_FINISHED)
    assert (done.has_exit_code, done.exit_code, done.reason) == (True, 0, "COMMAND_EXITED")
    failed = await framework.wait_state("three", S.TASK_FAILED)
    assert (failed.has_exit_code, failed.exit_code) == (True, 3)
    chunk = await framework.read_file("hello")
    assert (chunk.data, chunk.size, chunk.state) == (b"hello\n", 6, S.TASK_FINISHED)
    await framework.ack(done, failed)
    # Acknowledged: the agent forgets them, but their output stays readable.
    agent = (await framework.agents())[0]
    await assert_eventually(
        lambda: _pending(framework, agent.agent_info.id), what="no pending updates"
    )
    assert (await framework.read_file("hello")).data == b"hello\n"


async def _pending(framework: Framework, agent_id: str) -> bool:
    agents = {a.agent_info.id: a for a in await framework.agents()}
    return agents[agent_id].pending_updates == 0


@pytest.mark.parametrize("launcher", ["supervisor", "wrapper"])
async def test_a_killed_task_is_task_killed_and_its_process_group_is_gone(
    daemons: Cluster, framework: Framework, launcher: str
) -> None:
    assert daemons.agent is not None
    daemons.agent.stop()
    daemons.agent = start_agent(
        daemons.address, daemons.agent_dir, "--task-launcher", launcher
    )
    # The background child ignores SIGTERM; it must still not outlive the task.
    cmd = "(trap '' TERM; exec sleep 60) & echo $$; exec sleep 60"
    await framework.launch(shell_task("sleeper", cmd))
    await framework.wait_state("sleeper", S.TASK_RUNNING)
    shell = await stdout_int(daemons.sandbox_file(framework.id, "sleeper"))
    pgid = os.getpgid(shell)
    # The group: the shell and the background child, and with the wrapper the task's
    # wrapper, its leader; the supervisor's child leads its own group.
    if launcher == "supervisor":
        assert pgid == shell
    await assert_eventually(
        lambda: len(group_members(pgid)) == (2 if launcher == "supervisor" else 3)
    )
    await framework.kill("sleeper")
    killed = await framework.wait_state("sleeper", S.TASK_KILLED)
    assert (killed.reason, killed.exit_code) == ("TASK_KILLED", -signal.SIGTERM)
    await assert_eventually(lambda: not group_members(pgid), timeout_s=2, what="group gone")


async def test_a_task_ignoring_sigterm_is_sigkilled_after_the_grace_period(
    daemons: Cluster, framework: Framework
) -> None:
    await framework.launch(shell_task("stubborn", "trap '' TERM; echo $$; sleep 60"))
    await framework.wait_state("stubborn", S.TASK_RUNNING)
    pid = await stdout_int(daemons.sandbox_file(framework.id, "stubborn"))
    started = time.monotonic()
    await framework.kill("stubborn", grace_s=0.5)
    killed = await framework.wait_state("stubborn", S.TASK_KILLED)
    assert time.monotonic() - started >= 0.5
    assert killed.exit_code == -signal.SIGKILL
    assert not alive(pid)


async def test_an_unacknowledged_update_is_resent_until_it_is_acknowledged(
    daemons: Cluster, framework: Framework
) -> None:
    await framework.launch(shell_task("once", "true"))
    done = await framework.wait_state("once", S.TASK_FINISHED)
    # Seen again with the same uuid after the retry interval (0.5 s), and in order.
    await assert_eventually(
        lambda: sum(u.uuid == done.uuid for u in framework.updates_of("once")) >= 2,
        timeout_s=5,
        what="the update resent",
    )
    states = [u.state for u in framework.updates_of("once")]
    assert states[:4] == [S.TASK_RUNNING, S.TASK_FINISHED] * 2
    await framework.ack(done)
    agent_id = done.agent_id
    await assert_eventually(lambda: _pending(framework, agent_id), what="no pending updates")
    seen = len(framework.updates_of("once"))
    await asyncio.sleep(1.5)  # three retry intervals: a window in which nothing may come
    assert len(framework.updates_of("once")) == seen


async def test_the_agent_re_registers_with_the_same_id_and_its_task_after_a_master_restart(
    daemons: Cluster, framework: Framework
) -> None:
    await framework.launch(shell_task("survivor", "echo $$; exec sleep 60"))
    running = await framework.wait_state("survivor", S.TASK_RUNNING)
    pid = await stdout_int(daemons.sandbox_file(framework.id, "survivor"))
    await framework.close()
    daemons.restart_master()
    fw = Framework(daemons.address)
    try:

        async def reregistered() -> bool:
            agents = await fw.agents()
            return [(a.agent_info.id, a.status) for a in agents] == [(running.agent_id, "active")]

        await assert_eventually(reregistered, timeout_s=10, what="agent re-registered")
        tasks = await fw.tasks()
        assert [(t.task_info.task_id, t.status.state, t.status.agent_id) for t in tasks] == [
            ("survivor", S.TASK_RUNNING, running.agent_id)
        ]
        assert alive(pid)
    finally:
        await fw.close()


def parent_of(pid: int) -> int:
    with open(f"/proc/{pid}/stat", "rb") as f:
        data = f.read()
    return int(data[data.rindex(b")") + 2 :].split()[1])


async def test_by_default_tasks_are_children_of_the_agents_task_supervisor(
    daemons: Cluster, framework: Framework
) -> None:
    # The fixture's agent names no --task-launcher.
    await framework.launch(shell_task("child", "echo $$; exec sleep 60"))
    await framework.wait_state("child", S.TASK_RUNNING)
    pid = await stdout_int(daemons.sandbox_file(framework.id, "child"))
    supervisor = read_pidfile(daemons.agent_dir)
    assert supervisor is not None and alive(supervisor)
    assert parent_of(pid) == supervisor
    assert os.path.basename(os.readlink(f"/proc/{supervisor}/exe")).startswith(
        "mesoslite-supervisor-"
    )
    # The wrapper, not needed, was not built.
    assert not list((daemons.agent_dir / "bin").glob("mesoslite-wrapper-*"))


async def test_without_a_c_compiler_the_agent_says_so_and_runs_tasks_under_the_wrapper(
    daemons: Cluster, framework: Framework
) -> None:
    perl = shutil.which("perl")
    if perl is None:
        pytest.skip("the wrapper's fallback needs perl")
    # A PATH with perl and a shell but no cc/gcc; a fresh work dir, so no supervisor or C
    # wrapper was compiled before.
    bin_dir = daemons.tmp / "nocc-bin"
    bin_dir.mkdir()
    for tool in (perl, "/bin/sh", shutil.which("sleep") or "/bin/sleep"):
        (bin_dir / os.path.basename(tool)).symlink_to(tool)
    assert daemons.agent is not None
    daemons.agent.stop()
    work = daemons.tmp / "agent-nocc"
    daemons.agent = start_agent(
        daemons.address, work, env={**os.environ, "PATH": str(bin_dir)}
    )
    await framework.launch(
        shell_task("three", "exit 3"), shell_task("parent", "echo $PPID; exec sleep 60")
    )
    failed = await framework.wait_state("three", S.TASK_FAILED)
    assert (failed.has_exit_code, failed.exit_code) == (True, 3)
    await framework.wait_state("parent", S.TASK_RUNNING)
    stdout = work / "sandboxes" / framework.id / "parent" / "stdout"
    wrapper = await stdout_int(stdout)
    assert os.path.realpath(f"/proc/{wrapper}/exe") == os.path.realpath(perl)
    assert read_pidfile(work) is None
    log = daemons.agent.log.read_text()
    assert "no C compiler: no task supervisor, tasks run under the wrapper" in log


async def test_sigterm_to_a_cleanup_agent_kills_its_tasks_and_leaves_no_process_behind(
    daemons: Cluster, framework: Framework
) -> None:
    assert daemons.agent is not None
    daemons.agent.stop()
    daemons.agent = start_agent(daemons.address, daemons.agent_dir, "--recover", "cleanup")
    await framework.launch(
        shell_task("a", "sleep 60 & sleep 60"),
        shell_task("b", "trap '' TERM; echo 1; sleep 60"),
    )
    await framework.wait_state("a", S.TASK_RUNNING)
    await framework.wait_state("b", S.TASK_RUNNING)
    await stdout_int(daemons.sandbox_file(framework.id, "b"))  # its trap is set
    # The tasks' processes: the agent's descendants with the wrapper, the task supervisor's
    # (in its own session) by default; `remember_descendants` finds both, and the supervisor.
    supervisor = read_pidfile(daemons.agent_dir)
    pids = await assert_eventually(
        lambda: len(daemons.agent.remember_descendants() - {supervisor}) >= 4
        and daemons.agent.descendants - {supervisor}
    )
    daemons.agent.signal(signal.SIGTERM)
    assert daemons.agent.wait(10) == 0
    assert not [pid for pid in pids if alive(pid)]
    # The supervisor, with no agent and no task left, exits too.
    if supervisor is not None:
        await assert_eventually(lambda: not alive(supervisor), what="the supervisor gone")
    # Their terminal updates went out before the agent left.
    assert (await framework.wait_state("a", S.TASK_KILLED, 1)).agent_id
    assert (await framework.wait_state("b", S.TASK_KILLED, 1)).exit_code == -signal.SIGKILL


async def test_a_restarted_agent_keeps_its_id(daemons: Cluster, framework: Framework) -> None:
    agents = await assert_eventually(framework.agents, what="an agent")
    first_id = agents[0].agent_info.id
    # The master lists the agent as soon as it admits it; the agent keeps the id once the
    # reply reaches it. Stopping it in between is a restart of an agent that never learned
    # its id (it comes back as a new one), not what this test is about.
    id_file = daemons.agent_dir / "agent_id"
    await assert_eventually(
        lambda: id_file.exists() and id_file.read_text().strip() == first_id,
        what="the agent keeping its id",
    )
    daemons.agent.stop()
    daemons.agent = start_agent(daemons.address, daemons.agent_dir)

    async def back() -> bool:
        return [(a.agent_info.id, a.status) for a in await framework.agents()] == [
            (first_id, "active")
        ]

    await assert_eventually(back, timeout_s=10, what="the same agent id, active")


async def test_the_agent_notices_a_silent_master_and_registers_again(
    daemons: Cluster, framework: Framework
) -> None:
    agents = await assert_eventually(framework.agents, what="an agent")
    agent_id = agents[0].agent_info.id
    # The master lists the agent before its registration reply reaches the agent: stopping
    # the master in between leaves the agent waiting for that reply, not for pings (CI
    # caught that race). Stop it once the agent itself says it is registered.
    await assert_eventually(
        lambda: "registered with the master" in daemons.agent_log(),
        timeout_s=10,
        what="the agent registered",
    )
    await framework.close()
    # A stopped master keeps its TCP connections open but sends no pings (every 0.5 s).
    daemons.master.signal(signal.SIGSTOP)
    try:
        await assert_eventually(
            lambda: "no ping from the master in 1.5s" in daemons.agent_log(),
            timeout_s=5,
            what="the agent gave up on the silent master",
        )
    finally:
        daemons.master.signal(signal.SIGCONT)
    fw = Framework(daemons.address)
    try:

        async def back() -> bool:
            return [(a.agent_info.id, a.status) for a in await fw.agents()] == [
                (agent_id, "active")
            ]

        # Its status may still read active from before (the master was stopped, not told):
        # wait for the second registration itself.
        await assert_eventually(
            lambda: daemons.agent_log().count("registered with the master") == 2,
            timeout_s=10,
            what="the agent registered again",
        )
        await assert_eventually(back, timeout_s=10, what="the agent active")
    finally:
        await fw.close()
