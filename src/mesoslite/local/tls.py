"""TLS for a local cluster (`mesoslite local --tls`, `LocalCluster(tls=True)`): a throwaway CA
in `<work_dir>/tls/`, every daemon started with it, and the environment a client needs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mesoslite.security.tls_certs import TlsFiles, make_tls_dir
from mesoslite.tls_settings import ENV_CA, ENV_CERT, ENV_KEY
from mesoslite.transport import Security


@dataclass(frozen=True, slots=True)
class LocalTls:
    """The files of a local cluster's CA and what each kind of process is started with."""

    files: TlsFiles

    def daemon_args(self, own_cert: Path, own_key: Path) -> tuple[str, ...]:
        return (
            "--tls-ca", str(self.files.ca), "--tls-cert", str(own_cert),
            "--tls-key", str(own_key),
        )

    @property
    def master_args(self) -> tuple[str, ...]:
        return self.daemon_args(self.files.server_cert, self.files.server_key)

    @property
    def agent_args(self) -> tuple[str, ...]:
        # The agent serves probes and HTTP on loopback too: the server certificate fits both.
        return self.daemon_args(self.files.server_cert, self.files.server_key)

    @property
    def client(self) -> Security:
        """What a client of the cluster (CLI, SDK, tests) connects with: mutual TLS."""
        f = self.files
        return Security(
            tls_ca=str(f.ca), tls_cert=str(f.client_cert), tls_key=str(f.client_key)
        )

    def env_lines(self) -> list[str]:
        """`export` lines that point the CLI and SDK at this CA and client certificate."""
        f = self.files
        return [
            f"export {ENV_CA}={f.ca}", f"export {ENV_CERT}={f.client_cert}",
            f"export {ENV_KEY}={f.client_key}",
        ]


def local_tls(work_dir: Path) -> LocalTls:
    """A fresh CA and certificates in `work_dir/tls` (made anew at every start)."""
    return LocalTls(make_tls_dir(work_dir / "tls"))
