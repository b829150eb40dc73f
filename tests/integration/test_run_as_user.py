"""Tasks run as a user (#14): a root `mesoslite-agent` process against a real master switches
each task to the user it names (or its framework's), gives it its sandbox, refuses root
unless allowed, and still recovers the exit code of a switched task after a SIGKILL."""

from __future__ import annotations

import asyncio
import os
import pwd
import signal
import stat
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from mesoslite._proto.v1 import common_pb2, scheduler_pb2

from .agent_support import (
    Daemon,
    Framework,
    assert_eventually,
    shell_task,
    start_agent,
    start_master,
)

S = common_pb2.TaskState
TEST_USER = "mesoslite-test"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")


@pytest.fixture(scope="module")
def task_user() -> Iterator[pwd.struct_passwd]:
    """`mesoslite-test`, a system user made for these tests (removed after, if we made it)."""
    created = False
    try:
        pwd.getpwnam(TEST_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", TEST_USER],
            check=True, capture_output=True, timeout=30,
        )
        created = True
    try:
        yield pwd.getpwnam(TEST_USER)
    finally:
        if created:
            subprocess.run(["userdel", TEST_USER], capture_output=True, timeout=30)


class Cluster:
    """A master and agents as processes, each ended by its pid (and what it left)."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.master, self.address = start_master(tmp / "master")
        self.agents: list[Daemon] = []

    def agent(self, *flags: str) -> Daemon:
        daemon = start_agent(self.address, self.agent_dir, *flags)
        self.agents.append(daemon)
        return daemon

    @property
    def agent_dir(self) -> Path:
        return self.tmp / "agent"

    def sandbox(self, framework_id: str, task_id: str) -> Path:
        return self.agent_dir / "sandboxes" / framework_id / task_id

    def stop(self) -> None:
        for agent in self.agents:
            agent.stop()
        self.master.stop()
        for agent in self.agents:  # shown by pytest only when the test failed
            print("--- agent log\n", agent.log_tail())
        print("--- master log\n", self.master.log_tail())


class UserFramework(Framework):
    """The raw framework of `agent_support`, subscribing with a `FrameworkInfo.user`."""

    async def subscribe_as(self, user: str) -> UserFramework:
        info = common_pb2.FrameworkInfo(name="as-user", user=user, failover_timeout_s=300)
        call = self.scheduler.Subscribe(scheduler_pb2.SubscribeRequest(framework_info=info))
        self._reader = asyncio.create_task(self._read(call))
        await asyncio.wait_for(self._subscribed.wait(), 10)
        return self


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp_path)
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture
async def framework(cluster: Cluster) -> AsyncIterator[UserFramework]:
    fw = UserFramework(cluster.address)
    try:
        yield fw
    finally:
        await fw.close()


def as_user(task_id: str, command: str, user: str, **kw: Any) -> Any:
    task = shell_task(task_id, command, **kw)
    task.command.user = user
    return task


async def finished_stdout(fw: Framework, cluster: Cluster, task_id: str) -> list[str]:
    status = await _terminal(fw, task_id)
    assert status.state == S.TASK_FINISHED, status
    return (cluster.sandbox(fw.id, task_id) / "stdout").read_text().split()


async def _terminal(fw: Framework, task_id: str, timeout_s: float = 15.0) -> Any:
    final = (S.TASK_FINISHED, S.TASK_FAILED, S.TASK_KILLED, S.TASK_ERROR, S.TASK_LOST)

    def find() -> Any:
        return next((u for u in fw.updates_of(task_id) if u.state in final), None)

    return await assert_eventually(find, timeout_s=timeout_s, what=f"{task_id} terminal")


async def test_a_task_runs_as_its_user_in_a_sandbox_only_that_user_can_read(
    cluster: Cluster, framework: UserFramework, task_user: pwd.struct_passwd
) -> None:
    agent = cluster.agent()
    await framework.subscribe_as("")
    # `kill $PPID`: the wrapper stays root, so the task can neither kill it nor forge its
    # exit status; /proc/self/cgroup: the switched task is still in its cgroups.
    script = (
        'id -u; id -g; echo "$USER"; kill -9 $PPID 2>/dev/null && echo killed || echo refused; '
        "cat /proc/self/cgroup > cgroups"
    )
    await framework.launch(as_user("t1", script, TEST_USER))
    out = await finished_stdout(framework, cluster, "t1")
    assert out == [str(task_user.pw_uid), str(task_user.pw_gid), TEST_USER, "refused"]
    sandbox = cluster.sandbox(framework.id, "t1")
    st = sandbox.stat()
    assert (st.st_uid, st.st_gid) == (task_user.pw_uid, task_user.pw_gid)
    assert stat.S_IMODE(st.st_mode) == 0o700
    for name in ("stdout", "stderr"):
        assert (sandbox / name).stat().st_uid == task_user.pw_uid
    # The root wrapper appends the code to the agent's exit log, which stays root's.
    exit_files = list(cluster.agent_dir.rglob("exits"))
    assert exit_files and all(f.stat().st_uid == 0 for f in exit_files)
    isolation = (await framework.agents())[0].agent_info.attributes
    if any(a.name == "isolation" and a.value.startswith("cgroups") for a in isolation):
        # Task cgroups are pooled (named by slot, not by task): the task is in one of them.
        assert "/mesoslite-" in (sandbox / "cgroups").read_text()
    assert agent.proc is not None and agent.proc.poll() is None


async def test_a_task_naming_no_user_runs_as_its_frameworks_user(
    cluster: Cluster, framework: UserFramework, task_user: pwd.struct_passwd
) -> None:
    cluster.agent()
    await framework.subscribe_as(TEST_USER)
    await framework.launch(shell_task("t1", "id -u"), as_user("t2", "id -u", "nobody"))
    assert await finished_stdout(framework, cluster, "t1") == [str(task_user.pw_uid)]
    # The task's own user wins over its framework's.
    assert await finished_stdout(framework, cluster, "t2") == [str(pwd.getpwnam("nobody").pw_uid)]


async def test_a_root_agent_refuses_root_tasks_unless_allowed(
    cluster: Cluster, framework: UserFramework, task_user: pwd.struct_passwd
) -> None:
    cluster.agent("--no-allow-root-tasks")
    await framework.subscribe_as("")
    await framework.launch(
        as_user("named-root", "touch ran", "root"),
        shell_task("no-user", "touch ran"),
        as_user("fine", "id -u", TEST_USER),
    )
    named = await _terminal(framework, "named-root")
    assert named.state == S.TASK_FAILED and named.reason == "LAUNCH_FAILED"
    assert "'root'" in named.message and "--allow-root-tasks" in named.message
    unnamed = await _terminal(framework, "no-user")
    assert unnamed.state == S.TASK_FAILED
    assert "names no user" in unnamed.message and "--allow-root-tasks" in unnamed.message
    for task_id in ("named-root", "no-user"):
        assert not (cluster.sandbox(framework.id, task_id) / "ran").exists()
    assert await finished_stdout(framework, cluster, "fine") == [str(task_user.pw_uid)]


async def test_an_agent_allowing_root_tasks_runs_them_as_root(
    cluster: Cluster, framework: UserFramework
) -> None:
    cluster.agent("--allow-root-tasks")
    await framework.subscribe_as("")
    await framework.launch(as_user("t1", "id -u", "root"), shell_task("t2", "id -u"))
    assert await finished_stdout(framework, cluster, "t1") == ["0"]
    assert await finished_stdout(framework, cluster, "t2") == ["0"]


async def test_an_unknown_user_fails_the_task_naming_the_user(
    cluster: Cluster, framework: UserFramework
) -> None:
    agent = cluster.agent()
    await framework.subscribe_as("")
    await framework.launch(as_user("t1", "true", "no-such-user-14"), shell_task("t2", "true"))
    status = await _terminal(framework, "t1")
    assert status.state == S.TASK_FAILED and status.reason == "LAUNCH_FAILED"
    assert status.message == "user 'no-such-user-14' does not exist on this agent"
    assert not status.has_exit_code
    assert (await _terminal(framework, "t2")).state == S.TASK_FINISHED  # the agent goes on
    assert agent.proc is not None and agent.proc.poll() is None


async def test_no_switch_user_runs_every_task_as_the_agents_user(
    cluster: Cluster, framework: UserFramework, task_user: pwd.struct_passwd
) -> None:
    cluster.agent("--no-switch-user")
    await framework.subscribe_as("")
    await framework.launch(as_user("t1", "id -u", TEST_USER))
    assert await finished_stdout(framework, cluster, "t1") == [str(os.geteuid())]
    assert cluster.sandbox(framework.id, "t1").stat().st_uid == os.geteuid()


async def test_a_command_health_check_runs_as_the_tasks_user(
    cluster: Cluster, framework: UserFramework, task_user: pwd.struct_passwd
) -> None:
    cluster.agent()
    await framework.subscribe_as("")
    check = common_pb2.HealthCheck(
        type=common_pb2.HealthCheck.COMMAND,
        command=f'test "$(id -u)" = {task_user.pw_uid}',
        interval_s=0.2, timeout_s=5, consecutive_failures=3,
    )
    await framework.launch(as_user("t1", "sleep 30", TEST_USER, health_check=check))

    def health() -> Any:
        return next((u for u in framework.updates_of("t1") if u.has_healthy), None)

    first = await assert_eventually(health, timeout_s=15, what="a health result")
    assert first.healthy, first.message
    await framework.kill("t1")
    assert (await _terminal(framework, "t1")).state == S.TASK_KILLED


async def test_a_sigkilled_agent_still_reports_the_exit_code_of_a_switched_task(
    cluster: Cluster, framework: UserFramework, task_user: pwd.struct_passwd
) -> None:
    agent = cluster.agent()
    await framework.subscribe_as("")
    # The gate is in its sandbox: the task's user cannot reach the test's tmp dir.
    await framework.launch(
        as_user("t1", "echo up; while [ ! -e gate ]; do sleep 0.05; done; exit 7", TEST_USER)
    )
    stdout = cluster.sandbox(framework.id, "t1") / "stdout"
    await assert_eventually(lambda: stdout.exists() and stdout.read_text() == "up\n")
    agent.remember_descendants()  # the wrapper and its command: ended by pid if we fail
    agent.signal(signal.SIGKILL)
    agent.wait(10)
    (cluster.sandbox(framework.id, "t1") / "gate").touch()  # it ends while no agent runs
    # The root wrapper appends "<tag> 7" to the agent's exit log, which stays root's.
    def exit_line() -> Path | None:
        return next(
            (f for f in cluster.agent_dir.rglob("exits") if f.read_text().endswith(" 7\n")), None
        )

    exit_file = await assert_eventually(exit_line, what="the exit code in the exit log")
    assert exit_file.stat().st_uid == 0
    cluster.agent()
    status = await _terminal(framework, "t1", timeout_s=20)
    assert (status.state, status.has_exit_code, status.exit_code) == (S.TASK_FAILED, True, 7)
