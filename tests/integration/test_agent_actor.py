"""`AgentActor` with its real launcher and real processes, and a fake master on the other end.

Only what needs real processes is here; the decisions (resources, kills and grace periods,
resends, acknowledgements, health results, recovery) are tested on `AgentState` in virtual
time in tests/unit/agent/test_agent_state.py.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mesoslite.agent.actor import AgentActor
from mesoslite.agent.messages import FileChunkOut, Outgoing, StatusUpdatesOut
from mesoslite.agent.supervisor import read_pidfile
from mesoslite.clock import VirtualClock
from mesoslite.ids import AgentId, FrameworkId, TaskId
from mesoslite.model import CommandSpec, HealthCheckSpec, TaskSpec, TaskState, TaskStatus
from mesoslite.resources import parse_resources

from .agent_support import alive, assert_eventually, group_members

FW = FrameworkId("fw-1")
SMALL = parse_resources("cpus:0.1;mem:16")


class FakeMaster:
    """Collects what the actor sends."""

    def __init__(self) -> None:
        self.sent: list[Outgoing] = []

    def send(self, item: Outgoing) -> bool:
        self.sent.append(item)
        return True

    @property
    def messages(self) -> list[StatusUpdatesOut]:
        return [m for m in self.sent if isinstance(m, StatusUpdatesOut)]

    @property
    def updates(self) -> list[TaskStatus]:
        return [s for m in self.messages for s in m.statuses]

    def of(self, task_id: str) -> list[TaskStatus]:
        return [u for u in self.updates if u.task_id == task_id]

    def terminal(self, task_id: str) -> TaskStatus | None:
        return next((u for u in self.of(task_id) if u.state.terminal), None)

    def chunks(self) -> list[FileChunkOut]:
        return [m for m in self.sent if isinstance(m, FileChunkOut)]


# Both task launchers: the agents' default, the task supervisor (agent/supervisor.py), and
# the wrapper (--task-launcher wrapper, and the fallback): each must behave the same.
LAUNCHERS = ("supervisor", "wrapper")


@pytest.fixture(params=LAUNCHERS)
async def agent(
    tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[tuple[AgentActor, FakeMaster]]:
    actor = AgentActor(
        work_dir=tmp_path,
        hostname="h1",
        resources=parse_resources("cpus:2;mem:256"),
        attributes={"rack": "r1"},
        kill_grace_period_s=0.5,
        status_update_retry_s=0.3,
        recover="cleanup",
        task_launcher=request.param,
    )
    master = FakeMaster()
    actor.start(master)
    actor.registered(AgentId("ag-1"))
    try:
        yield actor, master
    finally:
        await actor.stop(flush_s=0)
        supervisor = read_pidfile(tmp_path)
        # With no agent and no task left it ends by itself.
        if supervisor is not None:
            await assert_eventually(lambda: not alive(supervisor), what="the supervisor gone")


def supervised(actor: AgentActor) -> bool:
    """True if the actor's tasks are children of its task supervisor (not wrapped)."""
    mode = actor.launcher.supervisor
    return mode is not None and mode.client is not None


def shell(task_id: str, command: str, resources: str = "", **kw: object) -> TaskSpec:
    res = parse_resources(resources) if resources else SMALL
    return TaskSpec(TaskId(task_id), CommandSpec.of_shell(command), res, **kw)  # type: ignore[arg-type]


async def ready(actor: AgentActor, task_id: str) -> None:
    """Wait until the task printed "ready" (its traps are set: the wrapper starts it ~2 ms
    after the launch)."""
    out = actor.work_dir / "sandboxes" / FW / task_id / "stdout"
    await assert_eventually(lambda: out.exists() and out.read_text().strip() == "ready")


async def terminal(master: FakeMaster, task_id: str, timeout_s: float = 10.0) -> TaskStatus:
    status: TaskStatus = await assert_eventually(
        lambda: master.terminal(task_id), timeout_s=timeout_s, what=f"{task_id} terminal"
    )
    return status


