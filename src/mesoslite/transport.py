"""Every gRPC channel and listening port mesoslite opens goes through here.

One place decides how a process speaks to its peers: plain text, TLS, mutual TLS, and which
credentials ride on each call (issue 14). Callers say where to connect and with what
`Security`; they never build channels or ports themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import grpc

from mesoslite.rpc import CHANNEL_OPTIONS


@dataclass(frozen=True, slots=True)
class Security:
    """How this process speaks to mesoslite peers. The default is plain text, no credentials.

    tls_ca: PEM file of the CA that signs peers' certificates; set = TLS on.
    tls_cert, tls_key: this process's own certificate and key (server side; client side for
        mutual TLS).
    principal, secret: the credentials this process presents as a client.
    """

    tls_ca: str = ""
    tls_cert: str = ""
    tls_key: str = ""
    principal: str = ""
    secret: str = field(default="", repr=False)  # never in a log line or traceback

    @property
    def tls(self) -> bool:
        return bool(self.tls_ca or self.tls_cert)


PLAIN = Security()

# The credentials a one-identity process (the CLI) presents on every channel whose
# `Security` names no principal; set once from `--principal`/`--secret-file`.
_process_credentials: tuple[str, str] = ("", "")


def use_client_credentials(principal: str, secret: str) -> None:
    """Present `principal`/`secret` on every channel opened from now on without its own."""
    global _process_credentials
    _process_credentials = (principal, secret)


def _credentials(security: Security) -> tuple[str, str]:
    if security.principal:
        return security.principal, security.secret
    return _process_credentials


def client_security(
    principal: str, secret_file: str, base: Security | None = None
) -> Security:
    """The `transport.Security` for `--principal`/`--secret-file` (on top of `base`'s TLS
    files). Raises `ConfigError` naming the flag when one is given without the other."""
    from mesoslite.errors import ConfigError
    from mesoslite.security.credentials import check_principal, read_secret_file

    base = PLAIN if base is None else base
    if not principal and not secret_file:
        return base
    if not principal:
        raise ConfigError("--secret-file: given without --principal")
    if not secret_file:
        raise ConfigError("--principal: given without --secret-file (the secret's file)")
    bad = check_principal(principal)
    if bad:
        raise ConfigError(f"--principal: {bad}")
    secret = read_secret_file(secret_file)
    return replace(base, principal=principal, secret=secret)


def open_channel(
    address: str,
    security: Security = PLAIN,
    *,
    aio: bool = True,
    options: list[tuple[str, Any]] | None = None,
) -> Any:
    """A channel to `address` (HOST:PORT): `grpc.aio.Channel` if `aio`, else `grpc.Channel`."""
    from mesoslite.security import auth_client

    opts = CHANNEL_OPTIONS if options is None else options
    principal, secret = _credentials(security)
    if security.tls:
        from mesoslite.security.tls import channel_credentials

        tls = channel_credentials(security)
        if aio:
            return grpc.aio.secure_channel(
                address, tls, options=opts,
                interceptors=auth_client.aio_interceptors(principal, secret),
            )
        channel = grpc.secure_channel(address, tls, options=opts)
    elif aio:
        return grpc.aio.insecure_channel(
            address, options=opts, interceptors=auth_client.aio_interceptors(principal, secret)
        )
    else:
        channel = grpc.insecure_channel(address, options=opts)
    return auth_client.intercept_blocking(channel, principal, secret)


def add_port(server: Any, address: str, security: Security = PLAIN) -> int:
    """Listen on `address` (HOST:PORT, port 0 picks one); the port bound, 0 if none."""
    if security.tls:
        from mesoslite.security.tls import server_credentials

        credentials = server_credentials(security)  # a bad file is a ConfigError, not "0"
        try:
            return int(server.add_secure_port(address, credentials))
        except RuntimeError:
            return 0
    try:
        return int(server.add_insecure_port(address))
    except RuntimeError:
        return 0
