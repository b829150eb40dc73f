"""`LocalCluster`: a real master and N real agents as subprocesses on this host.

What `mesoslite local` runs, and what `mesoslite.testing.LocalCluster` (which adds an
Operator client) builds on::

    with LocalCluster(tmp_path, agents=2) as cluster:
        run_my_framework(master=cluster.master_address)

Layout under `work_dir`: `master/` (the master's work dir), `master.log`, `agent-<i>/`
and `agent-<i>.log`; how daemons are stopped is said in `mesoslite.local.base`.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Self

from mesoslite.local.base import (
    DEFAULT_AGENT_RESOURCES,
    DEFAULT_START_TIMEOUT_S,
    POLL_S,
    ClusterBase,
    LocalClusterError,
)
from mesoslite.local.daemon import Daemon


class LocalCluster(ClusterBase):
    """One master and `agents` agents, each a subprocess of this Python (`sys.executable`).

    Args:
        work_dir, agents, agent_resources, master_args, agent_args, start_timeout_s,
            log_level, agent_hostnames: as `ClusterBase`.
        port: the master's port; 0 picks a free one (kept across `restart_master()`).
        host: the address the master binds and advertises.
        agent_recover: the agents' `--recover`: "cleanup" (the default here) makes a stopping
            agent kill its tasks, so that `stop()` leaves nothing running; "reconnect"
            lets tasks outlive their agent (`kill_agent` then `start_agent` re-adopts them).
        master_python_args: interpreter arguments put before `-m mesoslite.master.main`,
            e.g. `("-m", "cProfile", "-o", "master.prof")` to profile the master.
        http_port: the master's `--http-port` (web UI, /state, /metrics); 0 picks a free one
            (kept across `restart_master()`, see `http_url()`), -1 serves no HTTP.
        tls: every daemon with TLS from a throwaway CA (see `ClusterBase`).
    """

    def __init__(
        self,
        work_dir: str | os.PathLike[str],
        agents: int = 2,
        *,
        agent_resources: str = DEFAULT_AGENT_RESOURCES,
        port: int = 0,
        host: str = "127.0.0.1",
        master_args: Sequence[str] = (),
        agent_args: Sequence[str] = (),
        agent_recover: str = "cleanup",
        start_timeout_s: float = DEFAULT_START_TIMEOUT_S,
        log_level: str = "info",
        master_python_args: Sequence[str] = (),
        agent_hostnames: Sequence[str] = (),
        http_port: int = 0,
        tls: bool = False,
    ) -> None:
        super().__init__(
            work_dir, agents=agents, agent_resources=agent_resources, master_args=master_args,
            agent_args=agent_args, agent_recover=agent_recover,
            start_timeout_s=start_timeout_s, log_level=log_level,
            agent_hostnames=agent_hostnames, tls=tls,
        )
        self.host = host
        self.port = port
        self.master_python_args = tuple(master_python_args)
        self.http_port = http_port
        self._address = ""
        self._agent_ids: list[str] = []

    def start(self) -> Self:
        """Start the master, then the agents one by one, each once the last is active."""
        self._arm_atexit()
        try:
            self.start_master()
            for _ in range(self.agent_count):
                self.add_agent()
        except BaseException:
            self.stop()
            raise
        return self

    # -- the master

    @property
    def master_address(self) -> str:
        """`host:port` of the master, as it advertises itself."""
        if not self._address:
            raise LocalClusterError("the master has not been started")
        return self._address

    @property
    def master_pid(self) -> int | None:
        return self.masters[0].pid if self.masters else None

    @property
    def master_log(self) -> Path:
        return self.work_dir / "master.log"

    def start_master(self) -> None:
        """Start the master (on the same port as before, if it ran) and wait until it listens."""
        # Built anew each time: the first start may have asked for port 0.
        self.masters[:] = [self._master_daemon(0)]
        doc = self._start_master(0)
        self._address = str(doc["address"])
        self.port = int(self._address.rsplit(":", 1)[1])
        http = str(doc.get("http_address") or "")
        if http:
            self.http_port = int(http.rsplit(":", 1)[1])

    def stop_master(self, sig: int = signal.SIGTERM) -> None:
        """Send `sig` to the master (SIGKILL after a grace period) and wait for it to exit."""
        if self.masters:
            self.masters[0].stop(sig)

    def restart_master(self) -> None:
        """Stop the master and start it again on the same port with the same work dir."""
        self.stop_master()
        self.start_master()

    # -- agents

    @property
    def agent_ids(self) -> list[str]:
        return list(self._agent_ids)

    def add_agent(self) -> str:
        """Start one more agent and wait until it is active; returns its agent id."""
        if importlib.util.find_spec("mesoslite.agent.main") is None:
            raise LocalClusterError(
                "the agent is not installed: `mesoslite.agent.main` cannot be imported"
            )
        i = len(self.agents)
        self.agents.append(self._agent_daemon(i))
        self._agent_ids.append("")
        self._start_agent(i)
        return self._agent_ids[i]

    def start_agent(self, i: int) -> None:
        """Start agent `i` again (same work dir, so same id) and wait until it is active."""
        self._start_agent(i)

    def _start_agent(self, i: int) -> None:
        known = {a.id for a in self._agents_seen()} if not self._agent_ids[i] else set()
        daemon = self.agents[i]
        daemon.start()
        deadline = time.monotonic() + self.start_timeout_s
        while True:
            active = [a.id for a in self._agents_seen() if a.status == "active"]
            if self._agent_ids[i] and self._agent_ids[i] in active:
                return
            new = [x for x in active if x not in known and x not in self._agent_ids]
            if not self._agent_ids[i] and new:
                self._agent_ids[i] = new[0]
                return
            self._raise_if_dead(daemon, "before registering")
            self._raise_if_dead(self.masters[0], "while an agent was registering")
            if time.monotonic() > deadline:
                raise self._failure(daemon, f"did not register with the master at "
                                    f"{self.master_address} in {self.start_timeout_s:g}s")
            time.sleep(POLL_S)

    # -- what `ClusterBase` asks

    def _master_dir(self, i: int) -> Path:
        return self.work_dir / "master"

    def _master_daemon(self, i: int) -> Daemon:
        argv = self._master_argv(i, self.host, self.port)
        argv = [sys.executable, *self.master_python_args, *argv]
        return Daemon("master", argv, self.master_log, self._env)

    def _agent_master(self) -> str:
        return self.master_address

    def _master_addresses(self) -> list[str]:
        return [self.master_address]