async def test_a_shell_task_runs_in_its_sandbox_with_the_mesoslite_environment(
    agent: tuple[AgentActor, FakeMaster], tmp_path: Path
) -> None:
    actor, master = agent
    actor.launch_tasks(
        FW,
        [
            shell(
                "t1",
                'echo hello; echo "$MESOSLITE_TASK_ID $MESOSLITE_FRAMEWORK_ID '
                '$MESOSLITE_AGENT_ID $MESOSLITE_SANDBOX $PWD $GREETING" ; echo oops >&2',
                labels={},
            )
        ],
    )
    done = await terminal(master, "t1")
    assert [u.state for u in master.of("t1")] == [TaskState.RUNNING, TaskState.FINISHED]
    assert (done.exit_code, done.reason) == (0, "COMMAND_EXITED")
    sandbox = tmp_path / "sandboxes" / "fw-1" / "t1"
    assert (sandbox / "stdout").read_text() == f"hello\nt1 fw-1 ag-1 {sandbox} {sandbox} \n"
    assert (sandbox / "stderr").read_text() == "oops\n"


async def test_the_task_environment_is_added_to_the_agents(
    agent: tuple[AgentActor, FakeMaster], tmp_path: Path
) -> None:
    actor, master = agent
    cmd = CommandSpec.of_argv(
        ["/bin/sh", "-c", "echo $GREETING:$PATH"], environment={"GREETING": "hi"}
    )
    actor.launch_tasks(FW, [TaskSpec(TaskId("t1"), cmd, SMALL)])
    await terminal(master, "t1")
    out = (tmp_path / "sandboxes" / "fw-1" / "t1" / "stdout").read_text()
    assert out == f"hi:{os.environ['PATH']}\n"


async def test_a_failing_command_is_task_failed_with_its_exit_code(
    agent: tuple[AgentActor, FakeMaster],
) -> None:
    actor, master = agent
    actor.launch_tasks(FW, [shell("t1", "exit 3")])
    done = await terminal(master, "t1")
    assert (done.state, done.exit_code, done.reason) == (TaskState.FAILED, 3, "COMMAND_EXITED")
    assert done.message == "command exited with status 3"


async def test_a_missing_executable_is_task_failed_naming_it(
    agent: tuple[AgentActor, FakeMaster],
) -> None:
    actor, master = agent
    cmd = CommandSpec.of_argv(["no-such-program-xyz", "arg"])
    actor.launch_tasks(FW, [TaskSpec(TaskId("t1"), cmd, SMALL), shell("t2", "true")])
    done = await terminal(master, "t1")
    assert done.state == TaskState.FAILED
    assert "'no-such-program-xyz'" in done.message
    assert done.exit_code is None
    assert (await terminal(master, "t2")).state == TaskState.FINISHED  # the agent carries on


async def test_updates_made_together_travel_in_one_message(
    agent: tuple[AgentActor, FakeMaster],
) -> None:
    actor, master = agent
    actor.launch_tasks(FW, [shell(f"t{i}", "sleep 30", "cpus:0.01;mem:1") for i in range(20)])
    # 20 real spawns (each with its cgroups) took over 10 s on a loaded 2-core machine.
    await assert_eventually(lambda: len(master.updates) == 20, timeout_s=30)
    assert len(master.messages) == 1


async def test_a_killed_task_is_task_killed_and_nothing_of_its_group_survives(
    agent: tuple[AgentActor, FakeMaster], tmp_path: Path
) -> None:
    actor, master = agent
    # The background child ignores SIGTERM: only the SIGKILL to the group after the main
    # process exits ends it.
    actor.launch_tasks(FW, [shell("t1", "(trap '' TERM; exec sleep 60) & echo $$; exec sleep 60")])
    stdout = tmp_path / "sandboxes" / "fw-1" / "t1" / "stdout"
    shell_pid = int(
        await assert_eventually(lambda: stdout.exists() and stdout.read_text().strip())
    )
    # The group: the shell and the background child; with the wrapper also the task's
    # wrapper, its leader (the supervisor's child leads its own group).
    pgid = os.getpgid(shell_pid)
    if supervised(actor):
        assert pgid == shell_pid
    await assert_eventually(lambda: len(group_members(pgid)) == (2 if supervised(actor) else 3))
    actor.kill_task(FW, TaskId("t1"), 0.0)
    done = await terminal(master, "t1")
    assert (done.state, done.reason, done.exit_code) == (
        TaskState.KILLED,
        "TASK_KILLED",
        -signal.SIGTERM,
    )
    await assert_eventually(lambda: not group_members(pgid), timeout_s=2)


