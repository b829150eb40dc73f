"""The `mesoslite` command as a non-editable `pip install .` puts it in a fresh venv (issue 15):
`run` takes the fast path without `site`, every other command the click CLI with it. (The
editable install of the venv running the tests is what every other e2e test runs.)"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

from mesoslite.testing import LocalCluster

ROOT = Path(__file__).parents[2]
PIP = [sys.executable, "-m", "pip"]


def _install(tmp: Path) -> Path:
    """A fresh venv with mesoslite from a wheel of this tree (no deps: the fast path needs
    none; a `.pth` lends it this venv's packages for the click path). Returns its bin/."""
    src = tmp / "src-copy"
    for part in ("src", "scripts", "pyproject.toml", "README.md"):
        copy = shutil.copytree if (ROOT / part).is_dir() else shutil.copy
        copy(ROOT / part, src / part)  # type: ignore[operator]
    quiet = {"capture_output": True, "text": True, "timeout": 300, "check": True}
    subprocess.run([*PIP, "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(tmp / "wheels"), str(src)], **quiet)  # type: ignore[call-overload]
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], **quiet)  # type: ignore[call-overload]
    (wheel,) = (tmp / "wheels").glob("mesoslite-*.whl")
    subprocess.run([*PIP, "--python", str(venv / "bin" / "python"), "install", "-q",
                    "--no-deps", str(wheel)], **quiet)  # type: ignore[call-overload]
    (lent,) = (venv / "lib").glob("python3*/site-packages")
    (lent / "zz-lent.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    return venv / "bin"


def _imported(stderr: str) -> set[str]:
    return {ln.rsplit("|", 1)[-1].strip() for ln in stderr.splitlines()
            if ln.startswith("import time:")}


def test_a_non_editable_install_runs_both_paths(tmp_path: Path) -> None:
    bin_dir = _install(tmp_path)
    assert (bin_dir / "mesoslite").read_bytes().startswith(b"#!/bin/sh\n")
    with LocalCluster(tmp_path / "cluster", agents=1) as cluster:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MESOSLITE_", "PYTHON"))}
        env.update(MESOSLITE_MASTER=cluster.master_address, PYTHONPROFILEIMPORTTIME="1",
                   MESOSLITE_MASTER_HTTP=cluster.http_url()[len("http://"):].rstrip("/"),
                   XDG_CACHE_HOME=str(tmp_path / "cache"))
        fast = subprocess.run([str(bin_dir / "mesoslite"), "run", "--", "sh", "-c",
                               "echo out; exit 4"], env=env, capture_output=True, text=True,
                              timeout=60)
        assert (fast.returncode, fast.stdout) == (4, "out\n"), fast.stderr
        imported = _imported(fast.stderr)
        assert "mesoslite.fastrun_http" in imported
        assert not imported & {"site", "os", "grpc", "click", "socket"}, sorted(imported)
        slow = subprocess.run([str(bin_dir / "mesoslite"), "agent", "list", "--json"], env=env,
                              capture_output=True, text=True, timeout=60)
        assert slow.returncode == 0, slow.stderr
        assert {"site", "click", "mesoslite.cli"} <= _imported(slow.stderr)
        assert cluster.agent_ids[0] in slow.stdout
