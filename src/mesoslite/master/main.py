"""`mesoslite-master`: parse the configuration, start the servers, run until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import click

from mesoslite import __version__
from mesoslite.config import click_options, describe, load_config
from mesoslite.errors import ConfigError, MesosliteError
from mesoslite.master.config import MasterConfig

logger = logging.getLogger("mesoslite.master")


async def serve(config: MasterConfig) -> None:
    """Run the master until cancelled or signalled."""
    import grpc

    from mesoslite._proto.v1 import agent_pb2_grpc, operator_pb2_grpc, scheduler_pb2_grpc
    from mesoslite.allocator.loader import load_allocator
    from mesoslite.clock import SystemClock
    from mesoslite.master.actor import MasterActor
    from mesoslite.master.agent_service import AgentServicer
    from mesoslite.master.operator_service import OperatorServicer
    from mesoslite.master.registry.sqlite import SqliteRegistryStore
    from mesoslite.master.scheduler_service import SchedulerServicer
    from mesoslite.master.state import MasterState
    from mesoslite.model import MasterInfo
    from mesoslite.rpc import SERVER_OPTIONS

    work_dir = Path(config.work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    allocator = load_allocator(config.allocator)
    run_id = uuid.uuid4().hex[:8]
    server = grpc.aio.server(options=SERVER_OPTIONS)
    bind = f"{config.host}:{config.port}"
    try:
        port = server.add_insecure_port(bind)
    except RuntimeError:
        port = 0
    if not port:
        raise ConfigError(f"cannot listen on {bind}: address in use or not available")
    host = config.host if config.host not in ("0.0.0.0", "::", "") else socket.gethostname()
    address = config.advertise_address or f"{host}:{port}"
    master_info = MasterInfo(
        id=f"master-{run_id}", address=address, version=__version__, started_at=time.time()
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
    registry = SqliteRegistryStore(work_dir / "registry.sqlite")
    actor = MasterActor(
        state,
        registry,
        SystemClock(),
        allocation_interval_s=config.allocation_interval_s,
        heartbeat_interval_s=config.framework_heartbeat_interval_s,
        agent_ping_interval_s=config.agent_ping_interval_s,
    )
    await actor.start()
    scheduler_pb2_grpc.add_SchedulerServicer_to_server(
        SchedulerServicer(actor, master_info), server
    )
    agent_pb2_grpc.add_AgentServicer_to_server(AgentServicer(actor, master_info), server)
    operator_pb2_grpc.add_OperatorServicer_to_server(OperatorServicer(actor, master_info), server)
    await server.start()
    info_file = work_dir / "master.json"
    tmp = info_file.with_suffix(".tmp")
    tmp.write_text(json.dumps({"address": address, "pid": os.getpid(), "id": master_info.id}))
    tmp.replace(info_file)
    logger.info(
        "master listening address=%s allocator=%s work_dir=%s", address, config.allocator, work_dir
    )

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        logger.info("master stopping")
        await server.stop(grace=1.0)
        await actor.stop()
        info_file.unlink(missing_ok=True)


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
    try:
        config, sources = load_config(MasterConfig, "master", flags=flags, config_path=config_path)
    except ConfigError as e:
        click.echo(f"mesoslite-master: {e}", err=True)
        sys.exit(2)
    if print_config:
        click.echo(describe(config, sources))
        return
    from mesoslite.logging import setup_logging

    setup_logging(config.log_level, config.log_format)
    try:
        asyncio.run(serve(config))
    except MesosliteError as e:
        click.echo(f"mesoslite-master: {e}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
