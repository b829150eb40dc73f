"""Tasks run as a user (#14), one level down: both task wrappers switch the command they fork
(and only it), the unwrapped launch switches through Popen, a task's environment cannot ask
for a user, and the agent never follows what a task user planted in its sandbox."""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import subprocess
from pathlib import Path

import pytest

from mesoslite.agent.launcher import LaunchedTask, TaskLauncher
from mesoslite.agent.sandbox import read_sandbox_file
from mesoslite.agent.task_binaries import WRAPPER_PERL, find_wrapper
from mesoslite.agent.users import RUN_AS_ENV, RunAsPolicy, UserRefused
from mesoslite.ids import FrameworkId, TaskId
from mesoslite.model import CommandSpec, TaskSpec
from mesoslite.resources import parse_resources

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")
NOBODY = pwd.getpwnam("nobody")
FW = FrameworkId("fw-1")


def wrapper_of(kind: str, work_dir: Path) -> list[str]:
    if kind == "perl":
        perl = shutil.which("perl")
        if perl is None:
            pytest.skip("no perl on this host")
        return [perl, "-e", WRAPPER_PERL]
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        pytest.skip("no C compiler on this host")
    found = find_wrapper(work_dir)
    assert found is not None and "mesoslite-wrapper-" in found[0]
    return found


@root_only
@pytest.mark.parametrize("kind", ["c", "perl"])
def test_the_wrapper_switches_the_command_and_writes_its_exit_status_as_root(
    tmp_path: Path, kind: str
) -> None:
    wrapper = wrapper_of(kind, tmp_path)
    status = tmp_path / "exits"
    env = {**os.environ, RUN_AS_ENV: f"{NOBODY.pw_uid} {NOBODY.pw_gid} {NOBODY.pw_gid}"}
    script = f'id -u; id -g; id -G; echo "run_as=${RUN_AS_ENV}"; exit 5'
    done = subprocess.run(
        [*wrapper, str(status), "t1", "", "/bin/sh", "-c", script],
        env=env, capture_output=True, text=True, timeout=30,
    )
    assert done.returncode == 5, done.stderr
    uid, gid, groups = str(NOBODY.pw_uid), str(NOBODY.pw_gid), str(NOBODY.pw_gid)
    assert done.stdout.split() == [uid, gid, groups, "run_as="]  # no root groups kept
    assert status.read_text() == "t1 5\n" and status.stat().st_uid == 0


@root_only
@pytest.mark.parametrize("kind", ["c", "perl"])
def test_the_wrapper_never_switches_to_root(tmp_path: Path, kind: str) -> None:
    wrapper = wrapper_of(kind, tmp_path)
    env = {**os.environ, RUN_AS_ENV: "0 0 0"}
    done = subprocess.run(
        [*wrapper, "", "", "", "/bin/sh", "-c", "echo ran"],
        env=env, capture_output=True, text=True, timeout=30,
    )
    assert (done.returncode, done.stdout) == (127, "")
    assert "mesoslite: cannot switch to 0 0 0" in done.stderr


async def run_task(launcher: TaskLauncher, task: TaskSpec) -> tuple[int, list[str]]:
    """Launch `task`, wait for its exit; its exit code and its stdout's words."""
    done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    launcher._on_exit = lambda _t, code: done.set_result(code)  # type: ignore[method-assign]
    launched: LaunchedTask = launcher.launch(FW, task)
    code = await asyncio.wait_for(done, 10)
    return code, (launched.sandbox / "stdout").read_text().split()


@root_only
@pytest.mark.parametrize("wrapped", [True, False])
async def test_a_task_environment_cannot_choose_its_user(tmp_path: Path, wrapped: bool) -> None:
    launcher = TaskLauncher(tmp_path, lambda _t, _c: None, RunAsPolicy(allow_root_tasks=True))
    try:
        if not wrapped:
            launcher.wrapper = None  # Popen switches the command itself
        forged = {RUN_AS_ENV: "0 0 0"}
        cmd = CommandSpec.of_shell("id -u; exit 3", environment=forged, user="nobody")
        task = TaskSpec(TaskId("named"), cmd, parse_resources("cpus:0.1;mem:16"))
        assert await run_task(launcher, task) == (3, [str(NOBODY.pw_uid)])
        to_nobody = {RUN_AS_ENV: f"{NOBODY.pw_uid} {NOBODY.pw_gid} {NOBODY.pw_gid}"}
        cmd = CommandSpec.of_shell("id -u", environment=to_nobody)
        task = TaskSpec(TaskId("unnamed"), cmd, parse_resources("cpus:0.1;mem:16"))
        assert await run_task(launcher, task) == (0, ["0"])  # the agent's user: root
    finally:
        launcher.close()


def test_sandbox_reads_never_follow_a_symlink_or_block_on_a_fifo(tmp_path: Path) -> None:
    sandbox = tmp_path / "sandboxes" / FW / "t1"
    sandbox.mkdir(parents=True)
    secret = tmp_path / "secret"
    secret.write_text("root only")
    (sandbox / "stdout").symlink_to(secret)
    os.mkfifo(sandbox / "stderr")
    data, size, error = read_sandbox_file(tmp_path, FW, "t1", "stdout", 0, 100)
    assert (data, size) == (b"", 0) and "cannot read stdout of task 't1'" in error
    data, size, error = read_sandbox_file(tmp_path, FW, "t1", "stderr", 0, 100)
    assert (data, size, error) == (b"", 0, "stderr of task 't1' is not a regular file")


def test_the_policy_decides_who_runs_each_task_without_running_anything() -> None:
    as_nobody = RunAsPolicy(agent_uid=NOBODY.pw_uid)  # an agent that is not root
    assert as_nobody.resolve("") is None and as_nobody.resolve("nobody") is None
    with pytest.raises(UserRefused, match="cannot run the task as user 'root'.*not root"):
        as_nobody.resolve("root")
    root = RunAsPolicy(agent_uid=0, allow_root_tasks=False)
    user = root.resolve("nobody")
    assert user is not None and (user.uid, user.gid) == (NOBODY.pw_uid, NOBODY.pw_gid)
    assert user.wrapper_env() == f"{NOBODY.pw_uid} {NOBODY.pw_gid} {NOBODY.pw_gid}"
    for name, says in [("root", "uid 0"), ("", "names no user"), ("-x", "expected a user")]:
        with pytest.raises(UserRefused, match=says):
            root.resolve(name)
    assert RunAsPolicy(agent_uid=0, allow_root_tasks=True).resolve("root") is None
    assert RunAsPolicy(agent_uid=0, switch_user=False).resolve("nobody") is None
