"""Plain text stays on loopback (issue 14): a daemon bound elsewhere without TLS refuses to
start, naming `--insecure`, and starts with it or with TLS. Real daemon processes."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mesoslite.errors import ConfigError
from mesoslite.security.tls import check_plain_text_bind, is_loopback
from mesoslite.security.tls_certs import TlsFiles, make_tls_dir
from mesoslite.testing import assert_eventually
from mesoslite.transport import PLAIN, Security

START_S = 20.0


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_dir(tmp_path_factory.mktemp("certs"))


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[str]]]:
    """Daemons started by the test, each ended by its PID however the test ends."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for p in started:
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def start(procs: list[subprocess.Popen[str]], module: str, log: Path, *args: str) -> Any:
    p = subprocess.Popen(
        [sys.executable, "-m", module, *args], stdout=log.open("w"), stderr=subprocess.STDOUT,
        text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    procs.append(p)
    return p


def master_args(tmp_path: Path, host: str) -> list[str]:
    return ["--host", host, "--port", "0", "--http-port", "0", "--work-dir", str(tmp_path / "m")]


def tls_args(certs: TlsFiles) -> list[str]:
    return ["--tls-ca", str(certs.ca), "--tls-cert", str(certs.server_cert),
            "--tls-key", str(certs.server_key)]


def test_a_master_on_all_interfaces_without_tls_exits_naming_insecure(
    tmp_path: Path, procs: list[subprocess.Popen[str]],
) -> None:
    log = tmp_path / "master.log"
    p = start(procs, "mesoslite.master.main", log, *master_args(tmp_path, "0.0.0.0"))
    assert p.wait(timeout=START_S) != 0
    lines = log.read_text().strip().splitlines()
    assert len(lines) == 1, lines
    assert "--host" in lines[0] and "--insecure" in lines[0] and "0.0.0.0" in lines[0]
    assert not (tmp_path / "m" / "master.json").exists()


@pytest.mark.parametrize("how", ["--insecure", "tls"])
def test_a_master_on_all_interfaces_starts_with_insecure_or_tls(
    tmp_path: Path, procs: list[subprocess.Popen[str]], certs: TlsFiles, how: str,
) -> None:
    extra = ["--insecure"] if how == "--insecure" else tls_args(certs)
    p = start(procs, "mesoslite.master.main", tmp_path / "master.log",
              *master_args(tmp_path, "0.0.0.0"), *extra)
    assert_eventually(lambda: (tmp_path / "m" / "master.json").exists(), timeout_s=START_S)
    assert p.poll() is None


def test_an_agent_serving_off_loopback_without_tls_exits_and_starts_with_insecure(
    tmp_path: Path, procs: list[subprocess.Popen[str]],
) -> None:
    args = ["--master", "127.0.0.1:1", "--work-dir", str(tmp_path / "a"),
            "--grpc-address", "0.0.0.0:0", "--http-port", "-1"]
    log = tmp_path / "agent.log"
    p = start(procs, "mesoslite.agent.main", log, *args)
    assert p.wait(timeout=START_S) != 0
    text = log.read_text()
    assert "--grpc-address" in text and "--insecure" in text
    log2 = tmp_path / "agent2.log"
    p2 = start(procs, "mesoslite.agent.main", log2, *args, "--insecure")
    assert_eventually(lambda: "agent starting" in log2.read_text(), timeout_s=START_S)
    assert p2.poll() is None


def test_an_unreadable_certificate_stops_the_master_naming_the_flag(
    tmp_path: Path, procs: list[subprocess.Popen[str]], certs: TlsFiles,
) -> None:
    log = tmp_path / "master.log"
    p = start(procs, "mesoslite.master.main", log, *master_args(tmp_path, "127.0.0.1"),
              "--tls-cert", str(tmp_path / "missing.pem"), "--tls-key", str(certs.server_key))
    assert p.wait(timeout=START_S) != 0
    assert "--tls-cert: cannot read" in log.read_text()
    key_text = certs.server_key.read_text()
    assert "PRIVATE KEY" not in log.read_text() and key_text not in log.read_text()


@pytest.mark.parametrize("host,loopback", [
    ("127.0.0.1", True), ("127.8.9.10", True), ("::1", True), ("[::1]", True),
    ("localhost", True), ("0.0.0.0", False), ("::", False), ("", False),
    ("192.0.2.7", False), ("10.1.2.3", False),
])
def test_which_addresses_are_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_the_bind_check_passes_loopback_tls_and_insecure_and_refuses_the_rest() -> None:
    check_plain_text_bind([("--host", "127.0.0.1")], PLAIN, insecure=False)
    check_plain_text_bind([("--host", "0.0.0.0")], PLAIN, insecure=True)
    check_plain_text_bind([("--host", "0.0.0.0")], Security(tls_cert="c", tls_key="k"), False)
    with pytest.raises(ConfigError, match="--http-host: refusing plain text on 10.0.0.1"):
        check_plain_text_bind(
            [("--grpc-address", "127.0.0.1"), ("--http-host", "10.0.0.1")], PLAIN, False
        )
