"""`HACluster`: N masters electing a leader in ZooKeeper, and M agents, as subprocesses.

Used by `mesoslite local --ha`, by mesoslite's failover tests, and by anyone testing a
framework against master failover::

    with ZooKeeperCluster(tmp_path / "zk") as zk, \\
            HACluster(tmp_path / "ha", zk.chroot_url(), masters=3, agents=2) as ha:
        run_my_framework(master=ha.zk_url)      # or ha.masters_list
        ha.kill_master(ha.leader_index())       # SIGKILL the leader; a standby takes over

Layout under `work_dir`: `master-<i>/` and `master-<i>.log`, `agent-<i>/` and
`agent-<i>.log`. Every process is ended by its own PID (see `Daemon`), however the `with`
block ends, and once more at interpreter exit; tasks left by a SIGKILLed agent are found
by the `MESOSLITE_LOCAL_CLUSTER` marker they inherit.
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO

from mesoslite.errors import MesosliteError
from mesoslite.testing._daemon import Daemon
from mesoslite.testing.local_cluster import (
    AGENT_PORTS_BASE,
    AGENT_PORTS_EACH,
    DEFAULT_AGENT_RESOURCES,
    MARKER_ENV,
    LocalClusterError,
)
from mesoslite.testing.net import free_port

DEFAULT_START_TIMEOUT_S = 30.0
_POLL_S = 0.05


class HACluster:
    """`masters` masters with `--zk zk_url` and `agents` agents with `--master zk_url`.

    Args:
        work_dir: where the daemons keep their state and logs.
        zk_url: `zk://HOSTS/PATH` (use a fresh path per cluster).
        masters: how many masters contend.
        agents: how many agents.
        session_timeout_s: the masters' `--zk-session-timeout-s`.
        master_args: extra flags for every master.
        agent_args: extra flags for every agent.
        agent_resources: each agent's `--resources` (agent i also gets its own ports).
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
    ) -> None:
        self.work_dir = Path(work_dir).resolve()
        self.zk_url = zk_url
        self.master_count = masters
        self.agent_count = agents
        self.session_timeout_s = session_timeout_s
        self.master_args = tuple(master_args)
        self.agent_args = tuple(agent_args)
        self.agent_resources = agent_resources
        self.start_timeout_s = start_timeout_s
        self.log_level = log_level
        self.master_zk_urls = list(master_zk_urls) or [zk_url] * masters
        self.marker = uuid.uuid4().hex
        self._env = {**os.environ, "PYTHONUNBUFFERED": "1", MARKER_ENV: self.marker}
        self.ports = [free_port() for _ in range(masters)]
        self.masters: list[Daemon] = []
        self.agents: list[Daemon] = []
        self._atexit = False

    # -- addresses

    @property
    def addresses(self) -> list[str]:
        return [f"127.0.0.1:{p}" for p in self.ports]

    @property
    def masters_list(self) -> str:
        """`HOST:PORT,HOST:PORT,...` of every master, for clients that follow redirects."""
        return ",".join(self.addresses)

    # -- lifecycle

    def start(self) -> HACluster:
        if not self._atexit:
            atexit.register(self.stop)
            self._atexit = True
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

    def stop(self) -> None:
        for a in self.agents:
            a.send(signal.SIGTERM)
        for a in self.agents:
            a.stop(signal.SIGTERM, 5.0)
        for m in self.masters:
            m.send(signal.SIGTERM)
        for m in self.masters:
            m.stop(signal.SIGTERM, 5.0)
        self._end_strays()
        from mesoslite.testing.local_cluster import remove_agent_cgroups_of

        remove_agent_cgroups_of([self.work_dir / f"agent-{i}" for i in range(len(self.agents))])
        if self._atexit:
            atexit.unregister(self.stop)
            self._atexit = False

    def __enter__(self) -> HACluster:
        return self.start()

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- masters

    def start_master(self, i: int) -> None:
        """Start master `i` (again) on its port and wait until it listens."""
        info = self.work_dir / f"master-{i}" / "master.json"
        info.unlink(missing_ok=True)
        d = self.masters[i]
        d.start()
        deadline = time.monotonic() + self.start_timeout_s
        while _read_json(info).get("pid") != d.pid:
            if not d.alive:
                raise self._failure(d, f"{d.describe_exit()} before listening")
            if time.monotonic() > deadline:
                raise self._failure(d, f"did not listen in {self.start_timeout_s:g}s")
            time.sleep(_POLL_S)

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
            if d.alive and _read_json(self.work_dir / f"master-{i}" / "master.json").get("leading")
        ]

    def wait_for_leader(self, timeout_s: float | None = None, *, other_than: int = -1) -> int:
        deadline = time.monotonic() + (timeout_s or self.start_timeout_s)
        while True:
            i = self.leader_index()
            if i is not None and i != other_than:
                return i
            if time.monotonic() > deadline:
                raise LocalClusterError(
                    f"no master leads after {timeout_s or self.start_timeout_s:g}s "
                    f"({'; '.join(self.dead_daemons()) or 'all daemons are running'})"
                )
            time.sleep(_POLL_S)

    # -- agents

    def wait_for_agents(self, n: int, timeout_s: float | None = None) -> None:
        """Wait until the leader has `n` active agents."""
        from mesoslite.cli._client import BlockingOperatorClient

        deadline = time.monotonic() + (timeout_s or self.start_timeout_s)
        while True:
            try:
                with BlockingOperatorClient(self.masters_list, timeout_s=2.0) as c:
                    if sum(a.status == "active" for a in c.agents()) >= n:
                        return
            except MesosliteError:
                pass
            if time.monotonic() > deadline:
                raise LocalClusterError(
                    f"fewer than {n} agents active after {timeout_s or self.start_timeout_s:g}s"
                    f" ({'; '.join(self.dead_daemons()) or 'all daemons are running'})"
                )
            time.sleep(_POLL_S * 2)

    def kill_agent(self, i: int, sig: int = signal.SIGKILL) -> None:
        self.agents[i].stop(sig)

    def start_agent(self, i: int) -> None:
        self.agents[i].start()

    # -- inspection

    def dead_daemons(self) -> list[str]:
        return [
            f"{d.name} (pid {d.pid}) {d.describe_exit()}"
            for d in [*self.masters, *self.agents]
            if d.proc is not None and not d.alive
        ]

    def dump_logs(self, out: IO[str] | None = None, lines: int = 120) -> None:
        stream = out if out is not None else sys.stderr
        for d in [*self.masters, *self.agents]:
            stream.write(f"==== {d.name} (pid {d.pid}, {d.describe_exit()}): {d.log_path}\n")
            stream.write(d.log_tail(lines) + "\n")
        stream.flush()

    # -- internals

    def _master_daemon(self, i: int) -> Daemon:
        work = self.work_dir / f"master-{i}"
        work.mkdir(parents=True, exist_ok=True)
        argv = [
            sys.executable, "-m", "mesoslite.master.main", "--host", "127.0.0.1",
            "--port", str(self.ports[i]), "--work-dir", str(work), "--zk", self.master_zk_urls[i],
            "--zk-session-timeout-s", f"{self.session_timeout_s:g}",
            "--log-level", self.log_level, *self.master_args,
        ]
        return Daemon(f"master {i}", argv, self.work_dir / f"master-{i}.log", self._env)

    def _agent_daemon(self, i: int) -> Daemon:
        work = self.work_dir / f"agent-{i}"
        work.mkdir(parents=True, exist_ok=True)
        resources = self.agent_resources
        if "ports" not in resources:
            begin = AGENT_PORTS_BASE + AGENT_PORTS_EACH * i
            resources = f"{resources};ports:[{begin}-{begin + AGENT_PORTS_EACH - 1}]"
        argv = [
            sys.executable, "-m", "mesoslite.agent.main", "--master", self.zk_url,
            "--work-dir", str(work), "--resources", resources,
            "--log-level", self.log_level, *self.agent_args,
        ]
        return Daemon(f"agent {i}", argv, self.work_dir / f"agent-{i}.log", self._env)

    def _failure(self, d: Daemon, what: str) -> LocalClusterError:
        return LocalClusterError(
            f"{d.name} (pid {d.pid}) {what}; the end of {d.log_path}:\n{d.log_tail()}"
        )

    def _end_strays(self) -> None:
        import psutil

        for p in psutil.process_iter(["environ"], ad_value=None):
            env = p.info.get("environ") or {}
            if env.get(MARKER_ENV) == self.marker and p.pid != os.getpid():
                try:
                    p.kill()
                except psutil.Error:
                    pass


def _read_json(path: Path) -> dict[str, object]:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}
