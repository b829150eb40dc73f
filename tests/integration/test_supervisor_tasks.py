"""Issue 15: the agent's task supervisor (`agent/supervisor.py`) is the one parent of its
tasks: real `AgentActor`, real supervisor process, real tasks; a fake master."""

from __future__ import annotations

import os
import pwd
import signal
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mesoslite.agent.actor import AgentActor
from mesoslite.agent.supervisor import read_pidfile
from mesoslite.ids import AgentId, FrameworkId, TaskId
from mesoslite.model import CommandSpec, TaskSpec, TaskState
from mesoslite.resources import parse_resources

from .agent_support import alive, assert_eventually, group_members
from .test_agent_actor import FW, SMALL, FakeMaster, ready, shell, terminal

pytestmark = pytest.mark.skipif(
    not any(os.access(f"/usr/bin/{cc}", os.X_OK) for cc in ("cc", "gcc")),
    reason="the supervisor needs a C compiler",
)


def ppid(pid: int) -> int:
    with open(f"/proc/{pid}/stat", "rb") as f:
        data = f.read()
    return int(data[data.rindex(b")") + 2 :].split()[1])


def make_actor(work_dir: Path, grace_s: float = 0.3) -> AgentActor:
    return AgentActor(
        work_dir=work_dir,
        hostname="h1",
        resources=parse_resources("cpus:4;mem:512"),
        attributes={},
        kill_grace_period_s=grace_s,
        status_update_retry_s=5,
        recover="cleanup",
        task_launcher="supervisor",
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
        # With no agent and no task left it ends by itself.
        if sup is not None:
            await assert_eventually(lambda: not alive(sup), timeout_s=5, what="supervisor gone")


async def test_tasks_are_children_of_the_supervisor_and_report_exact_codes_and_signals(
    agent: tuple[AgentActor, FakeMaster], tmp_path: Path
) -> None:
    actor, master = agent
    assert read_pidfile(tmp_path) is None  # started at the first launch, not before
    actor.launch_tasks(
        FW,
        [
            shell("ok", "true"),
            shell("three", "exit 3"),
            shell("term", "kill -TERM $$"),
            shell("up", "echo ready; sleep 30"),
        ],
    )
    await ready(actor, "up")
    sup = read_pidfile(tmp_path)
    assert sup is not None and alive(sup)
    up = actor.processes[(FW, TaskId("up"))]
    assert ppid(up.pid) == sup  # no wrapper between them
    assert os.getpgid(up.pid) == up.pid and os.getsid(up.pid) == up.pid
    assert (await terminal(master, "ok")).exit_code == 0
    assert (await terminal(master, "three")).exit_code == 3
    assert (await terminal(master, "term")).exit_code == -signal.SIGTERM
    codes = (tmp_path / "meta" / "exits").read_text().split()[1::2]
    assert sorted(codes) == ["-15", "0", "3"]


async def test_a_kill_ends_the_task_group_and_sigkills_after_the_grace_period(
    agent: tuple[AgentActor, FakeMaster],
) -> None:
    actor, master = agent
    actor.launch_tasks(FW, [shell("stubborn", "trap '' TERM; sleep 30 & echo ready; wait")])
    await ready(actor, "stubborn")
    pid = actor.processes[(FW, TaskId("stubborn"))].pid
    assert len(group_members(pid)) == 2
    actor.kill_task(FW, TaskId("stubborn"), 0.3)
    done = await terminal(master, "stubborn")
    assert (done.state, done.exit_code) == (TaskState.KILLED, -signal.SIGKILL)
    await assert_eventually(lambda: not group_members(pid), what="the group is gone")


async def test_an_exec_error_is_task_failed_with_the_errno_text(
    agent: tuple[AgentActor, FakeMaster], tmp_path: Path
) -> None:
    actor, master = agent
    script = tmp_path / "not-a-program"
    script.write_bytes(b"\x7fELF garbage")
    script.chmod(stat.S_IRWXU)
    actor.launch_tasks(FW, [TaskSpec(TaskId("bad"), CommandSpec.of_argv([str(script)]), SMALL)])
    done = await terminal(master, "bad")
    assert done.state == TaskState.FAILED
    assert f"cannot start {str(script)!r}: executing: Exec format error" in done.message
    actor.launch_tasks(FW, [shell("after", "exit 5")])  # the supervisor goes on
    assert (await terminal(master, "after")).exit_code == 5


@pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")
async def test_as_root_a_supervised_task_runs_as_its_user_and_owns_its_output(
    agent: tuple[AgentActor, FakeMaster], tmp_path: Path
) -> None:
    actor, master = agent
    nobody = pwd.getpwnam("nobody")
    cmd = CommandSpec.of_shell("id -u; id -g; echo $USER", user="nobody")
    actor.launch_tasks(FW, [TaskSpec(TaskId("t1"), cmd, SMALL)])
    assert (await terminal(master, "t1")).state == TaskState.FINISHED
    out = tmp_path / "sandboxes" / "fw-1" / "t1" / "stdout"
    assert out.read_text().split() == [str(nobody.pw_uid), str(nobody.pw_gid), "nobody"]
    assert out.stat().st_uid == nobody.pw_uid


async def test_a_sigkilled_supervisor_is_replaced_and_its_tasks_reported_lost(
    agent: tuple[AgentActor, FakeMaster], tmp_path: Path
) -> None:
    actor, master = agent
    actor.launch_tasks(FW, [shell("orphan", "echo ready; sleep 30")])
    await ready(actor, "orphan")
    orphan = actor.processes[(FW, TaskId("orphan"))].pid
    old = read_pidfile(tmp_path)
    assert old is not None
    os.kill(old, signal.SIGKILL)
    await assert_eventually(
        lambda: read_pidfile(tmp_path) not in (None, old), what="a new supervisor"
    )
    assert alive(orphan)  # the task outlives its supervisor, watched through a pidfd
    os.kill(orphan, signal.SIGTERM)
    done = await terminal(master, "orphan")
    assert done.state == TaskState.FAILED
    assert done.message == (
        "the task's process ended; its exit status is lost (the task supervisor died)"
    )
    actor.launch_tasks(FW, [shell("next", "exit 4")])
    assert (await terminal(master, "next")).exit_code == 4
    assert not alive(old)


async def test_a_foreign_socket_owner_is_refused_and_tasks_fall_back_to_the_wrapper(
    tmp_path: Path,
) -> None:
    import subprocess

    from mesoslite.agent.supervisor import socket_name

    # A process of another uid holds the name: the agent must not talk to it.
    nobody = pwd.getpwnam("nobody").pw_uid
    if os.geteuid() != 0:
        pytest.skip("needs root to hold the socket as another user")
    holder = subprocess.Popen(
        [
            "python3",
            "-c",
            "import socket,sys,time;s=socket.socket(socket.AF_UNIX);"
            "s.bind(bytes.fromhex(sys.argv[1]));s.listen();print('ok',flush=True);time.sleep(30)",
            socket_name(tmp_path).hex(),
        ],
        user=nobody,
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"ok"
        actor = make_actor(tmp_path)
        master = FakeMaster()
        actor.start(master)
        actor.registered(AgentId("ag-1"))
        try:
            assert actor.launcher.supervisor is not None
            assert actor.launcher.supervisor.client is None
            actor.launch_tasks(FW, [shell("t", "exit 6")])
            assert (await terminal(master, "t")).exit_code == 6
            assert actor.launcher.supervisor.client is None  # refused: the wrapper ran it
        finally:
            await actor.stop(flush_s=0)
    finally:
        holder.kill()
        holder.wait()


async def test_the_supervisor_makes_the_sandbox_and_says_clearly_when_it_cannot(
    agent: tuple[AgentActor, FakeMaster], tmp_path: Path
) -> None:
    actor, master = agent
    # A new framework's directory and the task's sandbox are made by the supervisor (the
    # agent no longer does): mode 0700, its output in it.
    actor.launch_tasks(FW, [shell("made", "echo hi")])
    assert (await terminal(master, "made")).state == TaskState.FINISHED
    sandbox = tmp_path / "sandboxes" / FW / "made"
    assert stat.S_IMODE(sandbox.stat().st_mode) == 0o700
    assert (sandbox / "stdout").read_text() == "hi\n"
    # A framework directory that cannot hold sandboxes: TASK_FAILED naming the sandbox and
    # the errno's text, no process left, and the supervisor goes on.
    blocked = FrameworkId("fw-blocked")
    (tmp_path / "sandboxes" / blocked).write_text("not a directory")
    actor.launch_tasks(blocked, [shell("nowhere", "true")])
    key = (blocked, TaskId("nowhere"))
    await assert_eventually(lambda: key not in actor.processes and actor.tasks[key].state.terminal)
    done = next(u for u in master.of("nowhere") if u.state.terminal)
    assert done.state == TaskState.FAILED
    assert done.message == (
        f"cannot create sandbox {tmp_path / 'sandboxes' / blocked / 'nowhere'}: Not a directory"
    )
    assert [u.state for u in master.of("nowhere")] == [TaskState.FAILED]  # never RUNNING
    actor.launch_tasks(FW, [shell("after", "exit 7")])
    assert (await terminal(master, "after")).exit_code == 7


async def test_what_left_the_task_group_is_killed_through_its_cgroup_by_the_supervisor(
    agent: tuple[AgentActor, FakeMaster], tmp_path: Path
) -> None:
    actor, master = agent
    if not actor.isolator.kind.startswith("cgroups"):
        pytest.skip("needs cgroups")
    # The task's child leaves its process group (a session of its own): only its cgroup
    # still holds it, and it must not outlive the task.
    escaped = tmp_path / "escaped"
    leave = f"setsid sh -c 'echo $$ > {escaped}.tmp; mv {escaped}.tmp {escaped}; exec sleep 30'"
    actor.launch_tasks(
        FW, [shell("leaver", f"{leave} & while [ ! -s {escaped} ]; do sleep 0.01; done")]
    )
    assert (await terminal(master, "leaver")).state == TaskState.FINISHED
    pid = int(escaped.read_text())
    await assert_eventually(lambda: not alive(pid), timeout_s=5, what="the escaped process ends")
