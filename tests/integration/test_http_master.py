"""The master's and agent's HTTP surface against real daemons (issue 13): /state against its
documented schema, /metrics parsed by prometheus-client with counters moving as tasks run,
a task's output followed over HTTP, and bad requests answered clearly."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import jsonschema
import pytest

from mesoslite.testing.eventually import assert_eventually
from mesoslite.testing.local_cluster import LocalCluster
from tests.integration.http_support import SCHEMA, agent_http, get, get_json, samples

MESOSLITE = Path(sys.executable).parent / "mesoslite"
FINISHED = ("mesoslite_master_tasks_terminal_total", (("state", "TASK_FINISHED"),))


@pytest.fixture
def one_agent(tmp_path: Path):  # type: ignore[no-untyped-def]
    with LocalCluster(tmp_path / "cluster", agents=1) as cluster:
        yield cluster


def run(cluster: LocalCluster, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(MESOSLITE), "run", *argv], env=cluster.cli_env(),
                          capture_output=True, text=True, timeout=60)


def test_state_validates_against_its_schema_and_metrics_count_tasks_as_they_run(
    one_agent: LocalCluster,
) -> None:
    base = one_agent.http_url().rstrip("/")
    agent = agent_http(one_agent.agent_work_dirs[0])
    before = samples(base + "/metrics")
    agent_before = samples(agent + "/metrics")
    assert before[("mesoslite_master_elected", ())] == 1.0
    assert before[("mesoslite_master_agents", (("state", "active"),))] == 1.0
    assert FINISHED not in before or before[FINISHED] == 0.0

    for _ in range(2):
        done = run(one_agent, "--", "true")
        assert done.returncode == 0, done.stderr
    assert run(one_agent, "--", "false").returncode != 0

    def counted() -> bool:
        return samples(base + "/metrics").get(FINISHED) == 2.0
    assert_eventually(counted, timeout_s=10)
    after = samples(base + "/metrics")
    assert after[("mesoslite_master_tasks_terminal_total", (("state", "TASK_FAILED"),))] == 1.0
    assert after[("mesoslite_master_allocation_pass_seconds_count", ())] > before[
        ("mesoslite_master_allocation_pass_seconds_count", ())]
    assert after[("mesoslite_master_registry_write_seconds_count", ())] > 0
    agent_after = samples(agent + "/metrics")
    key = ("mesoslite_agent_status_updates_total", (("state", "TASK_FINISHED"),))
    assert agent_after[key] == 2.0 and agent_before.get(key, 0.0) == 0.0

    state = get_json(base + "/state")
    jsonschema.validate(state, json.loads(SCHEMA.read_text()))
    assert state["master"]["leading"] and state["master"]["leader"] == one_agent.master_address
    assert [a["status"] for a in state["agents"]] == ["active"]
    ended = [t for t in state["tasks"] if t["terminal"]]
    assert sorted(t["state"] for t in ended) == ["TASK_FAILED", "TASK_FINISHED", "TASK_FINISHED"]
    assert state["task_counts"] == {}  # all ended
    assert get_json(base + "/state?completed=1")["tasks"] == ended[-1:]
    assert get(base + "/health") == (200, "leading\n")
    assert get(agent + "/health") == (200, "registered\n")


def test_a_running_tasks_output_is_followed_over_http_until_it_ends(
    one_agent: LocalCluster,
) -> None:
    base = one_agent.http_url().rstrip("/")
    script = "echo first; sleep 1; echo second"
    runner = threading.Thread(target=run, args=(one_agent, "--name", "talker", "--", "sh", "-c",
                                                script))
    runner.start()
    try:
        def running() -> str | None:
            tasks = get_json(base + "/state")["tasks"]
            return next((t["id"] for t in tasks if t["name"] == "talker"), None)
        assert_eventually(lambda: running() is not None, timeout_s=20)
        status, body = get(f"{base}/tasks/{running()}/stdout?follow=1", timeout_s=20)
        assert (status, body) == (200, "first\nsecond\n")
    finally:
        runner.join(timeout=60)


def test_bad_http_requests_get_clear_errors(one_agent: LocalCluster) -> None:
    base = one_agent.http_url().rstrip("/")
    assert get(base + "/no/such/page")[0] == 404
    assert get(base + "/tasks/no-such-task/stdout") == (404, "task 'no-such-task' is not known\n")
    status, body = get(base + "/tasks/no-such-task/environ")
    assert status == 404 and "a task has stdout and stderr" in body
    assert get(base + "/state", method="POST")[0] == 405
    assert get(base + "/metrics", method="DELETE")[0] == 405
    assert get(base + "/state?completed=lots") == (
        400, "completed: must be a whole number >= 0, got 'lots'\n")
    status, body = get(base + "/tasks/x/stdout?offset=-3")
    assert (status, body) == (400, "offset: must be a whole number >= 0, got '-3'\n")


def cli_json(cluster: LocalCluster, *argv: str) -> list[dict]:  # type: ignore[type-arg]
    done = subprocess.run([str(MESOSLITE), *argv, "--json"], env=cluster.cli_env(),
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def test_state_holds_what_the_cli_json_views_print(one_agent: LocalCluster, tmp_path: Path) -> None:
    base = one_agent.http_url().rstrip("/")
    assert run(one_agent, "--name", "one", "--", "true").returncode == 0
    spec = tmp_path / "job.yaml"
    spec.write_text("name: nightly\ntype: cron\nschedule: '0 3 * * *'\n"
                    "command: 'true'\nresources: {cpus: 0.1, mem: 16}\n")
    submitted = subprocess.run([str(MESOSLITE), "job", "submit", str(spec)],
                               env=one_agent.cli_env(), capture_output=True, text=True, timeout=30)
    assert submitted.returncode == 0, submitted.stderr
    state = get_json(base + "/state")
    by_id = lambda docs: sorted(docs, key=lambda d: d.get("id") or d.get("name") or d["role"])  # noqa: E731
    assert by_id(state["agents"]) == by_id(cli_json(one_agent, "agent", "list"))
    assert by_id(state["tasks"]) == by_id(cli_json(one_agent, "task", "list", "--all"))
    assert by_id(state["roles"]) == by_id(cli_json(one_agent, "role", "list"))
    frameworks = [{k: v for k, v in f.items() if k != "dominant_share"}
                  for f in state["frameworks"]]
    assert by_id(frameworks) == by_id(cli_json(one_agent, "framework", "list"))
    jobs = cli_json(one_agent, "job", "list")
    assert [j["name"] for j in state["jobs"]] == [j["name"] for j in jobs] == ["nightly"]
    assert state["jobs"][0].keys() == jobs[0].keys()
    assert state["jobs"][0]["next_run_at"] == jobs[0]["next_run_at"] is not None
    jsonschema.validate(state, json.loads(SCHEMA.read_text()))


def test_a_taken_http_port_ends_the_master_with_one_clear_line(tmp_path: Path) -> None:
    import socket

    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        done = subprocess.run(
            [str(MESOSLITE.with_name("mesoslite-master")), "--port", "0", "--http-port",
             str(port), "--work-dir", str(tmp_path / "m")],
            capture_output=True, text=True, timeout=60,
        )
    assert done.returncode == 2
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"mesoslite-master: --http-port: cannot listen on 127.0.0.1:{port}")
    assert "Traceback" not in done.stderr
