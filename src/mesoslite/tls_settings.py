"""Which TLS each process uses (issue 14): a daemon's from its `--tls-*` flags, checked before
it listens; a client's from the CLI's `--tls-*` options or `$MESOSLITE_TLS_*`.

The helpers that build credentials and contexts are in `security/tls.py`, which the transport
imports; this module builds `transport.Security` values, so it sits above both.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from mesoslite.errors import ConfigError
from mesoslite.security.tls import check_files, check_plain_text_bind
from mesoslite.transport import Security

# The environment a client (CLI, SDK users, `mesoslite local --tls` users) reads its TLS from.
ENV_CA, ENV_CERT, ENV_KEY = "MESOSLITE_TLS_CA", "MESOSLITE_TLS_CERT", "MESOSLITE_TLS_KEY"


def daemon_security(config: Any) -> Security:
    """The `Security` of a daemon whose config has `tls_ca`, `tls_cert`, `tls_key`; the
    files are checked now, so that a bad path stops the daemon before it listens."""
    security = Security(
        tls_ca=config.tls_ca, tls_cert=config.tls_cert, tls_key=config.tls_key
    )
    check_files(security)
    return security


def master_security(config: Any) -> Security:
    """The master's `Security`, once every check that must pass before it listens has:
    readable TLS files, no plain text off loopback without `--insecure`, and a readable
    `--zk-auth-file` that goes with `--zk`.

    Raises:
        ConfigError: naming the flag at fault.
    """
    security = daemon_security(config)
    check_plain_text_bind([("--host", config.host)], security, config.insecure)
    if config.zk_auth_file:
        from mesoslite.security.zk_auth import read_zk_auth

        if not config.zk:
            raise ConfigError("--zk-auth-file: needs --zk (a standalone master uses no ZooKeeper)")
        read_zk_auth(config.zk_auth_file)
    return security


_client_override: Security | None = None


def set_client_security(security: Security | None) -> None:
    """Set the TLS that `client_security()` answers in this process (the CLI's options)."""
    global _client_override
    _client_override = security


def client_security(environ: Mapping[str, str] | None = None) -> Security:
    """The client TLS of this process: what `set_client_security` set, else
    `$MESOSLITE_TLS_CA`, `$MESOSLITE_TLS_CERT`, `$MESOSLITE_TLS_KEY` (plain text if unset)."""
    if _client_override is not None:
        return _client_override
    env = os.environ if environ is None else environ
    return Security(
        tls_ca=env.get(ENV_CA, ""), tls_cert=env.get(ENV_CERT, ""), tls_key=env.get(ENV_KEY, "")
    )
