"""Chaos helpers: fault injectors on real daemons, and the invariants checked after a fault.

Public, like `kazoo.testing` (issue 11)::

    with ZooKeeperCluster(tmp / "zk") as zk, \\
            ChaosCluster(tmp / "ha", zk.chroot_url(), masters=3, agents=2) as ha:
        ledger = Ledger(tmp / "ledger")
        faults = FaultInjector(ha, zk)
        submit(ha, ledger.batch_spec("b1", instances=30, body="sleep 2"))
        faults.kill_leader()
        wait_for_job(ha, "b1", timeout_s=60)
        assert check_invariants(ha, ledger, ["b1"]) == []

Every fault is ended by the PID of a process this harness started (`Daemon`), never by
name. An outage or a pause always ends (SIGCONT, restart) even if the waiting is interrupted.
"""

from __future__ import annotations

import contextlib
import functools
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import IO, TYPE_CHECKING, Any, TypeVar

from mesoslite.errors import MesosliteError
from mesoslite.jobs.model import AttemptView, JobState, JobView
from mesoslite.local.daemon import Daemon
from mesoslite.local.ha import HACluster
from mesoslite.local.zookeeper import ZooKeeperCluster
from mesoslite.testing.invariants import (
    Ledger,
    TaskRecord,
    cron_times_not_once,
    history_succeeded_twice,
    stale_tasks,
    succeeded_twice,
    task_processes,
    updates_lost,
)
from mesoslite.testing.netns import NetnsAgent, netns_available

if TYPE_CHECKING:
    from mesoslite.cli._client import BlockingOperatorClient

T = TypeVar("T")
# How long an update may take to arrive after its job ended (an agent re-registering
# after a fault, then its update retry) before the chaos checks call it lost.
LATE_UPDATE_SETTLE_S = 20.0

__all__ = [
    # Clusters and faults
    "ChaosCluster", "FaultInjector", "NetnsAgent", "netns_available",
    # Jobs through whichever master leads
    "client_call", "first_attempt_lingers", "submit", "wait_for_job", "wait_for_new_job",
    "wait_for_no_tasks",
    # Invariants
    "Ledger", "TaskRecord", "check_invariants", "invariant_report", "stale_tasks",
    "task_processes",
    # ZooKeeper measurements
    "largest_znode", "rss_mb",
]


