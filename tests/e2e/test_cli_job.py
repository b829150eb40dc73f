"""`mesoslite job` as a user runs it, against `mesoslite local` (2 agents named local-1 and
local-2): the examples of examples/jobs submit and run, status/list/history read them back,
kill ends them,
remove forgets ended ones, and bad input changes nothing."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

from tests.e2e.conftest import MESOSLITE, CliRunner, stop_local

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "jobs"


def start_local(tmp_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    out = tmp_path / "local.out"
    with out.open("w") as sink:
        proc = subprocess.Popen(
            [str(MESOSLITE), "local", "--agents", "2", "--port", "0",
             "--work-dir", str(tmp_path / "local")],
            stdout=sink, stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while "Ctrl-C stops" not in out.read_text():
        assert proc.poll() is None and time.monotonic() < deadline, out.read_text()
        time.sleep(0.05)
    master = re.search(r"MESOSLITE_MASTER=(\S+)", out.read_text())
    assert master, out.read_text()
    return proc, master.group(1)


def test_the_job_examples_run_on_mesoslite_local(tmp_path: Path, mesoslite: CliRunner) -> None:
    proc, master = start_local(tmp_path)
    try:
        batch = mesoslite("job", "submit", "--wait", str(EXAMPLES / "batch.yaml"),
                          master=master, timeout_s=90)
        assert batch.returncode == 0, batch.stderr
        assert batch.stdout.strip() == "word-count"
        status = mesoslite("job", "status", "word-count", "--json", master=master)
        doc = json.loads(status.stdout)
        assert doc["state"] == "SUCCEEDED"
        assert sorted(i["hostname"] for i in doc["instances"]) == ["local-1", "local-2"]

        svc = mesoslite("job", "submit", "--wait", str(EXAMPLES / "service.yaml"),
                        master=master, timeout_s=90)
        assert svc.returncode == 0, svc.stderr
        listed = json.loads(mesoslite("job", "list", "--json", master=master).stdout)
        assert {j["name"]: j["state"] for j in listed} == {
            "word-count": "SUCCEEDED", "heartbeat": "HEALTHY"}

        cron = mesoslite("job", "submit", str(EXAMPLES / "cron.yaml"), master=master)
        assert cron.returncode == 0, cron.stderr
        text = mesoslite("job", "status", "nightly-cleanup", master=master).stdout
        assert "SCHEDULED" in text and "next run" in text.lower(), text

        # Bad input: a duplicate name, an unknown job, a spec with a typo; nothing changes.
        again = mesoslite("job", "submit", str(EXAMPLES / "cron.yaml"), master=master)
        assert again.returncode == 65 and "nightly-cleanup" in again.stderr, again.stderr
        unknown = mesoslite("job", "status", "nope", master=master)
        assert unknown.returncode == 66 and "nope" in unknown.stderr
        bad = tmp_path / "bad.yaml"
        bad.write_text((EXAMPLES / "batch.yaml").read_text().replace("retries:", "retires:"))
        refused = mesoslite("job", "submit", str(bad), master=master)
        assert refused.returncode == 2 and "retires" in refused.stderr, refused.stderr
        assert len(json.loads(mesoslite("job", "list", "--json", master=master).stdout)) == 3

        history = json.loads(
            mesoslite("job", "history", "word-count", "--json", master=master).stdout)
        assert [h["exit_code"] for h in history] == [0, 0]
        killed = mesoslite("job", "kill", "heartbeat", master=master)
        assert killed.returncode == 0, killed.stderr
        doc = json.loads(mesoslite("job", "status", "heartbeat", "--json", master=master).stdout)
        assert doc["state"] == "KILLED"
        again = mesoslite("job", "kill", "heartbeat", master=master)
        assert (again.returncode, again.stdout) == (0, "job heartbeat has already ended: KILLED\n")

        # Remove: refused for a job that has not ended and for an unknown name.
        running = mesoslite("job", "remove", "nightly-cleanup", master=master)
        assert running.returncode == 65 and "kill it first" in running.stderr, running.stderr
        unknown = mesoslite("job", "remove", "nope", master=master)
        assert unknown.returncode == 66 and "nope" in unknown.stderr, unknown.stderr
        removed = mesoslite("job", "remove", "word-count", master=master)
        assert (removed.returncode, removed.stdout) == (0, "removed job word-count\n"), removed
        listed = json.loads(mesoslite("job", "list", "--json", master=master).stdout)
        assert sorted(j["name"] for j in listed) == ["heartbeat", "nightly-cleanup"]
        gone = mesoslite("job", "status", "word-count", master=master)
        assert gone.returncode == 66, gone.stderr
    finally:
        stop_local(proc)
