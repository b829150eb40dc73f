"""The `mesoslite` CLI run as a user runs it: the installed script, as a subprocess."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import psutil

from mesoslite.cli import exit_codes
from mesoslite.testing import LocalCluster, free_port
from tests.e2e.conftest import MESOSLITE, CliRunner, stop_local

AGENT_KEYS = {
    "id", "hostname", "status", "address", "version", "registered_at", "total", "used",
    "offered", "task_count", "pending_updates", "attributes",
}


def test_agent_list_shows_both_agents_with_their_resources(
    cluster: LocalCluster, mesoslite: CliRunner
) -> None:
    done = mesoslite("agent", "list", master=cluster.master_address)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == [
        "ID", "HOSTNAME", "STATUS", "CPUS", "MEM", "DISK", "TASKS", "PENDING", "ATTRIBUTES",
    ]
    for agent_id in cluster.agent_ids:
        row = next(line for line in lines if line.startswith(agent_id))
        assert row.split()[2:6] == ["active", "0/4", "0/4GB", "0/9.8GB"]


def test_agent_list_json_has_the_documented_keys_and_resources(
    cluster: LocalCluster, mesoslite: CliRunner
) -> None:
    done = mesoslite("--master", cluster.master_address, "agent", "list", "--json")
    assert done.returncode == 0, done.stderr
    agents = {a["id"]: a for a in json.loads(done.stdout)}
    assert sorted(agents) == sorted(cluster.agent_ids)
    first, second = (agents[i] for i in cluster.agent_ids)
    assert set(first) == AGENT_KEYS
    assert first["status"] == "active" and first["task_count"] == 0
    assert first["total"] == {
        "cpus": 4.0, "disk": 10000.0, "mem": 4096.0, "ports": "[31000-31999]",
    }
    assert second["total"]["ports"] == "[32000-32999]"
    assert first["used"] == {}


def test_task_lists_are_empty_json_arrays_on_a_fresh_cluster(
    cluster: LocalCluster, mesoslite: CliRunner
) -> None:
    for args in (("framework", "list", "--json"), ("framework", "list", "--all", "--json")):
        done = mesoslite(*args, master=cluster.master_address)
        assert done.returncode == 0, (args, done.stderr)
        # Only the built-in jobs framework.
        assert [f["name"] for f in json.loads(done.stdout)] == ["mesoslite-jobs"], args
    for args in (("task", "list", "--json"), ("task", "list", "--all", "--json")):
        done = mesoslite(*args, master=cluster.master_address)
        assert done.returncode == 0, (args, done.stderr)
        assert json.loads(done.stdout) == [], args
    done = mesoslite("task", "list", master=cluster.master_address)
    assert done.stdout.split() == ["ID", "NAME", "FRAMEWORK", "AGENT", "STATE", "EXIT", "UPDATED"]


def test_logs_and_kill_of_an_unknown_task_say_so_and_exit_not_found(
    cluster: LocalCluster, mesoslite: CliRunner
) -> None:
    for args in (("task", "logs", "no-such-task"), ("task", "logs", "--follow", "no-such-task"),
                 ("task", "kill", "no-such-task")):
        done = mesoslite(*args, master=cluster.master_address)
        assert done.returncode == exit_codes.EXIT_NOT_FOUND, (args, done.stderr)
        assert done.stderr.strip() == "mesoslite: task 'no-such-task' is not known", args
        assert done.stdout == ""


def test_a_task_list_of_an_unknown_framework_exits_not_found(
    cluster: LocalCluster, mesoslite: CliRunner
) -> None:
    done = mesoslite("task", "list", "--framework", "fw-nope", master=cluster.master_address)
    assert done.returncode == exit_codes.EXIT_NOT_FOUND
    assert "fw-nope" in done.stderr


def test_a_master_that_is_not_running_gives_the_unavailable_message(
    mesoslite: CliRunner,
) -> None:
    address = f"127.0.0.1:{free_port()}"
    for args in (("agent", "list"), ("task", "logs", "t1"), ("framework", "list", "--json")):
        done = mesoslite(*args, master=address)
        assert done.returncode == exit_codes.EXIT_UNAVAILABLE, (args, done.stderr)
        assert done.stderr.strip() == (
            f"mesoslite: cannot reach the master at {address}: is it running? "
            "(set --master or MESOSLITE_MASTER)"
        )


def test_a_bad_master_address_is_a_usage_error(mesoslite: CliRunner) -> None:
    done = mesoslite("--master", "host:notaport", "agent", "list")
    assert done.returncode == exit_codes.EXIT_USAGE
    assert "bad port" in done.stderr


def test_mesoslite_local_runs_a_cluster_until_sigint_and_leaves_nothing_behind(
    tmp_path: Path, mesoslite: CliRunner
) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "MESOSLITE_MASTER"}
    proc = subprocess.Popen(
        [str(MESOSLITE), "local", "--agents", "2", "--port", str(port),
         "--work-dir", str(tmp_path / "local")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        assert proc.stdout is not None
        seen: list[str] = []
        deadline = time.monotonic() + 60
        address = ""
        while not address and time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line, f"mesoslite local ended early: {seen} {proc.stderr}"
            seen.append(line)
            found = re.search(r"export MESOSLITE_MASTER=(\S+)", line)
            address = found.group(1) if found else ""
        assert address == f"127.0.0.1:{port}"
        assert f"master listening on 127.0.0.1:{port}" in "".join(seen)
        children = psutil.Process(proc.pid).children(recursive=True)
        assert len(children) >= 3  # the master and two agents

        done = mesoslite("agent", "list", "--json", master=address)
        assert done.returncode == 0, done.stderr
        assert [a["status"] for a in json.loads(done.stdout)] == ["active", "active"]

        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        stop_local(proc)
    _, alive = psutil.wait_procs(children, timeout=5)
    assert not alive, f"left behind: {alive}"
    assert (tmp_path / "local" / "master.log").exists()


def test_mesoslite_local_stops_on_sigterm_too(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [str(MESOSLITE), "local", "--agents", "1", "--port", "0",
         "--work-dir", str(tmp_path / "local")],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        assert proc.stdout is not None
        while "export MESOSLITE_MASTER=" not in proc.stdout.readline():
            assert proc.poll() is None
        children = psutil.Process(proc.pid).children(recursive=True)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        stop_local(proc)
    _, alive = psutil.wait_procs(children, timeout=5)
    assert not alive


def test_mesoslite_local_on_a_port_in_use_says_so(
    cluster: LocalCluster, mesoslite: CliRunner, tmp_path: Path
) -> None:
    port = cluster.master_address.rsplit(":", 1)[1]
    done = mesoslite("local", "--port", port, "--work-dir", str(tmp_path / "x"))
    assert done.returncode == exit_codes.EXIT_FAILURE
    assert f"port {port} is in use" in done.stderr


def test_mesoslite_local_names_a_daemon_that_dies_and_exits_1(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [str(MESOSLITE), "local", "--agents", "1", "--port", "0",
         "--work-dir", str(tmp_path / "local")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        while "export MESOSLITE_MASTER=" not in proc.stdout.readline():
            assert proc.poll() is None
        children = psutil.Process(proc.pid).children(recursive=True)
        agent = next(p for p in children if "mesoslite.agent.main" in p.cmdline())
        agent.kill()
        assert proc.wait(timeout=30) == exit_codes.EXIT_FAILURE
        assert re.search(r"agent 0 \(pid \d+\) was killed by SIGKILL", proc.stderr.read())
    finally:
        stop_local(proc)
    _, alive = psutil.wait_procs(children, timeout=5)
    assert not alive
