"""The jobs fast path on a standby master (issue 15): `POST /jobs/submit` answers 503 and
submits nothing; `mesoslite job submit` pointed at the standby falls back to the click path,
which follows the standby to the leader, and prints what it prints on the leader."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from mesoslite.testing.ha_cluster import HACluster

MESOSLITE = Path(sys.executable).with_name("mesoslite")
SPEC = "name: {name}\ntype: batch\ncommand: \"true\"\nresources: {{cpus: 0.05, mem: 16}}\n"


def _imported(stderr: str) -> set[str]:
    return {ln.rsplit("|", 1)[-1].strip() for ln in stderr.splitlines()
            if ln.startswith("import time:")}


def _job(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(MESOSLITE), "job", *args], env=env, capture_output=True,
                          text=True, timeout=120)


def test_a_standby_refuses_503_and_the_command_takes_the_click_path_to_the_leader(
    tmp_path: Path, zk_url: str
) -> None:
    with HACluster(tmp_path / "ha", zk_url, masters=2, agents=1) as ha:
        leader = ha.wait_for_leader()
        standby = 1 - leader
        port = int(ha.addresses[standby].rsplit(":", 1)[1])
        body = json.dumps({"grpc_port": port, "spec_yaml": SPEC.format(name="on-standby"),
                           "source": "x"}).encode()
        request = urllib.request.Request(ha.http_url(standby) + "jobs/submit", data=body,
                                         method="POST")
        try:
            urllib.request.urlopen(request, timeout=10)
            raise AssertionError("the standby took the submit")
        except urllib.error.HTTPError as e:
            assert e.code == 503 and f"leader is {ha.addresses[leader]}" in e.read().decode()

        env = {k: v for k, v in os.environ.items() if not k.startswith("MESOSLITE_")}
        env.update(XDG_CACHE_HOME=str(tmp_path / "c"), PYTHONPROFILEIMPORTTIME="1")
        for i, fast in ((leader, True), (standby, False)):
            name = f"via-{i}"
            spec = tmp_path / f"{name}.yaml"
            spec.write_text(SPEC.format(name=name))
            env_i = {**env, "MESOSLITE_MASTER": ha.addresses[i],
                     "MESOSLITE_MASTER_HTTP": ha.http_url(i)[len("http://"):].rstrip("/")}
            done = _job(env_i, "submit", "--wait", str(spec))
            own = [ln for ln in done.stderr.splitlines() if not ln.startswith("import time:")]
            assert (done.returncode, done.stdout, own[-1]) == (0, f"{name}\n",
                                                                f"{name}: SUCCEEDED"), own
            assert ("click" not in _imported(done.stderr)) is fast  # the leader: fast path
        env_l = {**env, "MESOSLITE_MASTER": ha.addresses[leader]}
        listed = json.loads(_job(env_l, "list", "--json").stdout)
        assert sorted(j["name"] for j in listed) == [f"via-{leader}", f"via-{standby}"]
