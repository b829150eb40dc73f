"""`mesoslite run`'s fast path (issue 15): the light client (`mesoslite/fastrun.py`) against a
real master's `POST /run`, the CLI run as a subprocess.

Every run here goes through the installed `mesoslite` command (`scripts/mesoslite`) with
`PYTHONPROFILEIMPORTTIME=1`, and `_run` fails the test if grpc, protobuf, click or asyncio
were imported: that is how each test knows it took the fast path (the click path imports all
four) rather than falling back to it. Nor may it import `site` (the command runs the fast
path without it) or the pure-Python modules the client does without (`socket`, `signal`,
`enum`, `re`...: each costs a share of a run that is meant to take a few ms).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from mesoslite.cli import exit_codes
from mesoslite.testing import LocalCluster, assert_eventually
from tests.e2e.conftest import MESOSLITE, free_port_pair

SLOW_IMPORTS = (
    "grpc", "google.protobuf", "click", "asyncio",
    # issue 15: what the client once imported and now does without
    "site", "os", "socket", "signal", "enum", "selectors", "collections", "functools", "re",
    "struct", "json",
)


@pytest.fixture
def fast(tmp_path: Path) -> Iterator[tuple[LocalCluster, dict[str, str]]]:
    """One agent (cpus:4), a 1-hour periodic allocation pass, the HTTP port at gRPC + 1; the
    environment a user has (`MESOSLITE_MASTER` only) and a cache dir of the test's own."""
    port = free_port_pair()
    with LocalCluster(
        tmp_path / "cluster", agents=1, port=port, http_port=port + 1,
        agent_resources="cpus:4;mem:4096;disk:1000",
        master_args=("--allocation-interval-s", "3600"),
    ) as cluster:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MESOSLITE_")}
        env.update(MESOSLITE_MASTER=cluster.master_address, XDG_CACHE_HOME=str(tmp_path / "c"),
                   PYTHONPROFILEIMPORTTIME="1")
        yield cluster, env


def _argv(*args: str) -> list[str]:
    return [str(MESOSLITE), *args]


def _imported(stderr: str) -> set[str]:
    return {ln.rsplit("|", 1)[-1].strip() for ln in stderr.splitlines()
            if ln.startswith("import time:")}


def _split(stderr: str) -> str:
    """The run's own stderr; fails if the click path's imports are among the rest."""
    imported = _imported(stderr)
    slow = sorted(m for m in imported if m.split(".")[0] in SLOW_IMPORTS or m in SLOW_IMPORTS)
    assert not slow, f"took the slow path: imported {slow[:5]}"
    return "".join(ln + "\n" for ln in stderr.splitlines() if not ln.startswith("import time:"))


def _run(env: dict[str, str], *args: str, timeout_s: float = 30) -> tuple[int, str, str]:
    out = subprocess.run(_argv("run", *args), env=env, capture_output=True, text=True,
                         timeout=timeout_s)
    return out.returncode, out.stdout, _split(out.stderr)


def _tasks(env: dict[str, str]) -> list[dict[str, object]]:
    out = subprocess.run([str(MESOSLITE), "task", "list", "--all", "--json"], env=env,
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def _state_of(env: dict[str, str], name: str) -> str:
    states = [str(t["state"]) for t in _tasks(env) if t["name"] == name]
    return states[0] if states else ""


def test_fast_run_forwards_output_and_exit_codes_without_importing_grpc(fast) -> None:  # type: ignore[no-untyped-def]
    cluster, env = fast
    assert _run(env, "--", "echo", "hello") == (0, "hello\n", "")
    code, out, err = _run(env, "--", "sh", "-c", "echo to-out; echo to-err >&2; exit 3")
    assert (code, out, err) == (3, "to-out\n", "to-err\n")
    code, _, err = _run(env, "--", "sh", "-c", "kill -9 $$")
    assert code == 128 + 9, err
    # The endpoint found by convention is cached for the next runs.
    cache = Path(env["XDG_CACHE_HOME"]) / "mesoslite" / "http-endpoints"
    assert cache.read_text().split() == [cluster.master_address, cluster.http_url()[7:-1]]


def test_fast_run_takes_resources_name_env_shell_and_role(fast) -> None:  # type: ignore[no-untyped-def]
    cluster, env = fast
    code, out, err = _run(
        env, "--cpus", "0.5", "--mem=64", "--name", "sized", "--env", "A=b c", "--role", "eng",
        "--shell", "--", "echo $A;", "echo", "$MESOSLITE_TASK_ID",
    )
    assert code == 0, err
    assert out.startswith("b c\nrun-")
    (task,) = [t for t in _tasks(env) if t["name"] == "sized"]
    assert task["resources"] == {"cpus": 0.5, "mem": 64.0}
    out = subprocess.run([str(MESOSLITE), "framework", "list", "--all", "--json"], env=env,
                         capture_output=True, text=True, timeout=30)
    (framework,) = [f for f in json.loads(out.stdout) if f["id"] == task["framework_id"]]
    assert framework["role"] == "eng"


def test_a_task_is_placed_with_no_allocation_batch_due(fast) -> None:  # type: ignore[no-untyped-def]
    # The periodic pass is an hour away: the run is placed by its own pass (`place_now`).
    for _ in range(3):
        assert _run(fast[1], "--", "true", timeout_s=20)[0] == 0


def test_ctrl_c_kills_the_task_and_exits_130(fast) -> None:  # type: ignore[no-untyped-def]
    _, env = fast
    proc = subprocess.Popen(_argv("run", "--name", "interrupted", "--", "sleep", "60"),
                            env=env, stderr=subprocess.PIPE, text=True)
    try:
        assert_eventually(lambda: _state_of(env, "interrupted") == "TASK_RUNNING", timeout_s=20)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=20)
        assert proc.returncode == exit_codes.EXIT_INTERRUPTED
        assert "killing task run-" in _split(stderr)
    finally:
        proc.kill()
        proc.wait()
    assert _state_of(env, "interrupted") == "TASK_KILLED"


