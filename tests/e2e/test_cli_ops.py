"""The operator's CLI of issue 13, run as a user runs it against real daemons: `master list`
in an HA cluster across a SIGKILL of the leader, `--watch` on the list commands, `job logs`,
id prefixes, JSON logs with ids as keys, and a clean one-line error for a port in use."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from mesoslite.testing import HACluster, LocalCluster, assert_eventually
from mesoslite.testing.pytest_plugin import zk_url, zookeeper
from tests.e2e.conftest import MESOSLITE, CliRunner

BIN = Path(sys.executable).parent
__all__ = ["zk_url", "zookeeper"]  # fixtures: a real ZooKeeper for the HA test


def _masters(mesoslite: CliRunner, master: str) -> list[dict[str, object]]:
    listed = mesoslite("master", "list", "--json", master=master)
    assert listed.returncode == 0, listed.stderr
    return list(json.loads(listed.stdout))


def test_master_list_names_the_leader_before_and_after_the_leader_is_killed(
    zk_url: str, tmp_path: Path, mesoslite: CliRunner
) -> None:
    with HACluster(tmp_path / "ha", zk_url, masters=3, agents=0) as ha:
        old = ha.wait_for_leader()
        rows = _masters(mesoslite, zk_url)
        assert [r["role"] for r in rows] == ["leader", "standby", "standby"]
        assert rows[0]["address"] == ha.addresses[old]
        assert rows[0]["health"] == "SERVING" and rows[0]["pid"] == ha.masters[old].pid
        assert {r["health"] for r in rows[1:]} == {"NOT_SERVING"}
        assert {r["address"] for r in rows} == set(ha.addresses)
        # The same answer from the list of addresses, by health alone.
        by_list = _masters(mesoslite, ha.masters_list)
        assert [(r["role"], r["address"]) for r in by_list][0] == ("leader", ha.addresses[old])
        text = mesoslite("master", "list", master=zk_url).stdout
        assert text.splitlines()[0].split() == ["ROLE", "ADDRESS", "HEALTH", "ID", "VERSION", "PID"]

        pid = ha.masters[old].pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        new = ha.wait_for_leader(30.0, other_than=old)

        def leader_is_new() -> bool:
            rows = _masters(mesoslite, zk_url)
            return bool(rows) and rows[0]["address"] == ha.addresses[new] and (
                rows[0]["health"] == "SERVING"
            )

        assert_eventually(leader_is_new, timeout_s=30, interval_s=0.3)
        rows = _masters(mesoslite, zk_url)
        assert ha.addresses[old] not in {r["address"] for r in rows}
        assert len(rows) == 2


def test_watch_redraws_on_a_pipe_with_blank_lines_and_stops_at_ctrl_c(
    cluster: LocalCluster, mesoslite: CliRunner
) -> None:
    master = cluster.master_address
    counted = mesoslite("agent", "list", "--watch", "--interval", "0.1", "--watch-count", "3",
                        master=master)
    assert counted.returncode == 0, counted.stderr
    tables = counted.stdout.split("\n\n")
    assert len(tables) == 3 and all(t.startswith("ID") for t in tables), counted.stdout
    assert "\x1b" not in counted.stdout  # no screen clearing on a pipe
    for noun in ("framework", "task", "role", "job", "master"):
        done = mesoslite(noun, "list", "-w", "--interval", "0.1", "--watch-count", "2",
                         master=master)
        assert done.returncode == 0, (noun, done.stderr)
        assert len(done.stdout.split("\n\n")) == 2, (noun, done.stdout)
    # On a terminal each drawing starts by clearing the screen.
    import pty

    leader_fd, follower_fd = pty.openpty()
    env = {**os.environ, "MESOSLITE_MASTER": master}
    on_tty = subprocess.run(
        [str(MESOSLITE), "role", "list", "-w", "--interval", "0.1", "--watch-count", "2"],
        stdout=follower_fd, stderr=subprocess.PIPE, env=env, timeout=30,
    )
    os.close(follower_fd)
    screen = os.read(leader_fd, 65536)
    os.close(leader_fd)
    assert on_tty.returncode == 0 and screen.count(b"\x1b[2J") == 2, screen
    lonely = mesoslite("role", "list", "--interval", "1", master=master)
    assert lonely.returncode == 2 and "need --watch" in lonely.stderr

    proc = subprocess.Popen(
        [str(MESOSLITE), "role", "list", "--watch", "--interval", "0.2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        assert proc.stdout is not None
        headers = 0
        deadline = time.monotonic() + 20
        while headers < 2 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            headers += line.startswith("ROLE")
        assert headers == 2
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
        assert "Traceback" not in (proc.stderr.read() if proc.stderr else "")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_job_logs_prints_the_latest_task_or_an_instances(
    cluster: LocalCluster, mesoslite: CliRunner, tmp_path: Path
) -> None:
    master = cluster.master_address
    spec = tmp_path / "echo.yaml"
    spec.write_text(textwrap.dedent("""\
        name: echoes
        type: batch
        instances: 2
        command: 'echo "out of $MESOSLITE_JOB_INSTANCE"; echo "err of $MESOSLITE_JOB_INSTANCE" >&2'
        """))
    none_yet = mesoslite("job", "logs", "echoes", master=master)
    assert none_yet.returncode == 66, none_yet.stderr
    submitted = mesoslite("job", "submit", "--wait", str(spec), master=master)
    assert submitted.returncode == 0, submitted.stderr
    history = json.loads(mesoslite("job", "history", "echoes", "--json", master=master).stdout)
    latest = history[-1]["instance"]

    shown = mesoslite("job", "logs", "echoes", master=master)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == f"out of {latest}\n"
    for i in (0, 1):
        one = mesoslite("job", "logs", "echoes", "--instance", str(i), master=master)
        assert one.stdout == f"out of {i}\n", one.stderr
        err = mesoslite("job", "logs", "echoes", "--instance", str(i), "--stderr", master=master)
        assert err.stdout == f"err of {i}\n", err.stderr
    followed = mesoslite("job", "logs", "echoes", "-f", "--instance", "1", master=master)
    assert followed.returncode == 0 and followed.stdout == "out of 1\n", followed.stderr
    absent = mesoslite("job", "logs", "echoes", "--instance", "7", master=master)
    assert absent.returncode == 66 and "instance 7" in absent.stderr
    unknown = mesoslite("job", "logs", "nope", master=master)
    assert unknown.returncode == 66, unknown.stderr


def test_unique_id_prefixes_are_accepted_and_ambiguous_ones_listed(
    cluster: LocalCluster, mesoslite: CliRunner
) -> None:
    master = cluster.master_address
    for word in ("first", "second"):
        ran = mesoslite("run", "--", "echo", word, master=master)
        assert ran.returncode == 0, ran.stderr
    tasks = json.loads(mesoslite("task", "list", "--all", "--json", master=master).stdout)
    ids = sorted(t["id"] for t in tasks)
    assert len(ids) == 2 and all(i.startswith("run-") for i in ids)
    # The shortest prefix of the first id that no other id starts with.
    n = next(k for k in range(5, 15) if not ids[1].startswith(ids[0][:k]))
    shown = mesoslite("task", "logs", ids[0][:n], master=master)
    assert shown.returncode == 0, shown.stderr
    words = {t["id"]: t["command"] for t in tasks}
    assert shown.stdout.strip() in str(words[ids[0]])

    ambiguous = mesoslite("task", "logs", "run-", master=master)
    assert ambiguous.returncode == 2
    assert "task id: 'run-' is the start of 2 ids" in ambiguous.stderr
    assert ids[0] in ambiguous.stderr and ids[1] in ambiguous.stderr
    missing = mesoslite("task", "kill", "zzz", master=master)
    assert missing.returncode == 66, missing.stderr

    frameworks = json.loads(mesoslite("framework", "list", "--json", master=master).stdout)
    jobs_fw = next(f["id"] for f in frameworks if f["name"] == "mesoslite-jobs")
    explained = mesoslite("framework", "explain", jobs_fw[:-2], "--json", master=master)
    assert explained.returncode == 0, explained.stderr
    assert json.loads(explained.stdout)["framework_id"] == jobs_fw
    several = mesoslite("framework", "explain", "fw-", master=master)
    assert several.returncode == 2 and "framework id: 'fw-' is the start of 3 ids" in (
        several.stderr
    )
    fw = tasks[0]["framework_id"]
    listed = mesoslite("task", "list", "--all", "--framework", fw[:-2], "--json", master=master)
    assert {t["id"] for t in json.loads(listed.stdout)} == {t["id"] for t in tasks
                                                             if t["framework_id"] == fw}
    agents = sorted(cluster.agent_ids)
    common = os.path.commonprefix(agents)
    unsure = mesoslite("agent", "drain", common, master=master)
    assert unsure.returncode == 2, unsure.stderr
    assert f"{agents[0]}, {agents[1]}; give more of it" in unsure.stderr
    drained = mesoslite("agent", "drain", agents[0], master=master)
    assert drained.returncode == 0 and drained.stdout.strip() == f"draining agent {agents[0]}"


def test_json_logs_carry_ids_as_keys(tmp_path: Path, mesoslite: CliRunner) -> None:
    with LocalCluster(
        tmp_path / "c", agents=1, master_args=("--log-format", "json"),
        agent_args=("--log-format", "json"),
    ) as c:
        ran = mesoslite("run", "--", "true", master=c.master_address)
        assert ran.returncode == 0, ran.stderr
        agent_log = c.work_dir / "agent-0.log"

        def ended() -> list[dict[str, object]]:
            docs = [json.loads(line) for line in agent_log.read_text().splitlines()
                    if line.startswith("{")]
            return [d for d in docs if d.get("msg") == "task TASK_FINISHED: exit 0"
                    or (str(d.get("msg", "")).startswith("task TASK_FINISHED"))]

        docs = assert_eventually(ended, timeout_s=10)
        doc = docs[0]
        assert str(doc["task_id"]).startswith("run-") and doc["framework_id"]
        assert "task_id=" not in str(doc["msg"])
        # (the `---- starting: ...` lines are the cluster's own, between runs of the master)
        master_lines = [ln for ln in c.master_log.read_text().splitlines()
                        if ln.strip() and not ln.startswith("---- ")]
        assert master_lines
        for line in master_lines:
            json.loads(line)  # every line of the master's log is one JSON object
        listening = [json.loads(ln) for ln in master_lines if "master listening" in ln]
        assert listening and listening[0]["address"] == c.master_address


@pytest.mark.parametrize("daemon", ["master", "agent"])
def test_a_port_in_use_is_one_clear_line_on_stderr(daemon: str, tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if k != "GRPC_VERBOSITY"}
        if daemon == "master":
            argv = [str(BIN / "mesoslite-master"), "--port", str(port)]
            expected = f"mesoslite-master: cannot listen on 127.0.0.1:{port}: "
        else:
            argv = [str(BIN / "mesoslite-agent"), "--grpc-address", f"127.0.0.1:{port}",
                    "--resources", "cpus:1;mem:64;disk:10"]
            expected = f"mesoslite-agent: --grpc-address: cannot listen on 127.0.0.1:{port}: "
        done = subprocess.run(
            [*argv, "--work-dir", str(tmp_path / daemon)],
            capture_output=True, text=True, timeout=30, env=env,
        )
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(expected), done.stderr


def test_simulate_shows_progress_on_a_terminal_and_nothing_on_a_pipe(tmp_path: Path) -> None:
    import pty

    examples = Path(__file__).resolve().parents[2] / "examples" / "sim"
    argv = [str(MESOSLITE), "simulate", "--cluster", str(examples / "drf-paper-cluster.yaml"),
            "--workload", str(examples / "drf-paper-workload.yaml"), "--json"]
    leader_fd, follower_fd = pty.openpty()
    on_tty = subprocess.run(argv, stdout=subprocess.PIPE, stderr=follower_fd, timeout=60)
    os.close(follower_fd)
    progress = os.read(leader_fd, 65536).decode()
    os.close(leader_fd)
    assert on_tty.returncode == 0
    assert "simulate drf [1/1]: t=" in progress and "of 60 tasks" in progress, progress
    assert progress.endswith("\r\x1b[K")  # the line is wiped at the end
    json.loads(on_tty.stdout)  # stdout is the results alone

    piped = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert piped.returncode == 0 and piped.stderr == ""
