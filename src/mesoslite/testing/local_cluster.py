"""`LocalCluster` for tests: `mesoslite.local.LocalCluster` with an Operator client.

Used by mesoslite's own integration and e2e tests, and by anyone who wants to test a
framework against real daemons::

    with LocalCluster(tmp_path, agents=2) as cluster:
        run_my_framework(master=cluster.master_address)
        with cluster.client() as c:
            assert len(c.agents()) == 2
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from mesoslite.local import cluster as _local
from mesoslite.local.base import (
    AGENT_PORTS_BASE,
    AGENT_PORTS_EACH,
    DEFAULT_AGENT_RESOURCES,
    DEFAULT_START_TIMEOUT_S,
    MARKER_ENV,
    LocalClusterError,
    remove_agent_cgroups_of,
)

if TYPE_CHECKING:
    from mesoslite.cli._client import BlockingOperatorClient
    from mesoslite.cli._views import AgentView

__all__ = [
    "AGENT_PORTS_BASE", "AGENT_PORTS_EACH", "DEFAULT_AGENT_RESOURCES", "DEFAULT_START_TIMEOUT_S",
    "MARKER_ENV", "LocalCluster", "LocalClusterError", "remove_agent_cgroups_of",
]


class LocalCluster(_local.LocalCluster):
    """`mesoslite.local.LocalCluster` (same arguments) plus `client()` and `cli_env()`."""

    def client(self) -> BlockingOperatorClient:
        """A client of the master's Operator service; close it (or use `with`)."""
        from mesoslite.cli._client import BlockingOperatorClient

        return BlockingOperatorClient(self.master_address, timeout_s=5.0, security=self.security)

    def cli_env(self) -> dict[str, str]:
        """This process's environment with `MESOSLITE_MASTER` pointing at the cluster (and,
        with `tls=True`, `MESOSLITE_TLS_*` at its CA and client certificate)."""
        env = {**os.environ, "MESOSLITE_MASTER": self.master_address}
        if self.tls is not None:
            for line in self.tls.env_lines():
                name, _, value = line.removeprefix("export ").partition("=")
                env[name] = value
        return env

    def wait_for_agents(  # type: ignore[override]
        self, n: int, timeout_s: float | None = None
    ) -> list[AgentView]:
        """Wait until at least `n` agents are active; returns the active ones, in full."""
        super().wait_for_agents(n, timeout_s)
        with self.client() as c:
            return [a for a in c.agents() if a.status == "active"]
