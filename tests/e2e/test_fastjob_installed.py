"""`mesoslite job submit --wait` from a non-editable `pip install .` in a fresh venv (issue 15):
the fast path without `site`, grpc, click or yaml; `MESOSLITE_NO_FASTRUN=1` the click path,
with the same output and exit code."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from mesoslite.testing import LocalCluster
from tests.e2e.test_fastrun_installed import _imported, _install

SPEC = ("name: installed\ntype: batch\ncommand: \"true\"\ninstances: 2\n"
        "resources: {cpus: 0.05, mem: 16}\n")


def test_a_non_editable_install_submits_and_waits_on_the_fast_path(tmp_path: Path) -> None:
    bin_dir = _install(tmp_path)
    spec = tmp_path / "job.yaml"
    spec.write_text(SPEC)
    with LocalCluster(tmp_path / "cluster", agents=1) as cluster:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MESOSLITE_", "PYTHON"))}
        env.update(MESOSLITE_MASTER=cluster.master_address, PYTHONPROFILEIMPORTTIME="1",
                   MESOSLITE_MASTER_HTTP=cluster.http_url()[len("http://"):].rstrip("/"),
                   XDG_CACHE_HOME=str(tmp_path / "cache"))
        runs = [subprocess.run([str(bin_dir / "mesoslite"), "job", "submit", "--wait", str(spec)],
                               env={**env, **extra}, capture_output=True, text=True, timeout=120)
                for extra in ({}, {"MESOSLITE_NO_FASTRUN": "1"})]
    fast, slow = runs
    for run in runs:
        own = [ln for ln in run.stderr.splitlines() if not ln.startswith("import time:")]
        assert (run.returncode, run.stdout, own[-1]) == (0, "installed\n", "installed: SUCCEEDED")
    imported = _imported(fast.stderr)
    assert "mesoslite.fastjob" in imported
    assert not imported & {"site", "os", "grpc", "click", "yaml", "asyncio", "socket", "re",
                           "mesoslite.jobs", "mesoslite.cli"}, sorted(imported)
    assert {"site", "click", "grpc", "mesoslite.cli"} <= _imported(slow.stderr)