class ChaosCluster(HACluster):
    """An `HACluster` whose masters may also listen for agents in network namespaces.

    Args:
        advertise_host: if set, masters bind 0.0.0.0 and advertise `advertise_host:PORT`
            (the root end of a `NetnsAgent`'s veth), so that agents inside a namespace and
            everything outside reach the same address. Other arguments as `HACluster`.
    """

    def __init__(self, *args: Any, advertise_host: str = "", **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.advertise_host = advertise_host
        self.netns_agents: list[NetnsAgent] = []

    @property
    def advertised(self) -> list[str]:
        host = self.advertise_host or "127.0.0.1"
        return [f"{host}:{p}" for p in self.ports]

    def _master_daemon(self, i: int) -> Daemon:
        d = super()._master_daemon(i)
        if self.advertise_host:
            # click keeps the last value of a repeated option: these override `--host`.
            # --insecure: plain text off loopback, on the test's own private bridge.
            d.argv += [
                "--host", "0.0.0.0", "--advertise-address", self.advertised[i], "--insecure",
            ]
        return d

    def add_agent(self) -> int:
        """Start one more agent (in the root namespace); returns its index."""
        i = len(self.agents)
        self.agents.append(self._agent_daemon(i))
        self.agents[i].start()
        self.agent_count += 1
        return i

    def add_netns_agent(self, agent: NetnsAgent) -> None:
        """Start `agent` (its namespace made) as part of this cluster; stopped with it."""
        self.netns_agents.append(agent)
        agent.start()

    def stop(self) -> None:
        for a in self.netns_agents:
            a.close()
        super().stop()

    def dump_logs(self, out: IO[str] | None = None, lines: int = 120) -> None:
        super().dump_logs(out, lines)
        stream = out if out is not None else sys.stderr
        for a in self.netns_agents:
            stream.write(f"==== {a.daemon.name} (pid {a.daemon.pid}, "
                         f"{a.daemon.describe_exit()})\n{a.daemon.log_tail(lines)}\n")


class FaultInjector:
    """Faults on the daemons of `ha` and the servers of `zk`, counted by kind in `counts`."""

    def __init__(self, ha: HACluster, zk: ZooKeeperCluster | None = None) -> None:
        self.ha = ha
        self.zk = zk
        self.counts: Counter[str] = Counter()
        # (kind, start, end) by the host's clock: when agents could not reach a master (or
        # the master them), to tell a task that ended unseen from one that was not killed.
        self.windows: list[tuple[str, float, float]] = []

    @contextlib.contextmanager
    def _window(self, kind: str) -> Iterator[None]:
        start = time.time()
        try:
            yield
        finally:
            self.windows.append((kind, start, time.time()))

    def kill_leader(self, sig: int = signal.SIGKILL, *, restart: bool = True) -> int:
        """Signal the leading master and (by default) start it again as a standby."""
        i = self.ha.wait_for_leader()
        with self._window("leader"):
            self.ha.kill_master(i, sig)
            self.counts[f"leader_{signal.Signals(sig).name}"] += 1
            if restart:
                self.ha.wait_for_leader(60.0, other_than=i)
        if restart:
            self.ha.start_master(i)
        return i

    def revive_masters(self) -> list[int]:
        """Start again every master that has exited (a deposed leader exits with status 1
        for its supervisor to restart it, as `mesoslite local --ha` does); returns which."""
        dead = [i for i, d in enumerate(self.ha.masters) if d.proc is not None and not d.alive]
        for i in dead:
            self.ha.start_master(i)
            self.counts["master_restarted"] += 1
        return dead

    def kill_agent(self, i: int, down_s: float = 0.0) -> None:
        """SIGKILL agent `i` (its tasks live on), and start it again after `down_s`."""
        with self._window("agent_SIGKILL"):
            self.ha.kill_agent(i, signal.SIGKILL)
            self.counts["agent_SIGKILL"] += 1
            time.sleep(down_s)
            self.ha.start_agent(i)

    def busiest_agent(self) -> int:
        """The index of the agent whose work dir holds the most live task sandboxes."""
        counts = Counter(
            i for p in task_processes(self.ha.marker) for i in range(len(self.ha.agents))
            if p.sandbox.startswith(f"{self.ha.work_dir / f'agent-{i}'}/")
        )
        return counts.most_common(1)[0][0] if counts else 0

    def pause(self, daemon: Daemon, seconds: float, kind: str = "") -> None:
        """SIGSTOP `daemon` for `seconds`, then SIGCONT (also if the wait is interrupted)."""
        kind = kind or f"{daemon.name.split()[0]}_SIGSTOP"
        with self._window(kind):
            daemon.send(signal.SIGSTOP)
            self.counts[kind] += 1
            try:
                time.sleep(seconds)
            finally:
                daemon.send(signal.SIGCONT)

    def zk_outage(self, seconds: float, *, server: int = 0, sig: int = signal.SIGKILL) -> None:
        """Signal ZooKeeper server `server`, wait `seconds`, start it again on the same
        port and data dir (also if the wait is interrupted)."""
        if self.zk is None:
            raise ValueError("zk_outage needs the ZooKeeperCluster: FaultInjector(ha, zk)")
        with self._window("zookeeper"):
            self.zk.servers[server].daemon.stop(sig)
            self.counts[f"zookeeper_{signal.Signals(sig).name}"] += 1
            try:
                time.sleep(seconds)
            finally:
                self.zk.start(server)

    def partition(self, agent: NetnsAgent, seconds: float) -> None:
        with self._window("agent_partition"):
            agent.partition(seconds)
        self.counts["agent_partition"] += 1


# ---------------------------------------------------------------- jobs, through any master


def client_call(
    ha: HACluster, fn: Callable[[BlockingOperatorClient], T], timeout_s: float = 30.0
) -> T:
    """`fn(client)` on the leader (found through the masters' list, so it works while
    ZooKeeper is down), retried while no master leads or answers."""
    from mesoslite.cli._client import BlockingOperatorClient

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with BlockingOperatorClient(ha.masters_list, timeout_s=5.0) as c:
                return fn(c)
        except MesosliteError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.25)