async def test_a_task_ignoring_sigterm_is_sigkilled_after_its_grace_period(
    agent: tuple[AgentActor, FakeMaster],
) -> None:
    actor, master = agent
    actor.launch_tasks(
        FW, [shell("t1", "trap '' TERM; echo ready; sleep 60", kill_grace_period_s=0.3)]
    )
    await assert_eventually(lambda: master.of("t1"))
    await ready(actor, "t1")
    started = time.monotonic()
    actor.kill_task(FW, TaskId("t1"), 0.0)
    done = await terminal(master, "t1")
    assert time.monotonic() - started >= 0.3
    assert (done.state, done.exit_code) == (TaskState.KILLED, -signal.SIGKILL)


async def test_a_finished_task_leaves_no_background_process_behind(
    agent: tuple[AgentActor, FakeMaster], tmp_path: Path
) -> None:
    actor, master = agent
    actor.launch_tasks(FW, [shell("t1", "sleep 60 & echo $!")])
    done = await terminal(master, "t1")
    assert done.state == TaskState.FINISHED
    child = int((tmp_path / "sandboxes" / "fw-1" / "t1" / "stdout").read_text())
    await assert_eventually(lambda: not alive(child), timeout_s=2)


async def test_read_file_reads_a_range_and_reports_bad_requests(
    agent: tuple[AgentActor, FakeMaster],
) -> None:
    actor, master = agent
    actor.launch_tasks(FW, [shell("t1", "printf 0123456789")])
    await terminal(master, "t1")
    actor.read_file(1, FW, "t1", "stdout", 2, 3)
    actor.read_file(2, FW, "t1", "passwd", 0, 10)
    actor.read_file(3, FW, "nope", "stdout", 0, 10)
    actor.read_file(4, FW, "../..", "stdout", 0, 10)
    actor.read_file(5, FW, "t1", "stdout", 100, 10)
    chunks = {
        c.request_id: c
        for c in await assert_eventually(lambda: len(master.chunks()) == 5 and master.chunks())
    }
    assert (chunks[1].data, chunks[1].size, chunks[1].error) == (b"234", 10, "")
    assert "must be one of stdout, stderr, got 'passwd'" in chunks[2].error
    assert chunks[3].error == "task 'nope' has no sandbox on this agent"
    assert "has no sandbox" in chunks[4].error
    assert (chunks[5].data, chunks[5].size) == (b"", 10)


async def test_an_unknown_user_is_task_failed_naming_it(
    agent: tuple[AgentActor, FakeMaster],
) -> None:
    actor, master = agent
    cmd = CommandSpec.of_shell("true", user="no-such-user-xyz")
    actor.launch_tasks(FW, [TaskSpec(TaskId("t1"), cmd, SMALL)])
    done = await terminal(master, "t1")
    assert done.state == TaskState.FAILED
    assert "'no-such-user-xyz'" in done.message


@pytest.mark.skipif(os.geteuid() != 0, reason="running as another user needs root")
async def test_as_root_a_task_runs_as_its_user(
    agent: tuple[AgentActor, FakeMaster], tmp_path: Path
) -> None:
    actor, master = agent
    nobody = pwd.getpwnam("nobody")
    cmd = CommandSpec.of_shell("id -u; id -g; echo $USER", user="nobody")
    actor.launch_tasks(FW, [TaskSpec(TaskId("t1"), cmd, SMALL)])
    assert (await terminal(master, "t1")).state == TaskState.FINISHED
    out = (tmp_path / "sandboxes" / "fw-1" / "t1" / "stdout").read_text().split()
    assert out == [str(nobody.pw_uid), str(nobody.pw_gid), "nobody"]


@pytest.mark.parametrize("launcher", LAUNCHERS)
async def test_stopping_kills_every_task_and_reports_it(tmp_path: Path, launcher: str) -> None:
    actor = AgentActor(
        work_dir=tmp_path,
        hostname="h1",
        resources=parse_resources("cpus:2;mem:256"),
        attributes={},
        kill_grace_period_s=0.3,
        status_update_retry_s=5,
        recover="cleanup",
        task_launcher=launcher,
    )
    master = FakeMaster()
    actor.start(master)
    actor.registered(AgentId("ag-1"))
    actor.launch_tasks(FW, [shell("a", "sleep 60"), shell("b", "trap '' TERM; sleep 60")])
    await assert_eventually(lambda: len(actor.launcher.running) == 2)
    pids = list(actor.launcher.running)
    await actor.stop(flush_s=0)
    assert {u.task_id: u.state for u in master.updates if u.state.terminal} == {
        "a": TaskState.KILLED,
        "b": TaskState.KILLED,
    }
    assert not any(alive(pid) for pid in pids)
    assert (tmp_path / "agent_id").read_text().strip() == "ag-1"


