"""ZooKeeper digest auth for the master (`--zk-auth-file`, issue 14).

The secret comes from a file, not the `zk://` URL, so that it never shows in `--print-config`,
a process listing or a log line. With it, every znode the master creates gets a digest ACL
(that user may do everything, nobody else anything), except the election znodes, which
anyone may read: agents and the CLI find the leader there without the secret, and they hold
only addresses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mesoslite.errors import ConfigError

FLAG = "--zk-auth-file"


@dataclass(frozen=True, slots=True)
class ZkAuth:
    """A ZooKeeper digest user; the password is left out of `repr` (logs, tracebacks)."""

    user: str
    password: str = field(repr=False)

    @property
    def auth_data(self) -> list[tuple[str, str]]:
        """kazoo's `auth_data`: sent with every (re)connection of the session."""
        return [("digest", f"{self.user}:{self.password}")]

    def private_acl(self) -> list[Any]:
        """This user may do everything; nobody else anything (the registry)."""
        from kazoo.security import make_digest_acl

        return [make_digest_acl(self.user, self.password, all=True)]

    def readable_acl(self) -> list[Any]:
        """This user may do everything; anyone may read (the election: leader addresses)."""
        from kazoo.security import make_acl

        return [*self.private_acl(), make_acl("world", "anyone", read=True)]


def read_zk_auth(path: str) -> ZkAuth:
    """The `USER:PASSWORD` held by the file at `path` (one line; surrounding blanks ignored).

    Raises:
        ConfigError: naming the flag and the path, never the file's content.
    """
    try:
        text = Path(path).read_text().strip()
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else "not readable text"
        raise ConfigError(f"{FLAG}: cannot read {path}: {reason}") from None
    user, sep, password = text.partition(":")
    if not sep or not user or not password or "\n" in text:
        raise ConfigError(f"{FLAG}: {path} must hold one line USER:PASSWORD, both non-empty")
    return ZkAuth(user, password)
