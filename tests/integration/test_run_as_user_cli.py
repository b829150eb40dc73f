"""Tasks run as a user (#14) from the user's side: `mesoslite run --user`, a job spec's
`user:`, against a real master and a root agent; malformed names are refused up front."""

from __future__ import annotations

import os
import pwd
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from mesoslite._proto.v1 import operator_pb2, operator_pb2_grpc
from mesoslite.errors import ValidationError
from mesoslite.jobs.spec import parse_job_spec

from .agent_support import BIN, Daemon, start_agent, start_master
from .test_run_as_user import TEST_USER, task_user  # noqa: F401  (the user fixture)

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")


def cli(master: str, *args: str, timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MESOSLITE_MASTER": master}
    return subprocess.run(
        [str(BIN / "mesoslite"), *args], env=env, capture_output=True, text=True,
        timeout=timeout_s,
    )


def wait_for_an_agent(address: str, timeout_s: float = 15) -> None:
    deadline = time.monotonic() + timeout_s
    with grpc.insecure_channel(address) as channel:
        stub = operator_pb2_grpc.OperatorStub(channel)
        while not stub.GetAgents(operator_pb2.GetAgentsRequest(), timeout=5).agents:
            assert time.monotonic() < deadline, "no agent registered"
            time.sleep(0.05)


@pytest.fixture
def daemons(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A master and a root agent refusing root tasks; yields the master and the agent dir."""
    master, address = start_master(tmp_path / "master")
    agent: Daemon | None = None
    try:
        agent = start_agent(address, tmp_path / "agent", "--no-allow-root-tasks")
        wait_for_an_agent(address)
        yield address, tmp_path / "agent"
    finally:
        if agent is not None:
            agent.stop()
        master.stop()
        print("--- agent log\n", agent.log_tail() if agent else "")
        print("--- master log\n", master.log_tail())


@root_only
def test_mesoslite_run_user_runs_the_task_as_that_user(
    daemons: tuple[str, Path], task_user: pwd.struct_passwd  # noqa: F811
) -> None:
    master, _ = daemons
    done = cli(master, "run", "--user", TEST_USER, "--", "id", "-u")
    assert (done.returncode, done.stdout.strip()) == (0, str(task_user.pw_uid)), done.stderr
    # Without --user the task would run as root, which this agent refuses, saying why.
    done = cli(master, "run", "--", "id", "-u")
    assert done.returncode == 65 and "--allow-root-tasks" in done.stderr, done.stderr
    done = cli(master, "run", "--user", "no-such-user-14", "--", "true")
    assert done.returncode == 65
    assert "user 'no-such-user-14' does not exist on this agent" in done.stderr


def test_mesoslite_run_refuses_a_malformed_user_before_contacting_anyone() -> None:
    done = cli("127.0.0.1:1", "run", "--user", "-rf", "--", "true", timeout_s=30)
    assert done.returncode == 2
    assert "--user: expected a user name" in done.stderr and "'-rf'" in done.stderr


@root_only
def test_a_job_with_a_user_runs_its_tasks_as_that_user(
    daemons: tuple[str, Path], task_user: pwd.struct_passwd, tmp_path: Path  # noqa: F811
) -> None:
    master, agent_dir = daemons
    spec = tmp_path / "job.yaml"
    spec.write_text(f"name: as-user\ntype: batch\ncommand: id -u\nuser: {TEST_USER}\n")
    done = cli(master, "job", "submit", "--wait", str(spec))
    assert done.returncode == 0, done.stdout + done.stderr
    outputs = [p.read_text().strip() for p in agent_dir.glob("sandboxes/*/*/stdout")]
    assert outputs == [str(task_user.pw_uid)]


@pytest.mark.parametrize("bad", ["a b", "-rf", "x:y", "a" * 33, "../etc"])
def test_a_job_spec_with_a_malformed_user_is_refused_naming_the_field(bad: str) -> None:
    with pytest.raises(ValidationError) as e:
        parse_job_spec(f"name: j\ntype: batch\ncommand: 'true'\nuser: {bad!r}\n")
    assert e.value.field == "user" and "expected a user name" in e.value.message
    ok = parse_job_spec("name: j\ntype: batch\ncommand: 'true'\nuser: svc_web-1\n")
    assert ok.command.user == "svc_web-1"