async def test_the_actors_timers_run_on_its_injected_clock(tmp_path: Path) -> None:
    clock = VirtualClock()
    actor = AgentActor(
        work_dir=tmp_path,
        hostname="h1",
        resources=parse_resources("cpus:2;mem:256"),
        attributes={},
        kill_grace_period_s=5.0,
        status_update_retry_s=5,
        recover="cleanup",
        clock=clock,
    )
    master = FakeMaster()
    actor.start(master)
    actor.registered(AgentId("ag-1"))
    key = (FW, TaskId("t1"))
    try:
        actor.launch_tasks(FW, [shell("t1", "trap '' TERM; echo ready; sleep 60")])
        await ready(actor, "t1")
        assert master.updates == []  # the flush window is on the clock
        clock.advance(0.01)
        assert [u.state for u in master.of("t1")] == [TaskState.RUNNING]
        actor.kill_task(FW, TaskId("t1"), 0.0)
        await asyncio.sleep(0.3)  # real time passes, the 5 s grace does not
        assert key in actor.processes and master.terminal("t1") is None
        clock.advance(5.0)
        await assert_eventually(lambda: key not in actor.processes, timeout_s=5)
        clock.advance(0.01)
        done = master.terminal("t1")
        assert done is not None
        assert (done.state, done.exit_code) == (TaskState.KILLED, -signal.SIGKILL)
    finally:
        await actor.stop(flush_s=0)


# ---------------------------------------------------------------------- limits (issue 6)

HOG = f"{sys.executable} -c 'b = bytearray(256 * 1024 * 1024); import time; time.sleep(30)'"


def cgroups_v1_usable() -> bool:
    from mesoslite.agent.isolation import detect_isolator

    if os.geteuid() != 0:
        return False
    probe = detect_isolator(Path("/tmp"))
    usable = "memory" in probe.bases
    probe.close()  # the probe's (empty) directories
    return usable


@pytest.mark.skipif(not cgroups_v1_usable(), reason="needs root and a cgroup v1 memory hierarchy")
async def test_a_task_over_its_memory_cgroup_limit_is_task_failed_memory_limit(
    agent: tuple[AgentActor, FakeMaster],
) -> None:
    actor, master = agent
    assert actor.isolator.kind == "cgroups-v1:cpu,memory"
    assert actor.attributes["isolation"] == actor.isolator.kind
    actor.launch_tasks(FW, [shell("hog", HOG, "cpus:0.5;mem:64")])
    await assert_eventually(lambda: actor.processes.get((FW, TaskId("hog"))))
    launched = actor.processes.get((FW, TaskId("hog")))
    assert launched is not None and len(launched.cgroups) == 2
    memory_cg = next(c for c in launched.cgroups if "/memory/" in c)
    assert (Path(memory_cg) / "memory.limit_in_bytes").read_text().strip() == str(64 * 2**20)
    cpu_cg = next(c for c in launched.cgroups if "/cpu/" in c)
    assert (Path(cpu_cg) / "cpu.cfs_quota_us").read_text().strip() == "50000"
    done = await terminal(master, "hog")
    assert (done.state, done.reason) == (TaskState.FAILED, "MEMORY_LIMIT")
    assert done.message.startswith("killed: over its memory limit of 64 MB")
    assert not Path(memory_cg).exists()  # removed once the task ended


async def test_a_task_and_its_children_are_in_its_cpu_and_memory_cgroups_and_nothing_else_is(
    agent: tuple[AgentActor, FakeMaster], tmp_path: Path
) -> None:
    # The launchers join v1 cgroups through `tasks` (issue 15: no RCU grace period per
    # launch); the whole task must still be inside, and only the task: not the supervisor.
    actor, master = agent
    actor.launch_tasks(FW, [shell(
        "cg", "cat /proc/self/cgroup > mine; sleep 5 & cat /proc/$!/cgroup > child; "
        "echo $$ > pid; echo ready; wait", "cpus:0.5;mem:64",
    )])
    await ready(actor, "cg")
    launched = actor.processes.get((FW, TaskId("cg")))
    assert launched is not None and len(launched.cgroups) == 2
    sandbox = tmp_path / "sandboxes" / "fw-1" / "cg"
    for name in ("mine", "child"):
        lines = (sandbox / name).read_text().splitlines()
        for controller in ("cpu", "memory"):
            cg = next(c for c in launched.cgroups if f"/{controller}/" in c)
            entry = next(line for line in lines if controller in line.split(":")[1].split(","))
            assert cg.endswith(entry.split(":", 2)[2]), (name, cg, entry)
    members = {
        int(pid) for c in launched.cgroups for pid in Path(c, "cgroup.procs").read_text().split()
    }
    shell_pid = int((sandbox / "pid").read_text())
    assert members == set(group_members(os.getpgid(shell_pid))), members
    assert shell_pid in members and read_pidfile(tmp_path) not in members
    actor.kill_task(FW, TaskId("cg"), 0.0)
    assert (await terminal(master, "cg")).state == TaskState.KILLED


