"""Every gRPC channel and listening port mesoslite opens goes through here.

One place decides how a process speaks to its peers: plain text, TLS, mutual TLS, and which
credentials ride on each call (issue 14). Callers say where to connect and with what
`Security`; they never build channels or ports themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
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
    secret: str = ""

    @property
    def tls(self) -> bool:
        return bool(self.tls_ca or self.tls_cert)


PLAIN = Security()


def open_channel(
    address: str,
    security: Security = PLAIN,
    *,
    aio: bool = True,
    options: list[tuple[str, Any]] | None = None,
) -> Any:
    """A channel to `address` (HOST:PORT): `grpc.aio.Channel` if `aio`, else `grpc.Channel`."""
    opts = CHANNEL_OPTIONS if options is None else options
    module: Any = grpc.aio if aio else grpc
    if security.tls:
        from mesoslite.security.tls import channel_credentials

        return module.secure_channel(address, channel_credentials(security), options=opts)
    return module.insecure_channel(address, options=opts)


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
