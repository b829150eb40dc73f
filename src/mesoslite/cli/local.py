"""`mesoslite local`: a master and N agents on this host, in the foreground, until Ctrl-C."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import click

from mesoslite.cli import MASTER_ENV

if TYPE_CHECKING:
    from pathlib import Path

    from mesoslite.local.cluster import LocalCluster
    from mesoslite.local.ha import HACluster

# How often the foreground loop checks that every daemon is still running.
WATCH_INTERVAL_S = 0.5
LEVELS = ("debug", "info", "warning", "error")


class _Stoppable(Protocol):
    def stop(self) -> None: ...


def _check_resources(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    from mesoslite.errors import ValidationError
    from mesoslite.resources import parse_resources

    if value is not None:
        try:
            parse_resources(value)
        except ValidationError as e:
            raise click.BadParameter(e.message) from None
    return value


@click.command()
@click.option("-n", "--agents", type=click.IntRange(0, 64), default=2, show_default=True,
              help="how many agents to start")
@click.option("--port", type=click.IntRange(0, 65535), default=5050, show_default=True,
              help="the master's port (0: any free port)")
@click.option("--http-port", type=click.IntRange(0, 65535), default=5051, show_default=True,
              help="the master's web UI, /state and /metrics (a free port if this one is "
                   "taken; with --ha each master picks a free one)")
@click.option("--work-dir", type=click.Path(file_okay=False), default=None,
              help="where the daemons keep state and logs [default: a new temporary "
                   "directory, kept afterwards]")
@click.option("--agent-resources", default=None, metavar="RESOURCES", callback=_check_resources,
              help="each agent's resources, e.g. 'cpus:2;mem:1024' [default: "
                   "cpus:4;mem:4096;disk:10000, plus 1000 ports of its own]")
@click.option("--log-level", type=click.Choice(LEVELS), default="info", show_default=True,
              help="the daemons' log level")
@click.option("--ha", is_flag=True,
              help="high availability: a ZooKeeper server and 3 masters electing a leader "
                   "(on free ports; a master that dies is started again as a standby)")
@click.option("--tls", is_flag=True,
              help="make a throwaway CA in WORK_DIR/tls and run every daemon with TLS "
                   "(mutual TLS for agents and clients); prints the MESOSLITE_TLS_* lines "
                   "a client needs")
@click.pass_context
def local(
    ctx: click.Context, agents: int, port: int, http_port: int, work_dir: str | None,
    agent_resources: str | None, log_level: str, ha: bool, tls: bool,
) -> None:
    """Run a master and agents on this host, in the foreground.

    Each agent reports the host name local-1, local-2, ..., so that jobs placed by host
    (`hostname UNIQUE`) spread over the agents as over that many hosts.

    Ctrl-C (or SIGTERM) stops the agents, which kill their tasks, then the master, and
    exits 0. If a daemon dies on its own, the rest are stopped and the exit code is 1.
    Logs go to files in the work dir.

    With --ha, a ZooKeeper server (Debian's zookeeper package) and 3 masters run instead
    of one master; kill the leader to watch a standby take over.
    """
    import tempfile
    from pathlib import Path

    from mesoslite.cli.exit_codes import EXIT_FAILURE
    from mesoslite.local.base import DEFAULT_AGENT_RESOURCES
    from mesoslite.local.cluster import LocalCluster

    if ha:
        ctx.exit(_run_ha(agents, work_dir, agent_resources, log_level, tls))
    if port and not _port_free("127.0.0.1", port):
        click.echo(f"mesoslite local: port {port} is in use (is a master already running?): "
                   "stop what uses it or pick another with --port", err=True)
        ctx.exit(EXIT_FAILURE)
    work = Path(work_dir) if work_dir else Path(tempfile.mkdtemp(prefix="mesoslite-local-"))
    if http_port and not _port_free("127.0.0.1", http_port):
        click.echo(f"mesoslite local: HTTP port {http_port} is in use; the web UI takes a "
                   "free one", err=True)
        http_port = 0
    cluster = LocalCluster(
        work, agents, agent_resources=agent_resources or DEFAULT_AGENT_RESOURCES, port=port,
        log_level=log_level, agent_hostnames=[f"local-{i + 1}" for i in range(agents)],
        http_port=http_port, tls=tls,
    )

    def start() -> None:
        click.echo(f"mesoslite local: starting a master and {agents} agents in {work}", err=True)
        cluster.start_master()
        for _ in range(agents):
            cluster.add_agent()
        _print_banner(cluster)

    def healthy() -> bool:
        dead = cluster.dead_daemons()
        if dead:
            click.echo(f"mesoslite local: {'; '.join(dead)}; stopping the rest", err=True)
            cluster.dump_logs(lines=20)
        return not dead

    ctx.exit(_run_until_stopped(work, [cluster], start, healthy))


def _run_until_stopped(
    work: Path, started: list[_Stoppable], start: Callable[[], None], healthy: Callable[[], bool]
) -> int:
    """`start()`, then check `healthy()` every `WATCH_INTERVAL_S` until it says no (exit 1)
    or a signal comes (exit 0); then stop what is in `started`, last started first."""
    import signal
    import time

    from mesoslite.cli.exit_codes import EXIT_FAILURE, EXIT_OK
    from mesoslite.errors import MesosliteError

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    # SIGINT too: a shell starts background jobs (`mesoslite local &`) with SIGINT ignored,
    # and Python then leaves it ignored, so `kill -INT` would do nothing.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, interrupt)
    code = EXIT_OK
    try:
        start()
        while healthy():
            time.sleep(WATCH_INTERVAL_S)
        code = EXIT_FAILURE
    except KeyboardInterrupt:
        click.echo("mesoslite local: stopping", err=True)
    except MesosliteError as e:
        click.echo(f"mesoslite local: {e.message}", err=True)
        code = EXIT_FAILURE
    finally:
        # Stopping takes a few seconds at most (SIGKILL follows SIGTERM); a second Ctrl-C
        # must not cut it short and leave daemons behind.
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        for s in reversed(started):
            s.stop()
    click.echo(f"mesoslite local: stopped; state and logs are kept in {work}", err=True)
    return code


def _run_ha(
    agents: int, work_dir: str | None, agent_resources: str | None, log_level: str,
    tls: bool = False,
) -> int:
    import tempfile
    from pathlib import Path

    from mesoslite.local.base import DEFAULT_AGENT_RESOURCES
    from mesoslite.local.ha import HACluster
    from mesoslite.local.zookeeper import ZooKeeperCluster

    work = Path(work_dir) if work_dir else Path(tempfile.mkdtemp(prefix="mesoslite-local-ha-"))
    started: list[_Stoppable] = []
    url = ""

    def start() -> None:
        nonlocal url
        click.echo(f"mesoslite local: starting ZooKeeper, 3 masters and {agents} agents in "
                   f"{work}", err=True)
        zk = ZooKeeperCluster(work / "zookeeper", size=1)
        started.append(zk)
        zk.start()
        url = zk.url("/mesoslite")
        cluster = HACluster(
            work, url, masters=3, agents=agents, session_timeout_s=2.0, log_level=log_level,
            agent_resources=agent_resources or DEFAULT_AGENT_RESOURCES,
            agent_args=("--reconnect-backoff-max-s", "0.5"), tls=tls,
        )
        started.append(cluster)
        cluster.start()
        _print_ha_banner(cluster, url)

    def healthy() -> bool:
        zk, cluster = started
        assert isinstance(zk, ZooKeeperCluster) and isinstance(cluster, HACluster)
        for i, m in enumerate(cluster.masters):
            if not m.alive:
                click.echo(f"mesoslite local: master {i} {m.describe_exit()}; starting it "
                           "again as a standby", err=True)
                cluster.start_master(i)
        dead = [d for d in cluster.dead_daemons() if d.startswith("agent")]
        if dead or not zk.alive(0):
            what = "; ".join(dead) or "ZooKeeper died"
            click.echo(f"mesoslite local: {what}; stopping the rest", err=True)
            return False
        return True

    return _run_until_stopped(work, started, start, healthy)


def _print_ha_banner(cluster: HACluster, url: str) -> None:
    from mesoslite.cli._output import table

    rows: list[tuple[object, ...]] = [
        (f"master {i}", a, d.pid, d.log_path)
        for i, (a, d) in enumerate(zip(cluster.addresses, cluster.masters, strict=True))
    ]
    rows += [(f"agent {i}", "", d.pid, d.log_path) for i, d in enumerate(cluster.agents)]
    leader = cluster.leader_index()
    click.echo(f"mesoslite local: ZooKeeper at {url}; master {leader} leads")
    if leader is not None:
        click.echo(f"mesoslite local: see the UI at {cluster.http_url(leader)}")
    click.echo(table(("DAEMON", "ADDRESS", "PID", "LOG"), rows))
    click.echo(
        "\nIn another shell:\n"
        f"  export {MASTER_ENV}={url}\n"
        + "".join(f"  {line}\n" for line in _tls_lines(cluster))
        + "  mesoslite run -- echo hello\n"
        "  kill -9 <the leader's PID>     # a standby takes over; this one restarts\n"
        "Ctrl-C stops the cluster.",
    )
    sys.stdout.flush()


def _port_free(host: str, port: int) -> bool:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # As the master's gRPC server does, so that a port in TIME_WAIT counts as free.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _print_banner(cluster: LocalCluster) -> None:
    from mesoslite.cli._output import table

    address = cluster.master_address
    rows: list[tuple[object, ...]] = [
        ("master", address, cluster.master_pid, cluster.work_dir / "master", cluster.master_log)
    ]
    for i, (aid, pid, work, log) in enumerate(
        zip(cluster.agent_ids, cluster.agent_pids, cluster.agent_work_dirs, cluster.agent_logs,
            strict=True)
    ):
        rows.append((f"agent {i}", aid, pid, work, log))
    click.echo(f"mesoslite local: master listening on {address}")
    click.echo(f"mesoslite local: see the UI at {cluster.http_url()}")
    click.echo(table(("DAEMON", "ADDRESS/ID", "PID", "WORK DIR", "LOG"), rows))
    click.echo(
        "\nIn another shell:\n"
        f"  export {MASTER_ENV}={address}\n"
        + "".join(f"  {line}\n" for line in _tls_lines(cluster))
        + "  mesoslite run -- echo hello\n"
        "  mesoslite agent list\n"
        "Ctrl-C stops the cluster.",
    )
    sys.stdout.flush()


def _tls_lines(cluster: Any) -> list[str]:
    """With --tls: the `export MESOSLITE_TLS_*=...` lines a client needs."""
    return cluster.tls.env_lines() if cluster.tls is not None else []