async def test_without_cgroups_psutil_kills_a_task_over_its_memory(tmp_path: Path) -> None:
    from mesoslite.agent.isolation import Isolator

    actor = AgentActor(
        work_dir=tmp_path,
        hostname="h1",
        resources=parse_resources("cpus:2;mem:1024"),
        attributes={},
        kill_grace_period_s=0.3,
        status_update_retry_s=5,
        recover="cleanup",
    )
    actor.isolator.close()  # the cgroup directories it made: this test runs without
    actor.isolator = Isolator({})
    master = FakeMaster()
    actor.start(master)
    actor.registered(AgentId("ag-1"))
    try:
        actor.launch_tasks(FW, [shell("hog", HOG, "cpus:0.5;mem:64"), shell("ok", "sleep 0.5")])
        done = await terminal(master, "hog")
        assert (done.state, done.reason) == (TaskState.FAILED, "MEMORY_LIMIT")
        assert (await terminal(master, "ok")).state == TaskState.FINISHED
    finally:
        await actor.stop(flush_s=0)


# ---------------------------------------------------------------------- health checks (issue 6)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_a_task_failing_its_command_check_is_killed_after_its_consecutive_failures(
    agent: tuple[AgentActor, FakeMaster], tmp_path: Path
) -> None:
    actor, master = agent
    flag = tmp_path / "healthy"
    flag.touch()
    hc = HealthCheckSpec(
        "command", command=f"test -e {flag}", interval_s=0.1, timeout_s=2,
        grace_period_s=0, consecutive_failures=3,
    )
    actor.launch_tasks(FW, [shell("t1", "sleep 60", health_check=hc)])
    healthy = await assert_eventually(lambda: [u for u in master.of("t1") if u.healthy])
    assert (healthy[0].state, healthy[0].reason) == (
        TaskState.RUNNING, "TASK_HEALTH_CHECK_STATUS_UPDATED",
    )
    flag.unlink()
    done = await terminal(master, "t1")
    assert (done.state, done.reason, done.healthy) == (TaskState.KILLED, "TASK_UNHEALTHY", False)
    assert "3 consecutive failures, the last: command exited with status 1" in done.message
    unhealthy = {u.uuid for u in master.of("t1") if u.healthy is False and not u.state.terminal}
    assert len(unhealthy) == 1  # reported once, when it changed (resent until acknowledged)


async def test_http_and_tcp_checks_pass_against_a_listening_task_and_fail_without_it(
    agent: tuple[AgentActor, FakeMaster],
) -> None:
    actor, master = agent
    port, port2 = free_port(), free_port()
    server = f"{sys.executable} -m http.server {port} --bind 127.0.0.1"
    fast = dict(interval_s=0.1, timeout_s=1, grace_period_s=30, consecutive_failures=2)
    actor.launch_tasks(
        FW,
        [
            shell("web", server, health_check=HealthCheckSpec("http", port=port, **fast)),  # type: ignore[arg-type]
            shell("tcp", server.replace(str(port), str(port2)),
                  health_check=HealthCheckSpec("tcp", port=port2, **fast)),  # type: ignore[arg-type]
            # Nothing listens on its port: failures within the grace period do not count,
            # so it is never killed (30 s grace) and never reported healthy.
            shell("deaf", "sleep 60",
                  health_check=HealthCheckSpec("tcp", port=free_port(), **fast)),  # type: ignore[arg-type]
        ],
    )
    for t in ("web", "tcp"):
        await assert_eventually(lambda t=t: [u for u in master.of(t) if u.healthy], what=t)
    await asyncio.sleep(0.5)
    assert {u.healthy for u in master.of("deaf")} == {None}
    # The server goes: the http check fails twice in a row and the task is killed.
    web = actor.processes.get((FW, TaskId("web")))
    assert web is not None
    os.killpg(web.pid, signal.SIGSTOP)
    try:
        done = await terminal(master, "web")
    finally:
        os.killpg(web.pid, signal.SIGCONT)
    assert (done.state, done.reason) == (TaskState.KILLED, "TASK_UNHEALTHY")
    assert "no answer within 1s" in done.message


