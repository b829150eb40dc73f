"""`LocalCluster`: a real master and N real agents as subprocesses on this host.

Used by `mesoslite local`, by mesoslite's own integration and e2e tests, and by anyone who
wants to test a framework against real daemons::

    with LocalCluster(tmp_path, agents=2) as cluster:
        run_my_framework(master=cluster.master_address)

Layout under `work_dir`: `master/` (the master's work dir), `master.log`, `agent-<i>/`
(agent i's work dir, with its sandboxes) and `agent-<i>.log`.

Every process is ended by its own PID, never by name, and `stop()` runs however the
`with` block ends, plus once more at interpreter exit as a safety net. Tasks left behind by
an agent that was SIGKILLed (tasks outlive their agent by design) are found by the
`MESOSLITE_LOCAL_CLUSTER` marker they inherit and ended at `stop()` too.
"""

from __future__ import annotations

import atexit
import importlib.util
import json
import os
import signal
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING

from mesoslite.errors import MesosliteError, UnavailableError
from mesoslite.testing._daemon import DEFAULT_STOP_GRACE_S, Daemon

if TYPE_CHECKING:
    from mesoslite.cli._client import BlockingOperatorClient
    from mesoslite.cli._views import AgentView

DEFAULT_AGENT_RESOURCES = "cpus:4;mem:4096;disk:10000"
# Agents on one host must not offer the same ports: agent i gets [31000+1000i, 31999+1000i].
AGENT_PORTS_BASE = 31000
AGENT_PORTS_EACH = 1000
DEFAULT_START_TIMEOUT_S = 30.0
MARKER_ENV = "MESOSLITE_LOCAL_CLUSTER"
_POLL_S = 0.05


class LocalClusterError(MesosliteError):
    """Raised when a daemon of a `LocalCluster` does not start, or dies; says which and why."""


@dataclass
class _Agent:
    index: int
    work_dir: Path
    daemon: Daemon
    id: str = ""


