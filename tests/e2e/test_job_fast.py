"""`mesoslite job submit|update [--wait]` and `job wait` on the fast path (issue 15): the
light client (`mesoslite/fastjob.py`) against a real master's `POST /jobs/submit` and
`/jobs/watch`, the installed command run as a subprocess, each case run on both paths
(the click path forced with `MESOSLITE_NO_FASTRUN=1`) and held to the same output and exit
code.

Every fast run has `PYTHONPROFILEIMPORTTIME=1` and fails the test if grpc, protobuf, click,
asyncio, yaml or the other modules the client does without were imported: that is how a test
knows it took the fast path and not the fallback.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from mesoslite.testing import LocalCluster, assert_eventually
from tests.e2e.conftest import MESOSLITE, free_port_pair

SLOW_IMPORTS = (
    "grpc", "google.protobuf", "click", "asyncio", "yaml", "mesoslite.jobs", "mesoslite.cli",
    "site", "os", "socket", "signal", "enum", "selectors", "collections", "re", "json",
    "datetime",
)
RESOURCES = "resources: {{cpus: 0.05, mem: 16}}\n"
OK = "name: {name}\ntype: batch\ncommand: \"true\"\ninstances: 3\n" + RESOURCES
FAILS = "name: {name}\ntype: batch\ncommand: exit 3\ninstances: 2\n" + RESOURCES
SLEEPS = "name: {name}\ntype: batch\ncommand: sleep 60\n" + RESOURCES
BAD = "name: Bad_Name\ntype: batch\ncommand: \"true\"\ninstances: -1\nresources:\n  cpus: 0.05\n"


def _env(cluster: LocalCluster, tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MESOSLITE_")}
    env.update(MESOSLITE_MASTER=cluster.master_address, XDG_CACHE_HOME=str(tmp / "c"),
               PYTHONPROFILEIMPORTTIME="1")
    return env


@pytest.fixture(scope="module")
def fast(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[LocalCluster, dict[str, str], Path]]:
    """One agent (cpus:4), the HTTP port at gRPC + 1 (found by convention), a spec dir."""
    tmp = tmp_path_factory.mktemp("jobfast")
    port = free_port_pair()
    with LocalCluster(tmp / "cluster", agents=1, port=port, http_port=port + 1,
                      agent_resources="cpus:4;mem:4096;disk:1000") as cluster:
        yield cluster, _env(cluster, tmp), tmp


def _imported(stderr: str) -> set[str]:
    return {ln.rsplit("|", 1)[-1].strip() for ln in stderr.splitlines()
            if ln.startswith("import time:")}


def _own(stderr: str) -> str:
    return "".join(ln + "\n" for ln in stderr.splitlines() if not ln.startswith("import time:"))


def job(env: dict[str, str], *args: str, path: str, timeout_s: float = 60) -> tuple[int, str, str]:
    """`mesoslite job ARGS` on `path` "fast" (fails unless it took it) or "click"."""
    env = {**env, "MESOSLITE_NO_FASTRUN": "1"} if path == "click" else env
    out = subprocess.run([str(MESOSLITE), "job", *args], env=env, capture_output=True,
                         text=True, timeout=timeout_s)
    imported = _imported(out.stderr)
    if path == "fast":
        slow = sorted(m for m in imported if m in SLOW_IMPORTS or m.split(".")[0] in SLOW_IMPORTS
                      or any(m.startswith(s + ".") for s in SLOW_IMPORTS))
        assert not slow, f"took the slow path: imported {slow[:6]}; {_own(out.stderr)}"
        assert "mesoslite.fastjob" in imported
    else:
        assert "click" in imported
    return out.returncode, out.stdout, _own(out.stderr)


def spec(tmp: Path, template: str, name: str) -> str:
    path = tmp / f"{name}.yaml"
    path.write_text(template.format(name=name))
    return str(path)


def jobs(env: dict[str, str]) -> dict[str, str]:
    out = subprocess.run([str(MESOSLITE), "job", "list", "--json"], env=env,
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return {j["name"]: j["state"] for j in json.loads(out.stdout)}


def _last(stderr: str) -> str:
    return stderr.splitlines()[-1] if stderr else ""


def test_submit_wait_of_a_job_that_succeeds_prints_and_exits_the_same(fast) -> None:  # type: ignore[no-untyped-def]
    _, env, tmp = fast
    f = spec(tmp, OK, "ok-both")
    runs = {p: job(env, "submit", "--wait", f, path=p) for p in ("fast", "click")}
    for code, out, err in runs.values():
        assert (code, out, _last(err)) == (0, "ok-both\n", "ok-both: SUCCEEDED"), err
    # Every progress line is one the click path could print: `NAME: counts` or the state.
    for line in runs["fast"][2].splitlines():
        assert line.startswith("ok-both: ") and "running" in line or line.endswith("SUCCEEDED")


def test_a_failed_instance_exits_1_with_the_same_last_line(fast) -> None:  # type: ignore[no-untyped-def]
    _, env, tmp = fast
    f = spec(tmp, FAILS, "fails-both")
    fast_run = job(env, "submit", "--wait", f, path="fast")
    click_run = job(env, "submit", "--wait", f, path="click")
    assert fast_run[:2] == click_run[:2] == (1, "fails-both\n")
    assert _last(fast_run[2]).startswith("fails-both: FAILED: instance ")
    assert _last(fast_run[2]).split(": ")[:2] == _last(click_run[2]).split(": ")[:2]


def test_a_bad_spec_gives_the_same_problems_and_exit_2_and_submits_nothing(fast) -> None:  # type: ignore[no-untyped-def]
    _, env, tmp = fast
    f = spec(tmp, BAD, "bad")
    fast_run = job(env, "submit", "--wait", f, path="fast")
    click_run = job(env, "submit", "--wait", f, path="click")
    assert fast_run == click_run
    code, out, err = fast_run
    assert (code, out) == (2, "")
    assert err.splitlines() == [
        f"mesoslite: {f}: name: expected a DNS label: 1-63 lowercase letters, digits and '-', "
        "starting and ending with a letter or digit, got 'Bad_Name'",
        f"mesoslite: {f}: instances: expected an integer from 1 to 10000, got -1",
    ]
    broken = tmp / "broken.yaml"
    broken.write_text("name: [unclosed\n")
    assert job(env, "submit", str(broken), path="fast") == \
        job(env, "submit", str(broken), path="click")
    assert "bad" not in jobs(env) and "Bad_Name" not in jobs(env)


def test_submit_without_wait_prints_the_name_only_and_a_duplicate_is_refused_alike(fast) -> None:  # type: ignore[no-untyped-def]
    _, env, tmp = fast
    f = spec(tmp, SLEEPS, "sleeps")
    assert job(env, "submit", f, path="fast") == (0, "sleeps\n", "")
    assert jobs(env)["sleeps"] in ("PENDING", "RUNNING")
    dup_fast, dup_click = (job(env, "submit", f, path=p) for p in ("fast", "click"))
    assert dup_fast == dup_click
    assert dup_fast[0] == 65 and dup_fast[2].startswith("mesoslite: "), dup_fast
    # `job wait` with a timeout: the same message and 75 on both paths.
    waits = [job(env, "wait", "sleeps", "--timeout", "0.5", path=p) for p in ("fast", "click")]
    assert waits[0] == waits[1]
    assert waits[0][0] == 75
    assert _last(waits[0][2]) == "mesoslite: job sleeps is still RUNNING after 0.5s"
    # After a fast wait's hand-over the message names the whole `--timeout` given.
    handed = job(env, "wait", "sleeps", "--timeout", "0.3", "--timeout-given", "7", path="click")
    assert (handed[0], _last(handed[2])) == (75, "mesoslite: job sleeps is still RUNNING after 7s")
    subprocess.run([str(MESOSLITE), "job", "kill", "sleeps"], env=env, check=True,
                   capture_output=True, timeout=30)
    code, _, err = job(env, "wait", "sleeps", path="fast")
    assert (code, _last(err)) == (1, "sleeps: KILLED: killed by the user")


def test_update_wait_and_job_wait_and_an_unknown_name_alike(fast) -> None:  # type: ignore[no-untyped-def]
    _, env, tmp = fast
    f = spec(tmp, OK, "updated")
    assert job(env, "submit", "--wait", f, path="fast")[0] == 0
    ended = [job(env, "update", "--wait", f, path=p) for p in ("fast", "click")]
    assert ended[0] == ended[1] == (
        65, "", "mesoslite: job 'updated' has ended (SUCCEEDED): submit it again instead\n")
    live = spec(tmp, SLEEPS, "live")
    assert job(env, "submit", live, path="fast")[0] == 0
    assert job(env, "update", live, path="fast") == job(env, "update", live, path="click") == (
        0, "live\n", "")
    subprocess.run([str(MESOSLITE), "job", "kill", "live"], env=env, check=True,
                   capture_output=True, timeout=30)
    assert job(env, "wait", "updated", path="fast") == \
        job(env, "wait", "updated", path="click") == (0, "", "updated: SUCCEEDED\n")
    assert job(env, "wait", "no-such-job", path="fast") == \
        job(env, "wait", "no-such-job", path="click") == \
        (66, "", "mesoslite: no job named 'no-such-job'\n")


def test_a_master_that_is_down_exits_69_as_on_the_click_path(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MESOSLITE_")}
    env.update(MESOSLITE_MASTER=f"127.0.0.1:{dead}", XDG_CACHE_HOME=str(tmp_path))
    f = spec(tmp_path, OK, "nowhere")
    outs = [subprocess.run([str(MESOSLITE), "job", "submit", "--wait", f],
                           env={**env, **extra}, capture_output=True, text=True, timeout=60)
            for extra in ({}, {"MESOSLITE_NO_FASTRUN": "1"})]
    assert [(o.returncode, o.stdout, o.stderr) for o in outs][0] == \
        [(o.returncode, o.stdout, o.stderr) for o in outs][1]
    assert outs[0].returncode == 69 and "cannot reach the master" in outs[0].stderr


def _post(url: str, doc: dict[str, object], headers: dict[str, str] | None = None) -> int:
    headers = {"Content-Type": "application/json", **(headers or {})}
    request = urllib.request.Request(url, data=json.dumps(doc).encode(), method="POST",
                                     headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as e:
        return int(e.code)


def test_a_request_naming_another_grpc_port_is_refused_421_and_submits_nothing(fast) -> None:  # type: ignore[no-untyped-def]
    cluster, env, _ = fast
    port = int(cluster.master_address.rsplit(":", 1)[1])
    doc = {"grpc_port": port + 7, "spec_yaml": OK.format(name="misdirected"), "source": "x"}
    assert _post(cluster.http_url() + "jobs/submit", doc) == 421
    assert _post(cluster.http_url() + "jobs/watch", {"grpc_port": port + 7, "name": "x"}) == 421
    assert "misdirected" not in jobs(env)


def test_with_acls_on_the_endpoint_refuses_403_and_the_command_takes_the_click_path(
    tmp_path: Path,
) -> None:
    acls = tmp_path / "acls.yaml"
    acls.write_text("rules:\n  - name: nobody-submits-prod\n    principals: [alice]\n"
                    "    actions: [submit_job]\n    objects: [prod]\n    effect: deny\n")
    with LocalCluster(tmp_path / "cluster", agents=1,
                      master_args=["--acls", str(acls)]) as cluster:
        env = _env(cluster, tmp_path)
        env["MESOSLITE_MASTER_HTTP"] = cluster.http_url()[len("http://"):].rstrip("/")
        port = int(cluster.master_address.rsplit(":", 1)[1])
        doc = {"grpc_port": port, "spec_yaml": OK.format(name="acl-fast"), "source": "x"}
        token = base64.b64encode(b"alice:x").decode()
        assert _post(cluster.http_url() + "jobs/submit", doc) == 403
        assert _post(cluster.http_url() + "jobs/submit", doc,
                     {"Authorization": f"Basic {token}"}) == 403
        assert "acl-fast" not in jobs(env)
        out = subprocess.run([str(MESOSLITE), "job", "submit", spec(tmp_path, OK, "acl-slow")],
                             env=env, capture_output=True, text=True, timeout=60)
        assert (out.returncode, out.stdout) == (0, "acl-slow\n"), out.stderr
        assert "click" in _imported(out.stderr)  # it fell back


def test_ctrl_c_stops_waiting_with_130_and_the_job_keeps_running(fast) -> None:  # type: ignore[no-untyped-def]
    _, env, tmp = fast
    f = spec(tmp, SLEEPS, "interrupted")
    proc = subprocess.Popen([str(MESOSLITE), "job", "submit", "--wait", f], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "interrupted\n"
        assert_eventually(lambda: jobs(env)["interrupted"] == "RUNNING", timeout_s=30)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130
    assert _own(err).endswith("\nstopped waiting; job interrupted keeps running\n")
    assert "click" not in _imported(err)
    time.sleep(0.2)
    assert jobs(env)["interrupted"] == "RUNNING"
    subprocess.run([str(MESOSLITE), "job", "kill", "interrupted"], env=env, check=True,
                   capture_output=True, timeout=30)


def test_a_watch_that_breaks_hands_over_to_the_click_path_s_job_wait(tmp_path: Path) -> None:
    port = free_port_pair()
    with LocalCluster(tmp_path / "cluster", agents=1, port=port, http_port=port + 1) as cluster:
        env = _env(cluster, tmp_path)
        f = spec(tmp_path, SLEEPS, "orphaned")
        proc = subprocess.Popen([str(MESOSLITE), "job", "submit", "--wait", f], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline() == "orphaned\n"
            cluster.stop_master(signal.SIGKILL)
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    # The click path's `job wait` took over (it imports click) and, with no master to
    # find, ends as the click path's `submit --wait` would: its message, 69.
    assert proc.returncode == 69, err
    assert "click" in _imported(err)
    assert f"cannot reach the master at {cluster.master_address}" in _own(err)


def _on_a_terminal(
    argv: list[str], env: dict[str, str], columns: int
) -> tuple[int, str, set[str]]:
    """Run `argv` with stdout and stderr on a new terminal `columns` wide: (exit code, what
    it wrote there but the `import time:` lines, the modules those name)."""
    import fcntl
    import pty
    import struct
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    try:
        proc = subprocess.Popen(argv, env=env, stdout=follower, stderr=follower)
        os.close(follower)
        chunks = []
        while True:
            try:
                data = os.read(leader, 65536)
            except OSError:  # EIO: the terminal's last writer has gone
                break
            if not data:
                break
            chunks.append(data)
        code = proc.wait(timeout=60)
    finally:
        os.close(leader)
    lines = b"".join(chunks).decode().split("\r\n")
    shown = "\r\n".join(ln for ln in lines if not ln.startswith("import time:"))
    return code, shown, _imported("\n".join(lines))


def test_on_a_terminal_the_progress_line_is_rewritten_and_cut_alike(fast) -> None:  # type: ignore[no-untyped-def]
    _, env, tmp = fast
    f = spec(tmp, OK, "on-a-terminal-with-a-long-name")
    assert job(env, "submit", "--wait", f, path="fast")[0] == 0
    env = {k: v for k, v in env.items() if k != "COLUMNS"}
    argv = [str(MESOSLITE), "job", "wait", "on-a-terminal-with-a-long-name"]
    for extra in ({}, {"COLUMNS": "25"}):
        (*fast_run, fast_imports), (*click_run, click_imports) = (
            _on_a_terminal(argv, {**env, **extra, **path}, 30)
            for path in ({}, {"MESOSLITE_NO_FASTRUN": "1"}))
        assert "click" in click_imports and "click" not in fast_imports
        assert fast_run == click_run
        width = int(extra.get("COLUMNS", 30)) - 1
        assert fast_run == [0, "\r" + "on-a-terminal-with-a-long-name: SUCCEEDED"[:width]
                            + "\x1b[K\r\n"]


def test_a_service_is_waited_for_until_healthy_alike(fast) -> None:  # type: ignore[no-untyped-def]
    _, env, tmp = fast
    service = "name: {name}\ntype: service\ncommand: sleep 600\n" + RESOURCES
    for p in ("fast", "click"):
        name = f"svc-{p}"
        code, out, err = job(env, "submit", "--wait", spec(tmp, service, name), path=p)
        assert (code, out, _last(err)) == (0, f"{name}\n", f"{name}: HEALTHY"), err
        subprocess.run([str(MESOSLITE), "job", "kill", name], env=env, check=True,
                       capture_output=True, timeout=30)