def submit(ha: HACluster, spec_yaml: str, timeout_s: float = 30.0) -> JobView:
    """Submit a job spec to the leader; a retry after a failover may find it already there."""
    from mesoslite.errors import ConflictError

    def go(c: BlockingOperatorClient) -> JobView:
        try:
            return c.submit_job(spec_yaml)
        except ConflictError:
            import yaml

            return c.job_status(str(yaml.safe_load(spec_yaml)["name"]))

    return client_call(ha, go, timeout_s)


def wait_for_job(
    ha: HACluster, name: str, *, timeout_s: float, states: Iterable[JobState] = ()
) -> JobView:
    """Poll `job status` until the job is terminal (or in one of `states`); return it.

    Raises:
        AssertionError: not there within `timeout_s` (with the last view).
    """
    wanted = set(states)
    deadline = time.monotonic() + timeout_s
    last: JobView | None = None
    while time.monotonic() < deadline:
        try:
            last = client_call(ha, lambda c: c.job_status(name), timeout_s=5.0)
        except MesosliteError:
            last = None
        if last is not None and (last.state in wanted or (not wanted and last.state.terminal)):
            return last
        time.sleep(0.5)
    summary = "no answer" if last is None else f"{last.state.value}: {last.message}"
    raise AssertionError(f"job {name} not {sorted(s.value for s in wanted) or 'ended'} "
                         f"after {timeout_s:g}s ({summary})")


def wait_for_new_job(ha: HACluster, ledger: Ledger, name: str, timeout_s: float = 60.0) -> str:
    """'' if a new 3-instance batch job is accepted and succeeds, else what went wrong."""
    try:
        submit(ha, ledger.batch_spec(name, instances=3), timeout_s=timeout_s)
        view = wait_for_job(ha, name, timeout_s=timeout_s)
    except (MesosliteError, AssertionError) as e:
        return f"a new job after the faults did not run: {e}"
    if view.state != JobState.SUCCEEDED:
        return f"a new job after the faults ended {view.state.value}: {view.message}"
    return ""


def first_attempt_lingers(long_s: float, then_s: float = 1.0) -> str:
    """A task body: the first attempt of an instance sleeps `long_s`, later ones `then_s`.

    For fault scenarios: an original task is still running when its agent comes back (so
    it must be killed), while its replacement ends soon. Follow the job's end with
    `wait_for_no_tasks`, so that an original that was not killed gets to finish (and be
    counted) before the invariants are checked.
    """
    return (f'if [ "$MESOSLITE_JOB_ATTEMPT" = 1 ]; then sleep {long_s:g}; '
            f"else sleep {then_s:g}; fi")


def wait_for_no_tasks(ha: HACluster, job: str, timeout_s: float) -> list[str]:
    """Wait until no process of `job`'s tasks is alive; returns those still alive after."""
    deadline = time.monotonic() + timeout_s
    while True:
        left = [f"{p.task_id} (pid {p.pid})" for p in task_processes(ha.marker)
                if p.task_id.startswith(f"{job}.")]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.2)


# ---------------------------------------------------------------- all invariants at once


def check_invariants(
    ha: HACluster, ledger: Ledger, jobs: Sequence[str], *, cron_jobs: Sequence[str] = (),
    new_job: str = "after-chaos", timeout_s: float = 60.0,
) -> list[str]:
    """Every invariant of issue 11 after the `jobs` (batch, ended) and `cron_jobs` ran.

    No instance succeeded twice (ledger and `job history`), no update lost (each reported
    end matches the real exit code), every cron time once, no stale task process, and the
    cluster accepts and finishes a new job. Returns the violations ([] if all held).
    """
    report = invariant_report(ha, ledger, jobs, cron_jobs=cron_jobs, new_job=new_job,
                              timeout_s=timeout_s)
    return [v for found in report.values() for v in found]