class LocalCluster:
    """One master and `agents` agents, each a subprocess of this Python (`sys.executable`).

    Args:
        work_dir: where the daemons keep their state and logs; created if missing.
        agents: how many agents `start()` starts.
        agent_resources: each agent's `--resources`; unless it names `ports`, agent i
            also gets its own range of 1000 ports.
        port: the master's port; 0 picks a free one (kept across `restart_master()`).
        host: the address the master binds and advertises.
        master_args: extra `mesoslite-master` flags, e.g. `("--offer-timeout-s", "5")`.
        agent_args: extra `mesoslite-agent` flags for every agent.
        agent_recover: the agents' `--recover`: "cleanup" (the default here) makes a stopping
            agent kill its tasks, so that `stop()` leaves nothing running; "reconnect"
            lets tasks outlive their agent (`kill_agent` then `start_agent` re-adopts them).
        start_timeout_s: how long a daemon may take to be ready.
        log_level: the daemons' `--log-level`.
        master_python_args: interpreter arguments put before `-m mesoslite.master.main`,
            e.g. `("-m", "cProfile", "-o", "master.prof")` to profile the master.
        agent_hostnames: agent i reports `agent_hostnames[i]` as its host name (where
            given), so that placement by host (`hostname UNIQUE`) can be tried on one machine.
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
    ) -> None:
        self.work_dir = Path(work_dir).resolve()
        self.agent_count = agents
        self.agent_resources = agent_resources
        self.host = host
        self.port = port
        self.master_args = tuple(master_args)
        self.agent_args = tuple(agent_args)
        self.agent_recover = agent_recover
        self.start_timeout_s = start_timeout_s
        self.log_level = log_level
        self.master_python_args = tuple(master_python_args)
        self.agent_hostnames = tuple(agent_hostnames)
        self._marker = uuid.uuid4().hex
        self._env = {**os.environ, "PYTHONUNBUFFERED": "1", MARKER_ENV: self._marker}
        self._master: Daemon | None = None
        self._agents: list[_Agent] = []
        self._address = ""
        self._atexit_registered = False

    # -- the whole cluster

    def start(self) -> LocalCluster:
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

    def stop(self) -> None:
        """Stop the agents (they kill their tasks), then the master; wait for all of them."""
        for a in self._agents:
            a.daemon.send(signal.SIGTERM)
        deadline = time.monotonic() + DEFAULT_STOP_GRACE_S
        for a in self._agents:
            a.daemon.stop(signal.SIGTERM, max(0.0, deadline - time.monotonic()))
        if self._master is not None:
            self._master.stop()
        self._end_strays()
        remove_agent_cgroups_of([a.work_dir for a in self._agents])
        if self._atexit_registered:
            atexit.unregister(self.stop)
            self._atexit_registered = False

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- the master

    @property
    def master_address(self) -> str:
        """`host:port` of the master, as it advertises itself."""
        if not self._address:
            raise LocalClusterError("the master has not been started")
        return self._address

    @property
    def master_pid(self) -> int | None:
        return self._master.pid if self._master is not None else None

    @property
    def master_log(self) -> Path:
        return self.work_dir / "master.log"

    def start_master(self) -> None:
        """Start the master (on the same port as before, if it ran) and wait until it listens."""
        master_dir = self.work_dir / "master"
        master_dir.mkdir(parents=True, exist_ok=True)
        info = master_dir / "master.json"
        info.unlink(missing_ok=True)
        argv = [
            sys.executable, *self.master_python_args, "-m", "mesoslite.master.main",
            "--host", self.host,
            "--port", str(self.port), "--work-dir", str(master_dir),
            "--log-level", self.log_level, *self.master_args,
        ]
        self._master = Daemon("master", argv, self.master_log, self._env)
        self._arm_atexit()
        self._master.start()
        deadline = time.monotonic() + self.start_timeout_s
        while True:
            doc = _read_json(info)
            if doc.get("pid") == self._master.pid:
                break
            self._raise_if_dead(self._master, "before listening")
            if time.monotonic() > deadline:
                raise self._failure(self._master, f"did not listen in {self.start_timeout_s:g}s")
            time.sleep(_POLL_S / 2)
        self._address = str(doc["address"])
        self.port = int(self._address.rsplit(":", 1)[1])

    def stop_master(self, sig: int = signal.SIGTERM) -> None:
        """Send `sig` to the master (SIGKILL after a grace period) and wait for it to exit."""
        if self._master is not None:
            self._master.stop(sig)

    def restart_master(self) -> None:
        """Stop the master and start it again on the same port with the same work dir."""
        self.stop_master()
        self.start_master()

    # -- agents

    @property
    def agent_pids(self) -> list[int]:
        """The PID of each agent's latest process (alive or not), by index."""
        return [a.daemon.pid for a in self._agents if a.daemon.pid is not None]

    @property
    def agent_ids(self) -> list[str]:
        return [a.id for a in self._agents]

    @property
    def agent_work_dirs(self) -> list[Path]:
        return [a.work_dir for a in self._agents]

    @property
    def agent_logs(self) -> list[Path]:
        return [a.daemon.log_path for a in self._agents]

    def add_agent(self) -> str:
        """Start one more agent and wait until it is active; returns its agent id."""
        if importlib.util.find_spec("mesoslite.agent.main") is None:
            raise LocalClusterError(
                "the agent is not installed: `mesoslite.agent.main` cannot be imported"
            )
        i = len(self._agents)
        work = self.work_dir / f"agent-{i}"
        work.mkdir(parents=True, exist_ok=True)
        argv = [
            sys.executable, "-m", "mesoslite.agent.main", "--master", self.master_address,
            "--work-dir", str(work), "--resources", self._resources_of(i),
            "--log-level", self.log_level, "--recover", self.agent_recover, *self.agent_args,
        ]
        if i < len(self.agent_hostnames):
            argv += ["--hostname", self.agent_hostnames[i]]
        agent = _Agent(i, work, Daemon(f"agent {i}", argv, self.work_dir / f"agent-{i}.log",
                                       self._env))
        self._agents.append(agent)
        self._start_agent(agent)
        return agent.id

    def start_agent(self, i: int) -> None:
        """Start agent `i` again (same work dir, so same id) and wait until it is active."""
        self._start_agent(self._agents[i])

    def kill_agent(self, i: int, sig: int = signal.SIGKILL) -> None:
        """Send `sig` to agent `i` and wait for it to exit (SIGKILL after a grace period)."""
        self._agents[i].daemon.stop(sig)

    def _start_agent(self, agent: _Agent) -> None:
        known = {a.id for a in self._agents_seen()} if not agent.id else set()
        agent.daemon.start()
        deadline = time.monotonic() + self.start_timeout_s
        while True:
            active = [a.id for a in self._agents_seen() if a.status == "active"]
            if agent.id and agent.id in active:
                return
            new = [x for x in active if x not in known and x not in self.agent_ids]
            if not agent.id and new:
                agent.id = new[0]
                return
            self._raise_if_dead(agent.daemon, "before registering")
            self._raise_if_dead(self._master_daemon(), "while an agent was registering")
            if time.monotonic() > deadline:
                raise self._failure(agent.daemon, f"did not register with the master at "
                                    f"{self.master_address} in {self.start_timeout_s:g}s")
            time.sleep(_POLL_S)

    def wait_for_agents(
        self, n: int, timeout_s: float = DEFAULT_START_TIMEOUT_S
    ) -> list[AgentView]:
        """Wait until at least `n` agents are active; returns the active ones.

        Raises:
            LocalClusterError: the time ran out (naming the daemons that died, if any).
        """
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
            time.sleep(_POLL_S)

    # -- inspection

    def client(self) -> BlockingOperatorClient:
        """A client of the master's Operator service; close it (or use `with`)."""
        from mesoslite.cli._client import BlockingOperatorClient

        return BlockingOperatorClient(self.master_address, timeout_s=5.0)

    def cli_env(self) -> dict[str, str]:
        """This process's environment with `MESOSLITE_MASTER` pointing at the cluster."""
        return {**os.environ, "MESOSLITE_MASTER": self.master_address}

    def dead_daemons(self) -> list[str]:
        """`agent 1 (pid 123) was killed by SIGKILL`, for every started daemon that is gone."""
        daemons = [self._master, *(a.daemon for a in self._agents)]
        return [
            f"{d.name} (pid {d.pid}) {d.describe_exit()}"
            for d in daemons
            if d is not None and d.proc is not None and not d.alive
        ]

    def dump_logs(self, out: IO[str] | None = None, lines: int = 200) -> None:
        """Write the tail of every daemon's log to `out` (stderr by default)."""
        stream = out if out is not None else sys.stderr
        daemons = [self._master, *(a.daemon for a in self._agents)]
        for d in daemons:
            if d is None:
                continue
            stream.write(f"==== {d.name} (pid {d.pid}, {d.describe_exit()}): {d.log_path}\n")
            stream.write(d.log_tail(lines) + "\n")
        stream.flush()

    # -- internals

    def _resources_of(self, i: int) -> str:
        if "ports" in self.agent_resources:
            return self.agent_resources
        begin = AGENT_PORTS_BASE + AGENT_PORTS_EACH * i
        sep = ";" if self.agent_resources.strip() else ""
        return f"{self.agent_resources}{sep}ports:[{begin}-{begin + AGENT_PORTS_EACH - 1}]"

    def _master_daemon(self) -> Daemon:
        if self._master is None:
            raise LocalClusterError("the master has not been started")
        return self._master

    def _agents_seen(self) -> list[AgentView]:
        try:
            with self.client() as c:
                return c.agents()
        except UnavailableError:
            return []

    def _failure(self, daemon: Daemon, what: str) -> LocalClusterError:
        return LocalClusterError(
            f"{daemon.name} (pid {daemon.pid}) {what}; the end of {daemon.log_path}:\n"
            f"{daemon.log_tail()}"
        )

    def _raise_if_dead(self, daemon: Daemon, when: str) -> None:
        if daemon.proc is not None and not daemon.alive:
            raise self._failure(daemon, f"{daemon.describe_exit()} {when}")

    def _arm_atexit(self) -> None:
        if not self._atexit_registered:
            atexit.register(self.stop)
            self._atexit_registered = True

    def _end_strays(self) -> None:
        """SIGKILL task processes that carry this cluster's marker (left by a killed agent)."""
        import psutil

        for p in psutil.process_iter(["environ"], ad_value=None):
            env = p.info.get("environ") or {}
            if env.get(MARKER_ENV) == self._marker and p.pid != os.getpid():
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


def _read_json(path: Path) -> dict[str, object]:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}
