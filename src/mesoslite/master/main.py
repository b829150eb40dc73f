"""`mesoslite-master`: parse the configuration, start the servers, run until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import time
import uuid
from pathlib import Path
from typing import Any

import click

from mesoslite import __version__
from mesoslite.config import click_options
from mesoslite.daemon import run_daemon
from mesoslite.errors import ConfigError, MesosliteError
from mesoslite.master.config import MasterConfig

logger = logging.getLogger("mesoslite.master")

# How long a master that lost leadership has for its orderly shutdown before the
# watchdog ends it (a stuck registry call must not keep a deposed leader alive).
EXIT_GRACE_S = 3.0


class LeadershipLostError(MesosliteError):
    """Raised when a leading master lost leadership for good; it exits (code 1) so that a
    supervisor restarts it as a standby, as Mesos's master does."""


async def serve(config: MasterConfig) -> None:
    """Run the master until cancelled or signalled (or, in HA, until deposed)."""
    import grpc

    from mesoslite._proto.v1 import (
        agent_pb2_grpc,
        jobs_pb2_grpc,
        operator_pb2_grpc,
        scheduler_pb2_grpc,
    )
    from mesoslite.allocator.loader import load_allocator, parse_allocator_options
    from mesoslite.clock import SystemClock
    from mesoslite.master.actor import MasterActor
    from mesoslite.master.agent_service import AgentServicer
    from mesoslite.master.election.base import Change, Contender
    from mesoslite.master.jobs_service import JobsServicer
    from mesoslite.master.leadership import ExitWatchdog, LeaderGuard, Leadership
    from mesoslite.master.operator_service import OperatorServicer
    from mesoslite.master.registry.base import Registry
    from mesoslite.master.scheduler_service import SchedulerServicer
    from mesoslite.master.state import MasterState
    from mesoslite.model import MasterInfo
    from mesoslite.rpc import SERVER_OPTIONS, DecodeGuard

    work_dir = Path(config.work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    allocator = load_allocator(
        config.allocator, parse_allocator_options(config.allocator_options, "--allocator-options")
    )
    run_id = uuid.uuid4().hex[:8]
    leadership = Leadership(f"master-{run_id}")
    server = grpc.aio.server(
        options=SERVER_OPTIONS, interceptors=[LeaderGuard(leadership), DecodeGuard()]
    )
    bind = f"{config.host}:{config.port}"
    try:
        port = server.add_insecure_port(bind)
    except RuntimeError:
        port = 0
    if not port:
        raise ConfigError(f"cannot listen on {bind}: address in use or not available")
    host = config.host if config.host not in ("0.0.0.0", "::", "") else socket.gethostname()
    address = config.advertise_address or f"{host}:{port}"
    leadership.address = address
    master_info = MasterInfo(
        id=leadership.master_id, address=address, version=__version__, started_at=time.time()
    )
    state = MasterState(
        allocator=allocator,
        offer_timeout_s=config.offer_timeout_s,
        agent_reregister_timeout_s=config.agent_reregister_timeout_s,
        agent_ping_timeout_s=config.agent_ping_timeout_s,
        max_agent_ping_timeouts=config.max_agent_ping_timeouts,
        seed=config.seed,
        run_id=run_id,
    )
    stop = asyncio.Event()
    lost: list[str] = []
    watchdog = ExitWatchdog()

    def fenced(reason: str) -> None:
        lost.append(f"another master took the registry over ({reason})")
        leadership.leading = False
        watchdog.arm(EXIT_GRACE_S, lost[-1])
        stop.set()

    contender: Contender
    registry: Registry
    if config.zk:
        from mesoslite.discovery import parse_zk_url
        from mesoslite.master.election.zookeeper import ZooKeeperContender
        from mesoslite.master.registry.zookeeper import ZooKeeperRegistryStore

        url = parse_zk_url(config.zk)
        doc = {
            "id": master_info.id, "address": address, "host": host, "port": port,
            "version": __version__, "pid": os.getpid(),
        }
        zk_contender = ZooKeeperContender(
            url, doc, session_timeout_s=config.zk_session_timeout_s
        )
        contender = zk_contender
        registry = ZooKeeperRegistryStore(
            zk_contender, url, writer={"id": master_info.id, "address": address},
            on_fenced=fenced,
        )
    else:
        from mesoslite.master.election.standalone import StandaloneContender
        from mesoslite.master.registry.sqlite import SqliteRegistryStore

        contender = StandaloneContender(address)
        registry = SqliteRegistryStore(work_dir / "registry.sqlite")
    leadership.leader_address_of = lambda: contender.leader_address
    actor = MasterActor(
        state,
        registry,
        SystemClock(),
        allocation_interval_s=config.allocation_interval_s,
        heartbeat_interval_s=config.framework_heartbeat_interval_s,
        agent_ping_interval_s=config.agent_ping_interval_s,
    )
    scheduler_pb2_grpc.add_SchedulerServicer_to_server(
        SchedulerServicer(actor, master_info), server
    )
    agent_pb2_grpc.add_AgentServicer_to_server(AgentServicer(actor, master_info), server)
    operator_pb2_grpc.add_OperatorServicer_to_server(OperatorServicer(actor, master_info), server)
    # The built-in jobs framework runs while this master leads, in process (`jobs_port`).
    jobs_holder: list[Any] = []
    jobs_pb2_grpc.add_JobsServicer_to_server(
        JobsServicer(lambda: jobs_holder[0] if jobs_holder else None), server
    )

    async def start_jobs() -> None:
        if config.jobs and not jobs_holder:
            from mesoslite.master.jobs_port import new_jobs_framework

            roles = tuple(r.strip() for r in config.jobs_roles.split(","))
            jobs = new_jobs_framework(actor, SystemClock(), roles, config.job_retention_s)
            jobs_holder.append(jobs)
            await jobs.start()

    if not config.zk:
        # Standalone: recover before serving, so that the first call finds a leader.
        await actor.start()
        leadership.leading, leadership.reason = True, ""
    await server.start()
    if leadership.leading:
        await start_jobs()
    info_file = work_dir / "master.json"

    def write_info() -> None:
        tmp = info_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({
            "address": address, "pid": os.getpid(), "id": master_info.id,
            "leading": leadership.leading,
        }))
        tmp.replace(info_file)

    write_info()
    logger.info(
        "master listening address=%s allocator=%s work_dir=%s zk=%s",
        address, config.allocator, work_dir, config.zk or "(standalone)",
    )

    async def follow_leadership() -> None:
        started = leadership.leading
        while True:
            change = await contender.next_change()
            if change.change == Change.ELECTED:
                try:
                    if not started:
                        await actor.start()
                        started = True
                        leadership.leading, leadership.reason = True, ""
                        await start_jobs()
                    elif not leadership.leading:
                        actor.resume()
                except MesosliteError as e:
                    lost.append(f"cannot recover from the registry: {e.message}")
                    stop.set()
                    return
                leadership.leading, leadership.reason = True, ""
                logger.info("leading master_id=%s epoch=%d", master_info.id, contender.epoch)
            elif change.change == Change.SUSPENDED:
                leadership.leading, leadership.reason = False, change.reason
                actor.pause()
                # The backstop: the contender deposes us at the session timeout, on this
                # loop; if that cannot happen, the watchdog ends the process anyway.
                watchdog.arm(
                    config.zk_session_timeout_s + EXIT_GRACE_S,
                    f"{change.reason} for longer than the session timeout",
                )
            elif change.change == Change.RESUMED:
                watchdog.disarm()
                actor.resume()
                leadership.leading, leadership.reason = True, ""
            else:
                leadership.leading, leadership.reason = False, change.reason
                actor.pause()
                lost.append(change.reason)
                watchdog.arm(EXIT_GRACE_S, change.reason)
                stop.set()
                return
            write_info()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await contender.start()
    follower = asyncio.create_task(follow_leadership(), name="leadership")
    try:
        await stop.wait()
    finally:
        logger.info("master stopping")
        if lost:
            watchdog.arm(EXIT_GRACE_S, f"no longer leading: {lost[0]}")
        leadership.leading = False
        follower.cancel()
        await asyncio.gather(follower, return_exceptions=True)
        for jobs in jobs_holder:
            await jobs.stop()
        await server.stop(grace=1.0)
        await actor.stop()
        await contender.close()
        info_file.unlink(missing_ok=True)
    if lost:
        raise LeadershipLostError(f"no longer leading: {lost[0]}; exiting")


@click.command(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--config", "config_path", type=click.Path(dir_okay=False), help="YAML file of options"
)
@click.option("--print-config", is_flag=True, help="print the effective options and exit")
@click.version_option(__version__, prog_name="mesoslite-master")
@click_options(MasterConfig, "master")
def main(config_path: str | None, print_config: bool, **flags: Any) -> None:
    """Run a mesoslite master: it turns agents' resources into offers for frameworks.

    Options are read from defaults, then --config YAML, then MESOSLITE_MASTER_* environment
    variables, then flags.
    """
    # A deposed leader exits 1, so that a supervisor restarts it as a standby.
    run_daemon(
        MasterConfig, "master", serve,
        flags=flags, config_path=config_path, print_config=print_config,
        exit_codes={LeadershipLostError: 1},
    )


if __name__ == "__main__":
    main()
