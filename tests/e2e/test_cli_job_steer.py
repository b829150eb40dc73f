"""`mesoslite job plan|suspend|resume|run-now`, and what `job status`/`job list` say about
pending and failed work, as a user runs them against a real master and 2 agents
(cpus:4;mem:4096 each) (issue 16 part 3, issue 17)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from mesoslite.testing import LocalCluster, assert_eventually
from tests.e2e.conftest import CliRunner

CRON = """
name: nightly
type: cron
command: sleep 60
resources: {cpus: 0.1, mem: 16}
schedule: "0 3 * * *"
concurrency: forbid
"""

SERVICE = """
name: web
type: service
command: sleep 600
instances: 2
resources: {cpus: 1, mem: 64}
"""


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return str(path)


def ok(done: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert done.returncode == 0, (done.returncode, done.stdout, done.stderr)
    return done


def status(mesoslite: CliRunner, master: str, name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(
        ok(mesoslite("job", "status", name, "--json", master=master)).stdout)
    return doc


def listed(mesoslite: CliRunner, master: str) -> Any:
    return json.loads(ok(mesoslite("job", "list", "--json", master=master)).stdout)


def test_job_plan_shows_where_instances_would_go_and_changes_nothing(
    cluster: LocalCluster, mesoslite: CliRunner, tmp_path: Path
) -> None:
    master = cluster.master_address
    big = write(tmp_path, "big", SERVICE.replace("instances: 2", "instances: 10"))
    before = listed(mesoslite, master)
    plan = json.loads(ok(mesoslite("job", "plan", big, "--json", master=master)).stdout)
    assert listed(mesoslite, master) == before == []
    assert plan["action"] == "create" and plan["version"] == 1
    actions = [i["action"] for i in plan["instances"]]
    assert actions == ["launch"] * 8 + ["wait"] * 2  # 4 cpus on each of 2 agents
    assert "no agent has cpus:1;mem:64 free" in plan["instances"][9]["reason"]
    text = ok(mesoslite("job", "plan", big, master=master)).stdout
    assert "8 would start now, 2 would wait" in text and "REASON" in text

    # An update: the diff against the running version, the instances to be replaced.
    ok(mesoslite("job", "submit", "--wait", "--timeout", "60",
                 write(tmp_path, "web", SERVICE), master=master, timeout_s=90))
    running = listed(mesoslite, master)
    new = write(tmp_path, "web2", SERVICE.replace("sleep 600", "sleep 700"))
    plan = json.loads(ok(mesoslite("job", "plan", new, "--json", master=master)).stdout)
    assert plan["action"] == "update" and plan["version"] == 2
    assert plan["changes"] == [{"field": "command", "old": "sleep 600", "new": "sleep 700"}]
    assert [i["action"] for i in plan["instances"]] == ["replace", "replace"]
    after = listed(mesoslite, master)
    assert [(j["name"], j["version"], j["spec_yaml"]) for j in after] == [
        (j["name"], j["version"], j["spec_yaml"]) for j in running]

    # What submit would refuse, plan refuses the same way.
    batch = write(tmp_path, "web3", SERVICE.replace("type: service", "type: batch"))
    refused = mesoslite("job", "plan", batch, master=master)
    assert refused.returncode == 65 and "type cannot change" in refused.stderr
    huge = write(tmp_path, "huge", SERVICE.replace("name: web", "name: huge")
                 .replace("cpus: 1", "cpus: 64"))
    refused = mesoslite("job", "plan", huge, master=master)
    assert refused.returncode == 2 and "no agent has cpus:64;mem:64 in all" in refused.stderr
    assert [j["name"] for j in listed(mesoslite, master)] == ["web"]


def test_suspend_resume_and_run_now_steer_a_cron_job(
    cluster: LocalCluster, mesoslite: CliRunner, tmp_path: Path
) -> None:
    master = cluster.master_address
    ok(mesoslite("job", "submit", write(tmp_path, "cron", CRON), master=master))
    assert ok(mesoslite("job", "suspend", "nightly", master=master)).stdout.strip() == (
        "suspended job nightly")
    assert status(mesoslite, master, "nightly")["state"] == "SUSPENDED"
    assert "SUSPENDED" in ok(mesoslite("job", "list", master=master)).stdout
    again = ok(mesoslite("job", "suspend", "nightly", master=master))
    assert "already suspended" in again.stdout

    # Kept in the registry: a restarted master still has it suspended.
    cluster.restart_master()
    master = cluster.master_address
    assert_eventually(lambda: status(mesoslite, master, "nightly")["state"] == "SUSPENDED",
                      timeout_s=30)
    resumed = ok(mesoslite("job", "resume", "nightly", master=master))
    assert resumed.stdout.startswith("resumed job nightly; next run ")
    doc = status(mesoslite, master, "nightly")
    assert doc["state"] == "SCHEDULED" and doc["next_run_at"] is not None

    started = ok(mesoslite("job", "run-now", "nightly", master=master))
    assert started.stdout.startswith("started run r") and "of job nightly" in started.stdout
    refused = mesoslite("job", "run-now", "nightly", master=master)
    assert refused.returncode == 65 and "forbid" in refused.stderr
    assert len(status(mesoslite, master, "nightly")["runs"]) == 1  # the refusal added none

    unknown = mesoslite("job", "suspend", "nope", master=master)
    assert unknown.returncode == 66 and "nope" in unknown.stderr
    ok(mesoslite("job", "submit", write(tmp_path, "svc", SERVICE), master=master))
    not_cron = mesoslite("job", "run-now", "web", master=master)
    assert not_cron.returncode == 65 and "only cron jobs" in not_cron.stderr


def test_status_and_list_say_why_work_is_pending_and_why_a_launch_failed(
    cluster: LocalCluster, mesoslite: CliRunner, tmp_path: Path
) -> None:
    master = cluster.master_address
    broken = ("name: broken\ntype: batch\ncommand: [/nonexistent/binary]\n"
              "resources: {cpus: 0.1, mem: 16}\n")
    done = mesoslite("job", "submit", "--wait", "--timeout", "60",
                     write(tmp_path, "broken", broken), master=master, timeout_s=90)
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "executable not found" in ok(mesoslite("job", "status", "broken",
                                                  master=master)).stdout
    row = next(j for j in listed(mesoslite, master) if j["name"] == "broken")
    assert "executable not found" in row["message"]
    assert "executable not found" in ok(mesoslite("job", "list", master=master)).stdout

    # Two instances of 3 cpus fill the agents; a 2-cpu instance then has nowhere to go.
    hog = SERVICE.replace("name: web", "name: hog").replace("cpus: 1", "cpus: 3")
    ok(mesoslite("job", "submit", "--wait", "--timeout", "60", write(tmp_path, "hog", hog),
                 master=master, timeout_s=90))
    late = SERVICE.replace("name: web", "name: late").replace("instances: 2", "instances: 1")
    ok(mesoslite("job", "submit", write(tmp_path, "late", late.replace("cpus: 1", "cpus: 2")),
                 master=master))
    doc = status(mesoslite, master, "late")
    assert doc["instances"][0]["state"] == "WAITING"
    assert "no agent has cpus:2;mem:64 free for role * now" in doc["instances"][0]["message"]
    assert doc["message"].startswith("instance 0: no agent has cpus:2;mem:64 free")
    text = ok(mesoslite("job", "status", "late", master=master)).stdout
    assert "no agent has cpus:2;mem:64 free" in text, text
