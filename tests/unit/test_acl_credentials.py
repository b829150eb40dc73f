"""Credentials (`security/credentials.py`): hashed at rest, verified in constant time with a
cache, parsed strictly without echoing values; the Basic value both sides use; the CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mesoslite.errors import ConfigError
from mesoslite.security import credentials as cr
from mesoslite.security.auth_client import basic_value, parse_basic
from mesoslite.transport import Security, client_security

SALT = b"0123456789abcdef"


def test_a_hash_is_salted_scrypt_and_verifies_only_its_secret() -> None:
    line = cr.hash_secret("s3cret")
    assert line.startswith(f"scrypt${cr.SCRYPT_N}${cr.SCRYPT_R}${cr.SCRYPT_P}$")
    assert "s3cret" not in line
    assert cr.hash_secret("s3cret") != line  # a fresh salt each time
    assert cr.hash_secret("s3cret", salt=SALT) == cr.hash_secret("s3cret", salt=SALT)
    parsed = cr.SecretHash.parse(line)
    assert parsed.matches("s3cret") and not parsed.matches("s3creT")
    assert not parsed.matches("") and not parsed.matches("x" * 2000)


def test_verify_caches_a_verified_secret_and_rechecks_a_different_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    creds = cr.parse_credentials(f"alice: {cr.hash_secret('a-secret')}\n", "c.yaml")
    assert creds.verified_fast("alice", "a-secret") is None  # not verified yet: needs scrypt
    assert creds.verified_fast("mallory", "x") is False  # unknown: no scrypt needed
    assert creds.verify("alice", "a-secret")
    assert creds.verified_fast("alice", "a-secret") is True
    calls: list[str] = []
    real = cr._scrypt
    monkeypatch.setattr(cr, "_scrypt", lambda *a: calls.append("scrypt") or real(*a))
    assert creds.verify("alice", "a-secret") and calls == []  # the fast path
    assert not creds.verify("alice", "wrong") and calls == ["scrypt"]
    assert creds.verified_fast("alice", "a-secret") is True  # a wrong try evicts nothing


def test_a_credentials_file_refuses_clear_secrets_without_echoing_them() -> None:
    text = f"alice: {cr.hash_secret('x')}\nbob: hunter2\n'bad name': {cr.hash_secret('y')}\n"
    with pytest.raises(ConfigError) as info:
        cr.parse_credentials(text, "creds.yaml")
    message = info.value.message
    assert "creds.yaml: principal 'bob': not a hash made by `mesoslite credentials hash`" \
        in message
    assert "principal must be" in message and "'bad name'" in message
    assert "hunter2" not in message


@pytest.mark.parametrize("text", ["[a, b]\n", "a: [\n", "alice: 3\n"])
def test_a_credentials_file_of_the_wrong_shape_names_the_file(text: str) -> None:
    with pytest.raises(ConfigError, match=r"^creds\.yaml: "):
        cr.parse_credentials(text, "creds.yaml")


def test_basic_values_round_trip_and_junk_is_none() -> None:
    value = basic_value("alice", "p:ss word")
    assert parse_basic(value) == ("alice", "p:ss word")
    for junk in ("", "Bearer abc", "Basic", "Basic !!!", "Basic " + "YWxpY2U=", "Basic Og=="):
        assert parse_basic(junk) is None, junk


def test_client_security_reads_the_secret_file_and_hides_it(tmp_path: Path) -> None:
    (tmp_path / "s").write_text("the-secret\nignored\n")
    security = client_security("alice", str(tmp_path / "s"))
    assert (security.principal, security.secret) == ("alice", "the-secret")
    assert "the-secret" not in repr(security)
    assert client_security("", "") == Security()
    with pytest.raises(ConfigError, match="--principal: given without --secret-file"):
        client_security("alice", "")
    with pytest.raises(ConfigError, match="--secret-file: given without --principal"):
        client_security("", str(tmp_path / "s"))
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ConfigError, match="holds no secret"):
        client_security("alice", str(tmp_path / "empty"))


def test_the_cli_hashes_a_secret_from_stdin(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mesoslite.cli", "credentials", "hash", "alice"],
        input="from-stdin\n", capture_output=True, text=True, timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert "from-stdin" not in done.stdout
    creds = cr.parse_credentials(done.stdout, "out")
    assert creds.verify("alice", "from-stdin")
    refused = subprocess.run(
        [sys.executable, "-m", "mesoslite.cli", "credentials", "hash", "alice"],
        input="\n", capture_output=True, text=True, timeout=30,
    )
    assert refused.returncode == 2 and "no secret on stdin" in refused.stderr
