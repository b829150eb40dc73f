"""`HACluster`: N masters electing a leader in ZooKeeper, and M agents, as subprocesses.

What `mesoslite local --ha` runs; mesoslite's failover tests and `testing.chaos` use it
too::

    with ZooKeeperCluster(tmp_path / "zk") as zk, \\
            HACluster(tmp_path / "ha", zk.chroot_url(), masters=3, agents=2) as ha:
        run_my_framework(master=ha.zk_url)      # or ha.masters_list
        ha.kill_master(ha.leader_index())       # SIGKILL the leader; a standby takes over

Layout under `work_dir`: `master-<i>/` and `master-<i>.log`, `agent-<i>/` and
`agent-<i>.log`; how daemons are stopped is said in `mesoslite.local.base`.
"""

from __future__ import annotations

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
from mesoslite.local.daemon import Daemon, free_port, read_json


class HACluster(ClusterBase):
    """`masters` masters with `--zk zk_url` and `agents` agents with `--master zk_url`.

    Args:
        work_dir, agents, agent_resources, master_args, agent_args, start_timeout_s,
            log_level: as `ClusterBase`.
        zk_url: `zk://HOSTS/PATH` (use a fresh path per cluster).
        masters: how many masters contend.
        session_timeout_s: the masters' `--zk-session-timeout-s`.
        master_zk_urls: per master, the `--zk` it uses instead of `zk_url` (e.g. through a
            `ZooKeeperProxy`, to cut one master off); agents and clients use `zk_url`.
    """

    def __init__(
        self,
        work_dir: str | os.PathLike[str],
        zk_url: str,
        *,
        masters: int = 3,
        agents: int = 2,
        session_timeout_s: float = 2.0,
        master_args: Sequence[str] = (),
        agent_args: Sequence[str] = (),
        agent_resources: str = DEFAULT_AGENT_RESOURCES,
        start_timeout_s: float = DEFAULT_START_TIMEOUT_S,
        log_level: str = "info",
        master_zk_urls: Sequence[str] = (),
        tls: bool = False,
    ) -> None:
        super().__init__(
            work_dir, agents=agents, agent_resources=agent_resources, master_args=master_args,
            agent_args=agent_args, start_timeout_s=start_timeout_s, log_level=log_level,
            tls=tls,
        )
        self.zk_url = zk_url
        self.master_count = masters
        self.session_timeout_s = session_timeout_s
        self.master_zk_urls = list(master_zk_urls) or [zk_url] * masters
        self.ports = [free_port() for _ in range(masters)]

    # -- addresses

    @property
    def addresses(self) -> list[str]:
        return [f"127.0.0.1:{p}" for p in self.ports]

    @property
    def masters_list(self) -> str:
        """`HOST:PORT,HOST:PORT,...` of every master, for clients that follow redirects."""
        return ",".join(self.addresses)

    # -- lifecycle

    def start(self) -> Self:
        self._arm_atexit()
        try:
            for i in range(self.master_count):
                self.masters.append(self._master_daemon(i))
                self.start_master(i)
            self.wait_for_leader()
            for i in range(self.agent_count):
                self.agents.append(self._agent_daemon(i))
                self.agents[i].start()
            self.wait_for_agents(self.agent_count)
        except BaseException:
            self.stop()
            raise
        return self

    # -- masters

    def start_master(self, i: int) -> None:
        """Start master `i` (again) on its port and wait until it listens."""
        self._start_master(i)

    def kill_master(self, i: int, sig: int = signal.SIGKILL) -> None:
        self.masters[i].stop(sig)

    def leader_index(self) -> int | None:
        """The index of the master that says it leads (its `master.json`), or None."""
        leading = self.leaders()
        return leading[0] if len(leading) == 1 else None

    def leaders(self) -> list[int]:
        """Every live master whose `master.json` says it leads (at most one, or a bug)."""
        return [
            i for i, d in enumerate(self.masters)
            if d.alive and read_json(self._master_dir(i) / "master.json").get("leading")
        ]

    def wait_for_leader(self, timeout_s: float | None = None, *, other_than: int = -1) -> int:
        timeout_s = timeout_s or self.start_timeout_s
        deadline = time.monotonic() + timeout_s
        while True:
            i = self.leader_index()
            if i is not None and i != other_than:
                return i
            if time.monotonic() > deadline:
                raise LocalClusterError(
                    f"no master leads after {timeout_s:g}s "
                    f"({'; '.join(self.dead_daemons()) or 'all daemons are running'})"
                )
            time.sleep(POLL_S)

    # -- agents

    def start_agent(self, i: int) -> None:
        """Start agent `i` again (it finds the leader through ZooKeeper by itself)."""
        self.agents[i].start()

    # -- what `ClusterBase` asks

    def _master_dir(self, i: int) -> Path:
        return self.work_dir / f"master-{i}"

    def _master_daemon(self, i: int) -> Daemon:
        argv = self._master_argv(
            i, "127.0.0.1", self.ports[i], "--zk", self.master_zk_urls[i],
            "--zk-session-timeout-s", f"{self.session_timeout_s:g}",
        )
        return Daemon(f"master {i}", [sys.executable, *argv],
                      self.work_dir / f"master-{i}.log", self._env)

    def _agent_master(self) -> str:
        return self.zk_url

    def _master_addresses(self) -> list[str]:
        return self.addresses