# ---------------------------------------------------------------------- sandbox gc (issue 6)


async def test_old_sandboxes_of_forgotten_tasks_are_removed_and_live_ones_kept(
    tmp_path: Path,
) -> None:
    actor = AgentActor(
        work_dir=tmp_path,
        hostname="h1",
        resources=parse_resources("cpus:2;mem:256"),
        attributes={},
        kill_grace_period_s=0.3,
        status_update_retry_s=5,
        recover="cleanup",
        sandbox_gc_age_s=0.4,
    )
    master = FakeMaster()
    actor.start(master)
    actor.registered(AgentId("ag-1"))
    sandboxes = tmp_path / "sandboxes" / FW
    try:
        actor.launch_tasks(FW, [shell("done", "echo hi"), shell("unacked", "true"),
                                shell("running", "sleep 60")])
        done = await terminal(master, "done")
        await terminal(master, "unacked")
        actor.acknowledge([(FW, TaskId("done"), u.uuid) for u in master.of("done")])
        assert (FW, TaskId("done")) not in actor.tasks
        await assert_eventually(lambda: not (sandboxes / "done").exists(), timeout_s=5)
        assert done.state == TaskState.FINISHED
        # Held by the agent: kept however old.
        assert (sandboxes / "unacked").is_dir() and (sandboxes / "running").is_dir()
    finally:
        await actor.stop(flush_s=0)


@pytest.mark.parametrize("kind", ["c", "perl"])
async def test_both_wrappers_report_exit_codes_and_signals_and_write_them_down(
    tmp_path: Path, kind: str
) -> None:
    import shutil as sh

    from mesoslite.agent.task_binaries import WRAPPER_PERL

    actor = AgentActor(
        work_dir=tmp_path,
        hostname="h1",
        resources=parse_resources("cpus:2;mem:256"),
        attributes={},
        kill_grace_period_s=0.3,
        status_update_retry_s=5,
        recover="cleanup",
    )
    wrapper = actor.launcher.wrapper
    if kind == "c":
        if sh.which("cc") is None and sh.which("gcc") is None:
            pytest.skip("no C compiler on this host")
        assert wrapper is not None and "mesoslite-wrapper-" in wrapper[0]
    else:
        if sh.which("perl") is None:
            pytest.skip("no perl on this host")
        actor.launcher.wrapper = [str(sh.which("perl")), "-e", WRAPPER_PERL]
    master = FakeMaster()
    actor.start(master)
    actor.registered(AgentId("ag-1"))
    try:
        actor.launch_tasks(FW, [shell("ok", "true"), shell("three", "exit 3"),
                                shell("term", "kill -TERM $$")])
        assert (await terminal(master, "ok")).exit_code == 0
        assert (await terminal(master, "three")).exit_code == 3
        assert (await terminal(master, "term")).exit_code == -signal.SIGTERM
        codes = (tmp_path / "meta" / "exits").read_text().split()[1::2]
        assert sorted(codes) == ["-15", "0", "3"]
    finally:
        await actor.stop(flush_s=0)


@pytest.mark.skipif(not cgroups_v1_usable(), reason="needs root and a cgroup v1 memory hierarchy")
@pytest.mark.parametrize("launcher", LAUNCHERS)
async def test_a_stopping_agent_leaves_no_empty_cgroup_behind(
    tmp_path: Path, launcher: str
) -> None:
    actor = AgentActor(
        work_dir=tmp_path,
        hostname="h1",
        resources=parse_resources("cpus:2;mem:256"),
        attributes={},
        kill_grace_period_s=0.3,
        status_update_retry_s=5,
        recover="cleanup",
        task_launcher=launcher,
    )
    master = FakeMaster()
    actor.start(master)
    actor.registered(AgentId("ag-1"))
    bases = list(actor.isolator.bases.values())
    assert len(bases) == 2
    actor.launch_tasks(FW, [shell("t1", "true"), shell("t2", "sleep 60")])
    await terminal(master, "t1")
    t2 = (FW, TaskId("t2"))
    await assert_eventually(lambda: t2 in actor.processes)
    assert all(Path(c).is_dir() for c in actor.processes[t2].cgroups)
    await actor.stop(flush_s=0)
    assert not any(b.exists() for b in bases)
