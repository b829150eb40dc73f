"""Principals and their secrets, hashed at rest: the master's `--credentials` file (issue 14).

The file maps each principal to a hash made by `mesoslite credentials hash`:

    alice: scrypt$16384$8$1$<salt, base64>$<hash, base64>

(YAML; a line per principal is the simple form of it). A secret is never stored, logged or
echoed in clear. Checking a secret costs one scrypt (tens of milliseconds, on purpose), so a
verified pair is remembered as (principal, sha256(secret)): later calls cost one sha256 and
a constant-time compare.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from dataclasses import dataclass, field

from mesoslite.errors import ConfigError
from mesoslite.security.yaml_doc import load_yaml

# scrypt's cost: n=2**14, r=8 takes 16 MB and ~50 ms; an attacker holding the file pays
# that per guess. Stored in each hash, so that raising it later keeps old hashes valid.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
SALT_BYTES, HASH_BYTES = 16, 32
MAX_SECRET_BYTES = 1024
_PRINCIPAL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@/-]{0,127}$")


def check_principal(name: str) -> str | None:
    """What is wrong with `name` as a principal, or None."""
    if not _PRINCIPAL.match(name):
        return (
            f"principal must be 1-128 letters, digits or ._@/- starting with a letter or "
            f"digit, got {name[:64]!r}"
        )
    return None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _scrypt(secret: bytes, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        secret, salt=salt, n=n, r=r, p=p, maxmem=256 * 1024 * 1024, dklen=HASH_BYTES
    )


def hash_secret(secret: str, *, salt: bytes | None = None) -> str:
    """The at-rest form of `secret`: `scrypt$N$R$P$SALT$HASH` with a fresh random salt."""
    if not secret:
        raise ValueError("the secret is empty")
    raw = secret.encode()
    if len(raw) > MAX_SECRET_BYTES:
        raise ValueError(f"the secret is longer than {MAX_SECRET_BYTES} bytes")
    salt = os.urandom(SALT_BYTES) if salt is None else salt
    digest = _scrypt(raw, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


@dataclass(frozen=True, slots=True)
class SecretHash:
    """A parsed `scrypt$N$R$P$SALT$HASH`."""

    n: int
    r: int
    p: int
    salt: bytes
    digest: bytes

    @staticmethod
    def parse(text: str) -> SecretHash:
        """Raises `ValueError` with a reason that never quotes `text` (it may be a secret)."""
        parts = text.strip().split("$")
        if len(parts) != 6 or parts[0] != "scrypt":
            raise ValueError(
                "not a hash made by `mesoslite credentials hash` (scrypt$N$R$P$SALT$HASH); "
                "secrets are never stored in clear"
            )
        try:
            n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
            salt = base64.b64decode(parts[4], validate=True)
            digest = base64.b64decode(parts[5], validate=True)
        except ValueError:
            raise ValueError("a malformed scrypt hash (bad numbers or base64)") from None
        if n < 2 or n & (n - 1) or not 1 <= r <= 64 or not 1 <= p <= 16 or n > 2**20:
            raise ValueError("scrypt parameters out of range")
        if not salt or len(digest) != HASH_BYTES:
            raise ValueError("a malformed scrypt hash (salt or hash length)")
        return SecretHash(n, r, p, salt, digest)

    def matches(self, secret: str) -> bool:
        raw = secret.encode()
        if not raw or len(raw) > MAX_SECRET_BYTES:
            return False
        return hmac.compare_digest(_scrypt(raw, self.salt, self.n, self.r, self.p), self.digest)


@dataclass(slots=True)
class Credentials:
    """The principals a master accepts. `verify` is safe to call from any thread."""

    hashes: dict[str, SecretHash]
    # principal -> sha256 of the secret last verified for it (the fast path).
    _verified: dict[str, bytes] = field(default_factory=dict)

    def __contains__(self, principal: str) -> bool:
        return principal in self.hashes

    def verified_fast(self, principal: str, secret: str) -> bool | None:
        """True/False when the answer is known without scrypt; None when it needs the hash."""
        known = self.hashes.get(principal)
        if known is None:
            return False
        cached = self._verified.get(principal)
        if cached is None:
            return None
        if hmac.compare_digest(cached, hashlib.sha256(secret.encode()).digest()):
            return True
        return None  # maybe a new secret after a file change: check the slow way

    def verify(self, principal: str, secret: str) -> bool:
        """Whether `secret` is `principal`'s; compares in constant time."""
        fast = self.verified_fast(principal, secret)
        if fast is not None:
            return fast
        if not self.hashes[principal].matches(secret):
            return False
        self._verified[principal] = hashlib.sha256(secret.encode()).digest()
        return True


def parse_credentials(text: str, source: str) -> Credentials:
    """Credentials from the file's text. Raises `ConfigError` naming `source` and each bad
    entry by its principal, never quoting a value."""
    doc = load_yaml(text, source)
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise ConfigError(f"{source}: must map each principal to its hash (`principal: hash`)")
    problems: list[str] = []
    hashes: dict[str, SecretHash] = {}
    for principal, value in doc.items():
        name = str(principal)
        bad = check_principal(name)
        if bad:
            problems.append(f"{source}: {bad}")
            continue
        if not isinstance(value, str):
            problems.append(f"{source}: principal {name!r}: the value must be a hash string")
            continue
        try:
            hashes[name] = SecretHash.parse(value)
        except ValueError as e:
            problems.append(f"{source}: principal {name!r}: {e}")
    if problems:
        raise ConfigError("; ".join(problems))
    return Credentials(hashes)


def load_credentials(path: str) -> Credentials:
    """Read `--credentials`; `ConfigError` if it cannot be read or is not valid."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise ConfigError(f"--credentials: cannot read {path}: {e.strerror or e}") from None
    return parse_credentials(text, path)


def read_secret_file(path: str, flag: str = "--secret-file") -> str:
    """The secret in `path`: its first line, without the line end. `ConfigError` naming
    `flag` if unreadable or empty (never quoting what it holds)."""
    try:
        with open(path, encoding="utf-8") as f:
            secret = f.readline().rstrip("\r\n")
    except OSError as e:
        raise ConfigError(f"{flag}: cannot read {path}: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{flag}: {path} is not UTF-8 text") from None
    if not secret:
        raise ConfigError(f"{flag}: {path} holds no secret (its first line is empty)")
    if len(secret.encode()) > MAX_SECRET_BYTES:
        raise ConfigError(f"{flag}: the secret in {path} is longer than {MAX_SECRET_BYTES} bytes")
    return secret
