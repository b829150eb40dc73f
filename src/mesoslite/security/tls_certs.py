"""A throwaway CA and certificates, for `mesoslite local --tls` and tests (not for production:
the CA key sits next to the certificates it signed).

`make_tls_dir(dir)` writes `ca.pem`, `server.pem`/`server-key.pem` (the daemons' certificate,
valid for localhost, 127.0.0.1, ::1, this host's name and the `hosts` given) and
`client.pem`/`client-key.pem` (a client certificate for mutual TLS).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

VALID_DAYS = 30
KEY_BITS = 2048


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """The PEM files `make_tls_dir` wrote."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


@dataclass(frozen=True, slots=True)
class Issuer:
    """A CA that can sign: its certificate and key (`cryptography` objects)."""

    cert: Any
    key: Any


def _name(common_name: str) -> Any:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "mesoslite local"),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


def _new_key() -> Any:
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)


def new_ca(common_name: str = "mesoslite local CA") -> Issuer:
    """A self-signed CA, valid `VALID_DAYS` days from now."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    key = _new_key()
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name)).issuer_name(_name(common_name))
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True,
                content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return Issuer(cert, key)


def issue(ca: Issuer, common_name: str, hosts: list[str]) -> tuple[bytes, bytes]:
    """A certificate signed by `ca` for `common_name`, valid as server and client for
    `hosts` (names and IP addresses); returns (certificate PEM, key PEM)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import ExtendedKeyUsageOID

    key = _new_key()
    sans: list[x509.GeneralName] = []
    for host in dict.fromkeys(hosts):
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            sans.append(x509.DNSName(host))
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name)).issuer_name(ca.cert.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = builder.sign(ca.key, hashes.SHA256())
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def local_hosts() -> list[str]:
    """The names a local cluster's daemons are reached by: loopback and this host's name."""
    return ["localhost", "127.0.0.1", "::1", socket.gethostname()]


def _write(path: Path, data: bytes, secret: bool = False) -> Path:
    path.write_bytes(data)
    if secret:
        os.chmod(path, 0o600)  # a key readable by its owner only
    return path


def make_tls_dir(directory: Path, hosts: list[str] | None = None) -> TlsFiles:
    """Write a fresh CA, a server and a client certificate into `directory` (see module)."""
    from cryptography.hazmat.primitives import serialization

    directory.mkdir(parents=True, exist_ok=True)
    ca = new_ca()
    server_cert, server_key = issue(ca, "mesoslite daemon", local_hosts() + (hosts or []))
    client_cert, client_key = issue(ca, "mesoslite client", [])
    ca_pem = ca.cert.public_bytes(serialization.Encoding.PEM)
    return TlsFiles(
        ca=_write(directory / "ca.pem", ca_pem),
        server_cert=_write(directory / "server.pem", server_cert),
        server_key=_write(directory / "server-key.pem", server_key, secret=True),
        client_cert=_write(directory / "client.pem", client_cert),
        client_key=_write(directory / "client-key.pem", client_key, secret=True),
    )