def test_a_client_that_dies_leaves_no_task_behind(fast) -> None:  # type: ignore[no-untyped-def]
    _, env = fast
    proc = subprocess.Popen(_argv("run", "--name", "orphan", "--", "sleep", "60"), env=env,
                            stderr=subprocess.DEVNULL)
    try:
        assert_eventually(lambda: _state_of(env, "orphan") == "TASK_RUNNING", timeout_s=20)
    finally:
        proc.kill()
        proc.wait()
    assert_eventually(lambda: _state_of(env, "orphan") == "TASK_KILLED", timeout_s=20)


def test_bad_flags_exit_2_as_on_the_click_path(fast) -> None:  # type: ignore[no-untyped-def]
    _, env = fast
    for args, said in (
        (("--cpus", "-1"), "--cpus must be > 0"), (("--cpus", "lots"), "lots"),
        (("--env", "NOEQUALS"), "--env must be KEY=VALUE"),
    ):
        out = subprocess.run([str(MESOSLITE), "run", *args, "--", "true"], env=env,
                             capture_output=True, text=True, timeout=30)
        assert out.returncode == exit_codes.EXIT_USAGE, (args, out.stderr)
        assert said in out.stderr


def test_no_agent_can_ever_fit_fails_fast_with_65(fast) -> None:  # type: ignore[no-untyped-def]
    code, _, err = _run(fast[1], "--cpus", "64", "--", "true")
    assert code == exit_codes.EXIT_REJECTED
    assert "no agent can ever fit" in err and "cpus" in err


def test_no_room_now_says_why_it_waits_then_times_out_with_75(fast) -> None:  # type: ignore[no-untyped-def]
    _, env = fast
    hog = subprocess.Popen(_argv("run", "--cpus", "3.5", "--name", "hog", "--", "sleep", "60"),
                           env=env, stderr=subprocess.DEVNULL)
    try:
        assert_eventually(lambda: _state_of(env, "hog") == "TASK_RUNNING", timeout_s=20)
        code, _, err = _run(env, "--cpus", "1", "--placement-timeout", "3", "--", "true")
    finally:
        hog.send_signal(signal.SIGINT)
        hog.wait(20)
    assert code == exit_codes.EXIT_TEMPFAIL, err
    assert "is pending:" in err
    assert "no offer could fit the task within 3s" in err


def test_an_endpoint_that_is_not_the_masters_falls_back_to_the_click_path(fast) -> None:  # type: ignore[no-untyped-def]
    _, env = fast
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    env = {**env, "MESOSLITE_MASTER_HTTP": f"127.0.0.1:{dead}"}
    out = subprocess.run(_argv("run", "--", "echo", "slow"), env=env, capture_output=True,
                         text=True, timeout=30)
    assert (out.returncode, out.stdout) == (0, "slow\n")
    assert "grpc" in _imported(out.stderr)  # it did take the click path


def test_the_click_path_caches_the_http_port_for_the_next_runs(tmp_path: Path) -> None:
    # An HTTP port no convention finds: the first run takes the click path, which asks the
    # master for it (`GetMaster.http_address`); the second run is fast.
    with LocalCluster(tmp_path / "cluster", agents=1, http_port=0) as cluster:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MESOSLITE_")}
        env.update(MESOSLITE_MASTER=cluster.master_address, XDG_CACHE_HOME=str(tmp_path / "c"),
                   PYTHONPROFILEIMPORTTIME="1")
        first = subprocess.run(_argv("run", "--", "echo", "one"), env=env, capture_output=True,
                               text=True, timeout=30)
        assert (first.returncode, first.stdout) == (0, "one\n"), first.stderr
        assert "grpc" in _imported(first.stderr)
        assert _run(env, "--", "echo", "two") == (0, "two\n", "")


def _sleeping(marker: str) -> bool:
    import psutil

    return any(p.info["cmdline"] == ["sleep", marker]
               for p in psutil.process_iter(["cmdline"]))


def test_a_run_s_framework_is_not_in_the_registry_and_a_new_master_kills_its_task(fast) -> None:  # type: ignore[no-untyped-def]
    # No registry write for a run (issue 15): a restarted master does not know its framework,
    # so the agent's re-registration reports a task of an unknown framework, which is killed
    # at once (it is not kept waiting for a client that has gone: it exited 69).
    cluster, env = fast
    marker = str(6000 + os.getpid() % 1000)
    proc = subprocess.Popen(_argv("run", "--name", "abandoned", "--", "sleep", marker),
                            env=env, stderr=subprocess.PIPE, text=True)
    try:
        assert_eventually(lambda: _state_of(env, "abandoned") == "TASK_RUNNING", timeout_s=20)
        cluster.stop_master(signal.SIGKILL)  # no time to tear the run down
        cluster.start_master()
        _, stderr = proc.communicate(timeout=20)
        assert proc.returncode == exit_codes.EXIT_UNAVAILABLE, stderr
        assert_eventually(lambda: not _sleeping(marker), timeout_s=8)
    finally:
        proc.kill()
        proc.wait()
    out = subprocess.run([str(MESOSLITE), "framework", "list", "--all", "--json"], env=env,
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert [f for f in json.loads(out.stdout) if "abandoned" in str(f)] == []
