"""`mesoslite local --tls` (issue 14): the cluster it starts speaks TLS only, and the lines it
prints are all a client needs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

START_S = 60.0


def test_local_tls_prints_the_env_a_client_needs_and_plain_text_is_refused(
    tmp_path: Path,
) -> None:
    work = tmp_path / "local"
    local = subprocess.Popen(
        [sys.executable, "-m", "mesoslite.cli", "local", "--tls", "-n", "1", "--port", "0",
         "--http-port", "0", "--work-dir", str(work)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert local.stdout is not None
        exports: dict[str, str] = {}
        deadline = time.monotonic() + START_S
        while "MESOSLITE_TLS_KEY" not in exports and time.monotonic() < deadline:
            line = local.stdout.readline()
            if not line:
                break
            if line.strip().startswith("export "):
                name, _, value = line.strip().removeprefix("export ").partition("=")
                exports[name] = value
        assert set(exports) == {
            "MESOSLITE_MASTER", "MESOSLITE_TLS_CA", "MESOSLITE_TLS_CERT", "MESOSLITE_TLS_KEY"
        }, exports
        assert Path(exports["MESOSLITE_TLS_CA"]).parent == work / "tls"
        env = {k: v for k, v in os.environ.items() if not k.startswith("MESOSLITE_")}
        cmd = [sys.executable, "-m", "mesoslite.cli", "agent", "list", "--json"]
        ok = subprocess.run(cmd, env={**env, **exports}, capture_output=True, text=True,
                            timeout=60)
        assert ok.returncode == 0, ok.stderr
        assert '"active"' in ok.stdout
        plain = {**env, "MESOSLITE_MASTER": exports["MESOSLITE_MASTER"]}
        refused = subprocess.run(cmd, env=plain, capture_output=True, text=True, timeout=60)
        assert refused.returncode == 69, refused.stderr
    finally:
        local.send_signal(signal.SIGINT)
        try:
            local.wait(timeout=30)
        except subprocess.TimeoutExpired:
            local.kill()
            local.wait()
    assert local.returncode == 0
