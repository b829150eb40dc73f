"""ZooKeeper digest auth (`--zk-auth-file`, issue 14): a real master on a real ZooKeeper keeps
its registry unreadable to a client without the secret, which never shows in its output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import NoAuthError

from mesoslite.discovery import lookup_leader, parse_zk_url
from mesoslite.testing import assert_eventually

SECRET = "s3cret-Zk-pw"
START_S = 30.0


@pytest.fixture
def auth_file(tmp_path: Path) -> Path:
    path = tmp_path / "zk-auth"
    path.write_text(f"mesoslite:{SECRET}\n")
    path.chmod(0o600)
    return path


@pytest.fixture
def kazoo_clients() -> Iterator[list[KazooClient]]:
    clients: list[KazooClient] = []
    yield clients
    for c in clients:
        c.stop()
        c.close()


def kazoo(zk_url: str, clients: list[KazooClient], auth: bool) -> KazooClient:
    url = parse_zk_url(zk_url)
    data = [("digest", f"mesoslite:{SECRET}")] if auth else None
    client = KazooClient(hosts=url.hosts_string, auth_data=data, timeout=10)
    clients.append(client)
    client.start(timeout=10)
    return client


@pytest.fixture
def master(tmp_path: Path, zk_url: str, auth_file: Path) -> Iterator[Path]:
    """A master on `zk_url` with digest auth; yields its log once it leads."""
    log = tmp_path / "master.log"
    work = tmp_path / "m"
    p = subprocess.Popen(
        [sys.executable, "-m", "mesoslite.master.main", "--port", "0", "--http-port", "-1",
         "--work-dir", str(work), "--zk", zk_url, "--zk-auth-file", str(auth_file),
         "--zk-session-timeout-s", "4", "--log-level", "debug"],
        stdout=log.open("w"), stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        def leading() -> bool:
            assert p.poll() is None, log.read_text()
            info = work / "master.json"
            return info.exists() and json.loads(info.read_text()).get("leading") is True

        assert_eventually(leading, timeout_s=START_S)
        yield log
    finally:
        p.terminate()
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def test_the_registry_is_unreadable_without_the_digest_and_readable_with_it(
    master: Path, zk_url: str, kazoo_clients: list[KazooClient],
) -> None:
    path = parse_zk_url(zk_url).path
    registry = f"{path}/registry"
    stranger = kazoo(zk_url, kazoo_clients, auth=False)
    assert stranger.exists(registry) is not None  # it is there ...
    with pytest.raises(NoAuthError):
        stranger.get_children(registry)  # ... but not to be listed
    with pytest.raises(NoAuthError):
        stranger.get(f"{registry}/meta")
    with pytest.raises(NoAuthError):
        stranger.get_children(f"{path}/log")
    owner = kazoo(zk_url, kazoo_clients, auth=True)
    assert owner.get_children(registry)
    owner.get(f"{registry}/meta")
    # The election stays readable: agents and the CLI find the leader without the secret.
    assert lookup_leader(zk_url, timeout_s=10)
    assert SECRET not in master.read_text()


def test_print_config_shows_the_file_not_the_secret(zk_url: str, auth_file: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "mesoslite.master.main", "--zk", zk_url,
         "--zk-auth-file", str(auth_file), "--print-config"],
        capture_output=True, text=True, timeout=30,
    )
    assert out.returncode == 0, out.stderr
    assert str(auth_file) in out.stdout and SECRET not in out.stdout + out.stderr


@pytest.mark.parametrize("content", [f"no-colon-{SECRET}", f":{SECRET}", ""])
def test_a_bad_auth_file_stops_the_master_without_showing_its_content(
    tmp_path: Path, zk_url: str, content: str,
) -> None:
    bad = tmp_path / "bad-auth"
    bad.write_text(content)
    out = subprocess.run(
        [sys.executable, "-m", "mesoslite.master.main", "--port", "0", "--http-port", "-1",
         "--work-dir", str(tmp_path / "m"), "--zk", zk_url, "--zk-auth-file", str(bad)],
        capture_output=True, text=True, timeout=30,
    )
    assert out.returncode != 0
    assert "--zk-auth-file" in out.stderr and "USER:PASSWORD" in out.stderr
    assert SECRET not in out.stdout + out.stderr


def test_an_auth_file_without_zk_is_refused(tmp_path: Path, auth_file: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "mesoslite.master.main", "--port", "0", "--http-port", "-1",
         "--work-dir", str(tmp_path / "m"), "--zk-auth-file", str(auth_file)],
        capture_output=True, text=True, timeout=30,
    )
    assert out.returncode == 2
    assert "--zk-auth-file: needs --zk" in out.stderr and SECRET not in out.stderr
