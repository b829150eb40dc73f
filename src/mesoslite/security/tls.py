"""TLS for mesoslite's gRPC and HTTP: loading PEM files, credentials and SSL contexts, and
the rule that plain text stays on loopback (issue 14).

A process has one `transport.Security`: `tls_ca` is the CA its peers' certificates must chain
to, `tls_cert`/`tls_key` its own. A server with a CA requires client certificates (mutual
TLS); a client with a certificate presents it. Every file problem is a `ConfigError` naming
the flag and the path, never the file's content (a key is a secret).
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from mesoslite.errors import ConfigError

if TYPE_CHECKING:
    import grpc


class TlsSettings(Protocol):
    """What these helpers read of a `mesoslite.transport.Security` (named here by shape: the
    transport imports this module, never the reverse)."""

    @property
    def tls_ca(self) -> str: ...
    @property
    def tls_cert(self) -> str: ...
    @property
    def tls_key(self) -> str: ...
    @property
    def tls(self) -> bool: ...


INSECURE_HINT = "give --tls-cert and --tls-key (and --tls-ca), or --insecure to allow plain text"


def read_pem(path: str, flag: str) -> bytes:
    """The bytes of the PEM file at `path`.

    Raises:
        ConfigError: naming `flag` and `path` when it cannot be read or is not PEM.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise ConfigError(f"{flag}: cannot read {path}: {e.strerror or e}") from None
    if b"-----BEGIN " not in data:
        raise ConfigError(f"{flag}: {path} is not a PEM file")
    return data


def check_files(security: TlsSettings) -> None:
    """Refuse an incomplete or unreadable TLS setup before any port or channel opens.

    Raises:
        ConfigError: a key without a certificate (or the reverse), or a file not readable.
    """
    if bool(security.tls_cert) != bool(security.tls_key):
        raise ConfigError("--tls-cert and --tls-key: give both or neither")
    for path, flag in (
        (security.tls_ca, "--tls-ca"), (security.tls_cert, "--tls-cert"),
        (security.tls_key, "--tls-key"),
    ):
        if path:
            read_pem(path, flag)


def _own_pair(security: TlsSettings) -> tuple[bytes | None, bytes | None]:
    if not security.tls_cert:
        return None, None
    return read_pem(security.tls_key, "--tls-key"), read_pem(security.tls_cert, "--tls-cert")


def channel_credentials(security: TlsSettings) -> grpc.ChannelCredentials:
    """`grpc.ChannelCredentials`: trust `tls_ca` (the system's roots without one), and present
    our own certificate when we have one (mutual TLS)."""
    import grpc

    ca = read_pem(security.tls_ca, "--tls-ca") if security.tls_ca else None
    key, cert = _own_pair(security)
    return grpc.ssl_channel_credentials(
        root_certificates=ca, private_key=key, certificate_chain=cert
    )


def server_credentials(security: TlsSettings) -> grpc.ServerCredentials:
    """`grpc.ServerCredentials`: our certificate; with `tls_ca`, clients must present one
    signed by it (mutual TLS).

    Raises:
        ConfigError: a TLS server needs --tls-cert and --tls-key.
    """
    import grpc

    if not (security.tls_cert and security.tls_key):
        raise ConfigError("--tls-ca: a TLS server also needs --tls-cert and --tls-key")
    key = read_pem(security.tls_key, "--tls-key")
    cert = read_pem(security.tls_cert, "--tls-cert")
    ca = read_pem(security.tls_ca, "--tls-ca") if security.tls_ca else None
    return grpc.ssl_server_credentials(
        [(key, cert)], root_certificates=ca, require_client_auth=ca is not None
    )


def server_ssl_context(security: TlsSettings) -> ssl.SSLContext | None:
    """The HTTP server's context (None: plain HTTP). Client certificates are not required
    on HTTP (browsers and Prometheus rarely have one); they are verified when given."""
    if not security.tls:
        return None
    if not (security.tls_cert and security.tls_key):
        raise ConfigError("--tls-ca: a TLS server also needs --tls-cert and --tls-key")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        ctx.load_cert_chain(security.tls_cert, security.tls_key)
        if security.tls_ca:
            ctx.load_verify_locations(security.tls_ca)
            ctx.verify_mode = ssl.CERT_OPTIONAL
    except (OSError, ssl.SSLError) as e:
        raise ConfigError(f"--tls-cert/--tls-key: cannot load {security.tls_cert}: {e}") from None
    return ctx


def client_ssl_context(security: TlsSettings) -> ssl.SSLContext:
    """An HTTPS client's context: verify the server against `tls_ca`, present our cert."""
    ctx = ssl.create_default_context(cafile=security.tls_ca or None)
    if security.tls_cert:
        ctx.load_cert_chain(security.tls_cert, security.tls_key)
    return ctx


def is_loopback(host: str) -> bool:
    """Whether `host` (an address or a name) is loopback only: 127.0.0.0/8, ::1, localhost.
    '', 0.0.0.0 and :: (every interface) are not."""
    host = host.strip().strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos)


def check_plain_text_bind(
    binds: list[tuple[str, str]], security: TlsSettings, insecure: bool
) -> None:
    """Refuse plain text on an address other than loopback unless `--insecure` is given.

    Args:
        binds: (flag, host) of every address the daemon listens on.

    Raises:
        ConfigError: one line naming the flag, the address and `--insecure`.
    """
    if security.tls or insecure:
        return
    for flag, host in binds:
        if not is_loopback(host):
            raise ConfigError(
                f"{flag}: refusing plain text on {host or '(all interfaces)'}, which is not "
                f"loopback: {INSECURE_HINT}"
            )
