"""What `LocalCluster` and `HACluster` share: daemons of one cluster, started, watched and
stopped the same way.

Layout under `work_dir`: each master's work dir and log (the subclass names them),
`agent-<i>/` (agent i's work dir, with its sandboxes) and `agent-<i>.log`.

Every process is ended by its own PID, never by name (see `Daemon`), and `stop()` runs
however the `with` block ends, plus once more at interpreter exit as a safety net. Tasks
left behind by an agent that was SIGKILLed (tasks outlive their agent by design) are found
by the `MESOSLITE_LOCAL_CLUSTER` marker they inherit and ended at `stop()` too.
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Self

from mesoslite.errors import MesosliteError
from mesoslite.local.daemon import DEFAULT_STOP_GRACE_S, Daemon, read_json
from mesoslite.local.probe import AgentSeen, agents_seen
from mesoslite.transport import PLAIN

if TYPE_CHECKING:
    from mesoslite.local.tls import LocalTls

DEFAULT_AGENT_RESOURCES = "cpus:4;mem:4096;disk:10000"
# Agents on one host must not offer the same ports: agent i gets [31000+1000i, 31999+1000i].
AGENT_PORTS_BASE = 31000
AGENT_PORTS_EACH = 1000
DEFAULT_START_TIMEOUT_S = 30.0
MARKER_ENV = "MESOSLITE_LOCAL_CLUSTER"
POLL_S = 0.05


class LocalClusterError(MesosliteError):
    """Raised when a daemon of a local cluster does not start, or dies; says which and why."""


class ClusterBase:
    """Masters and agents as subprocesses of this Python (`sys.executable`).

    Subclasses say how a master is started (`_master_daemon`, `_master_dir`) and where
    agents and clients find the master (`_agent_master`, `_master_addresses`).

    Args:
        work_dir: where the daemons keep their state and logs; created if missing.
        agents: how many agents `start()` starts.
        agent_resources: each agent's `--resources`; unless it names `ports`, agent i
            also gets its own range of 1000 ports.
        master_args: extra `mesoslite-master` flags for every master.
        agent_args: extra `mesoslite-agent` flags for every agent.
        agent_recover: the agents' `--recover` ("" leaves the agent's default).
        start_timeout_s: how long a daemon may take to be ready.
        log_level: the daemons' `--log-level`.
        agent_hostnames: agent i reports `agent_hostnames[i]` as its host name (where
            given), so that placement by host (`hostname UNIQUE`) can be tried on one machine.
        tls: make a throwaway CA in `work_dir/tls` and run every daemon with TLS (mutual TLS
            for agents and clients); `self.security` is then what a client connects with.
    """

    def __init__(
        self,
        work_dir: str | os.PathLike[str],
        *,
        agents: int,
        agent_resources: str = DEFAULT_AGENT_RESOURCES,
        master_args: Sequence[str] = (),
        agent_args: Sequence[str] = (),
        agent_recover: str = "",
        start_timeout_s: float = DEFAULT_START_TIMEOUT_S,
        log_level: str = "info",
        agent_hostnames: Sequence[str] = (),
        tls: bool = False,
    ) -> None:
        self.work_dir = Path(work_dir).resolve()
        self.tls: LocalTls | None = None
        self.security = PLAIN  # what this cluster's own clients connect with
        if tls:
            from mesoslite.local.tls import local_tls

            self.tls = local_tls(self.work_dir)
            master_args = (*self.tls.master_args, *master_args)
            agent_args = (*self.tls.agent_args, *agent_args)
            self.security = self.tls.client
        self.agent_count = agents
        self.agent_resources = agent_resources
        self.master_args = tuple(master_args)
        self.agent_args = tuple(agent_args)
        self.agent_recover = agent_recover
        self.start_timeout_s = start_timeout_s
        self.log_level = log_level
        self.agent_hostnames = tuple(agent_hostnames)
        self.marker = uuid.uuid4().hex
        self._env = {**os.environ, "PYTHONUNBUFFERED": "1", MARKER_ENV: self.marker}
        self.masters: list[Daemon] = []
        self.agents: list[Daemon] = []
        self._atexit = False
        # The first master's `--http-port` (0 picks a free one); the others' pick their own.
        self.http_port = 0

    # -- what subclasses say

    def _master_dir(self, i: int) -> Path:
        raise NotImplementedError

    def _master_daemon(self, i: int) -> Daemon:
        raise NotImplementedError

    def _agent_master(self) -> str:
        """The agents' `--master`."""
        raise NotImplementedError

    def _master_addresses(self) -> list[str]:
        """Where to ask which agents are active."""
        raise NotImplementedError

    def start(self) -> Self:
        raise NotImplementedError

    # -- lifecycle

    def stop(self) -> None:
        """Stop the agents (they kill their tasks), then the masters; wait for all of them."""
        for group in (self.agents, self.masters):
            for d in group:
                d.send(signal.SIGTERM)
            deadline = time.monotonic() + DEFAULT_STOP_GRACE_S
            for d in group:
                d.stop(signal.SIGTERM, max(0.0, deadline - time.monotonic()))
        self._end_strays()
        remove_agent_cgroups_of(self.agent_work_dirs)
        if self._atexit:
            atexit.unregister(self.stop)
            self._atexit = False

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _arm_atexit(self) -> None:
        if not self._atexit:
            atexit.register(self.stop)
            self._atexit = True

    def _start_master(self, i: int) -> dict[str, object]:
        """Start master `i` and wait until it listens; returns its `master.json`."""
        info = self._master_dir(i) / "master.json"
        info.unlink(missing_ok=True)
        d = self.masters[i]
        self._arm_atexit()
        d.start()
        deadline = time.monotonic() + self.start_timeout_s
        while True:
            doc = read_json(info)
            if doc.get("pid") == d.pid:
                return doc
            self._raise_if_dead(d, "before listening")
            if time.monotonic() > deadline:
                raise self._failure(d, f"did not listen in {self.start_timeout_s:g}s")
            time.sleep(POLL_S / 2)

    def _master_argv(self, i: int, host: str, port: int, *extra: str) -> list[str]:
        work = self._master_dir(i)
        work.mkdir(parents=True, exist_ok=True)
        return [
            "-m", "mesoslite.master.main", "--host", host, "--port", str(port),
            "--work-dir", str(work), "--http-port", str(self.http_port if i == 0 else 0),
            *extra, "--log-level", self.log_level, *self.master_args,
        ]

    def http_url(self, i: int = 0) -> str:
        """`http(s)://HOST:PORT/`: master `i`'s web UI as its `master.json` says ('' without)."""
        address = read_json(self._master_dir(i) / "master.json").get("http_address")
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://{address}/" if address else ""

    # -- agents

    @property
    def agent_pids(self) -> list[int]:
        """The PID of each agent's latest process (alive or not), by index."""
        return [d.pid for d in self.agents if d.pid is not None]

    @property
    def agent_work_dirs(self) -> list[Path]:
        return [self.work_dir / f"agent-{i}" for i in range(len(self.agents))]

    @property
    def agent_logs(self) -> list[Path]:
        return [d.log_path for d in self.agents]

    def kill_agent(self, i: int, sig: int = signal.SIGKILL) -> None:
        """Send `sig` to agent `i` and wait for it to exit (SIGKILL after a grace period)."""
        self.agents[i].stop(sig)

    def wait_for_agents(self, n: int, timeout_s: float | None = None) -> list[AgentSeen]:
        """Wait until the leading master has at least `n` active agents; returns them.

        Raises:
            LocalClusterError: the time ran out (naming the daemons that died, if any).
        """
        timeout_s = timeout_s or self.start_timeout_s
        deadline = time.monotonic() + timeout_s
        while True:
            active = [a for a in self._agents_seen() if a.status == "active"]
            if len(active) >= n:
                return active
            if time.monotonic() > deadline:
                dead = "; ".join(self.dead_daemons()) or "all daemons are running"
                raise LocalClusterError(
                    f"{len(active)} of {n} agents active after {timeout_s:g}s ({dead})"
                )
            time.sleep(POLL_S)

    def _agent_daemon(self, i: int) -> Daemon:
        work = self.work_dir / f"agent-{i}"
        work.mkdir(parents=True, exist_ok=True)
        argv = [
            sys.executable, "-m", "mesoslite.agent.main", "--master", self._agent_master(),
            "--work-dir", str(work), "--resources", self._resources_of(i),
            "--log-level", self.log_level, "--http-port", "0",
        ]
        if self.agent_recover:
            argv += ["--recover", self.agent_recover]
        argv += self.agent_args
        if i < len(self.agent_hostnames):
            argv += ["--hostname", self.agent_hostnames[i]]
        return Daemon(f"agent {i}", argv, self.work_dir / f"agent-{i}.log", self._env)

    def _resources_of(self, i: int) -> str:
        if "ports" in self.agent_resources:
            return self.agent_resources
        begin = AGENT_PORTS_BASE + AGENT_PORTS_EACH * i
        sep = ";" if self.agent_resources.strip() else ""
        return f"{self.agent_resources}{sep}ports:[{begin}-{begin + AGENT_PORTS_EACH - 1}]"

    def _agents_seen(self) -> list[AgentSeen]:
        return agents_seen(self._master_addresses(), security=self.security)

    # -- inspection

    def dead_daemons(self) -> list[str]:
        """`agent 1 (pid 123) was killed by SIGKILL`, for every started daemon that is gone."""
        return [
            f"{d.name} (pid {d.pid}) {d.describe_exit()}"
            for d in [*self.masters, *self.agents]
            if d.proc is not None and not d.alive
        ]

    def dump_logs(self, out: IO[str] | None = None, lines: int = 200) -> None:
        """Write the tail of every daemon's log to `out` (stderr by default)."""
        stream = out if out is not None else sys.stderr
        for d in [*self.masters, *self.agents]:
            stream.write(f"==== {d.name} (pid {d.pid}, {d.describe_exit()}): {d.log_path}\n")
            stream.write(d.log_tail(lines) + "\n")
        stream.flush()

    def _failure(self, d: Daemon, what: str) -> LocalClusterError:
        return LocalClusterError(
            f"{d.name} (pid {d.pid}) {what}; the end of {d.log_path}:\n{d.log_tail()}"
        )

    def _raise_if_dead(self, d: Daemon, when: str) -> None:
        if d.proc is not None and not d.alive:
            raise self._failure(d, f"{d.describe_exit()} {when}")

    def _end_strays(self) -> None:
        """SIGKILL task processes that carry this cluster's marker (left by a killed agent)."""
        import psutil

        for p in psutil.process_iter(["environ"], ad_value=None):
            env = p.info.get("environ") or {}
            if env.get(MARKER_ENV) == self.marker and p.pid != os.getpid():
                try:
                    p.kill()  # psutil checks the process's start time: no recycled PIDs
                except psutil.Error:
                    pass


def remove_agent_cgroups_of(work_dirs: list[Path]) -> None:
    """Remove the cgroup directories the stopped agents left (their tasks are gone)."""
    try:
        from mesoslite.agent.isolation import remove_agent_cgroups
    except ImportError:
        return
    for work in work_dirs:
        remove_agent_cgroups(work)