def invariant_report(
    ha: HACluster, ledger: Ledger, jobs: Sequence[str], *, cron_jobs: Sequence[str] = (),
    new_job: str = "after-chaos", timeout_s: float = 60.0,
) -> dict[str, list[str]]:
    """`check_invariants`'s violations by invariant: `run_twice`, `lost`, `cron`, `stale`,
    `new_job` (and `status` if the cluster did not answer)."""
    records = ledger.records()
    out: dict[str, list[str]] = {k: [] for k in
                                 ("run_twice", "lost", "cron", "stale", "new_job", "status")}
    names = {*jobs, *cron_jobs}
    out["run_twice"] += succeeded_twice(r for r in records.values() if r.job in names)
    for name in [*jobs, *cron_jobs]:
        try:
            view = client_call(ha, functools.partial(_status, name=name), timeout_s)
            history = client_call(ha, functools.partial(_history, name=name), timeout_s)
        except MesosliteError as e:
            out["status"].append(f"job {name}: no status from the cluster: {e}")
            continue
        out["run_twice"] += history_succeeded_twice(name, history)
        if name in jobs:
            out["lost"] += _updates_lost_once_settled(ha, name, view, history, ledger, timeout_s)
        else:
            out["cron"] += cron_times_not_once(view, records.values())
    out["stale"] += stale_tasks(ha.marker, _running_task_ids(ha, timeout_s))
    if new_job:
        out["new_job"] += [e for e in [wait_for_new_job(ha, ledger, new_job, timeout_s)] if e]
    return out


def _updates_lost_once_settled(
    ha: HACluster, name: str, view: JobView, history: list[AttemptView], ledger: Ledger,
    timeout_s: float, settle_s: float = LATE_UPDATE_SETTLE_S,
) -> list[str]:
    """`updates_lost`, given `settle_s` for updates still on their way: an agent back from
    a fault resends the real end of a replaced attempt after it re-registers, which can be
    after its job ended. Lost means never reported, not reported late."""
    deadline = time.monotonic() + settle_s
    while True:
        lost = updates_lost(view, history, ledger.records())
        if not lost or time.monotonic() >= deadline:
            return lost
        time.sleep(1.0)
        view = client_call(ha, functools.partial(_status, name=name), timeout_s)
        history = client_call(ha, functools.partial(_history, name=name), timeout_s)


def _status(c: BlockingOperatorClient, name: str) -> JobView:
    return c.job_status(name)


def _history(c: BlockingOperatorClient, name: str) -> list[AttemptView]:
    return c.job_history(name)


_LIVE_STATES = frozenset({"TASK_STAGING", "TASK_STARTING", "TASK_RUNNING", "TASK_KILLING"})


def _running_task_ids(ha: HACluster, timeout_s: float) -> set[str]:
    """Ids of the tasks the leader counts as running (an UNREACHABLE one is not: its
    framework has been told it is gone, and may have replaced it)."""
    try:
        tasks = client_call(ha, lambda c: c.tasks(), timeout_s)
    except MesosliteError:
        return set()
    return {t.id for t in tasks if t.state in _LIVE_STATES}


def ledger_counts(records: dict[str, TaskRecord]) -> dict[str, int]:
    """Tasks started, succeeded, and instances run (ended 0) more than once."""
    return {
        "tasks_started": sum(r.starts for r in records.values()),
        "tasks_succeeded": sum(r.succeeded for r in records.values()),
        "run_twice": len(succeeded_twice(records.values())),
    }



# ---------------------------------------------------------------- ZooKeeper measurements


def largest_znode(hosts: str, path: str) -> tuple[str, int]:
    """The path and data size in bytes of the largest znode under `path` (walks the tree)."""
    from kazoo.client import KazooClient

    zk = KazooClient(hosts=hosts, timeout=10.0)
    zk.start(timeout=10.0)
    try:
        best, todo = ("", 0), [path]
        while todo:
            node = todo.pop()
            data, stat = zk.get(node)
            if stat.dataLength > best[1]:
                best = (node, stat.dataLength)
            todo += [f"{node.rstrip('/')}/{c}" for c in zk.get_children(node)]
        return best
    finally:
        zk.stop()
        zk.close()


def rss_mb(pid: int | None) -> float:
    """The resident memory of process `pid` in MB (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return 0.0
