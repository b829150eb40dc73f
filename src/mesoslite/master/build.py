"""Building a master from its configuration: its state and actor, its registry and election
(standalone or ZooKeeper, from `--zk` alone), and its servers. Running it is `main.serve`.

Servers are listed in `MasterServers`: gRPC today; an HTTP server (web UI, JSON state,
metrics) joins there, built in `_build_servers` and started and stopped with the others.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from mesoslite import __version__
from mesoslite._proto.v1 import (
    agent_pb2,
    agent_pb2_grpc,
    jobs_pb2,
    jobs_pb2_grpc,
    operator_pb2,
    operator_pb2_grpc,
    scheduler_pb2,
    scheduler_pb2_grpc,
)
from mesoslite.allocator.loader import load_allocator, parse_allocator_options
from mesoslite.clock import SystemClock
from mesoslite.errors import ConfigError
from mesoslite.grpc_probes import OpenToProbes, ProbeHealth, add_probe_services
from mesoslite.master.actor import MasterActor
from mesoslite.master.agent_service import AgentServicer
from mesoslite.master.config import MasterConfig
from mesoslite.master.election.base import Contender
from mesoslite.master.jobs_service import JobsServicer
from mesoslite.master.leadership import LeaderGuard, Leadership
from mesoslite.master.operator_service import OperatorServicer
from mesoslite.master.registry.base import Registry
from mesoslite.master.scheduler_service import SchedulerServicer
from mesoslite.master.state import MasterState
from mesoslite.model import MasterInfo
from mesoslite.rpc import SERVER_OPTIONS, DecodeGuard
from mesoslite.security.limits_interceptor import AdmissionGuard, AdmissionLimits, FrameworkCount
from mesoslite.transport import add_port


@dataclass(slots=True)
class JobsRunner:
    """The built-in jobs framework, run in process while this master leads (`jobs_port`)."""

    actor: MasterActor
    config: MasterConfig
    jobs: Any = None  # the running `JobsFramework`, once started

    async def start(self) -> None:
        if self.config.jobs and self.jobs is None:
            from mesoslite.master.jobs_port import new_jobs_framework

            roles = tuple(r.strip() for r in self.config.jobs_roles.split(","))
            self.jobs = new_jobs_framework(
                self.actor, SystemClock(), roles, self.config.job_retention_s
            )
            await self.jobs.start()

    async def stop(self) -> None:
        if self.jobs is not None:
            await self.jobs.stop()


@dataclass(slots=True)
class MasterServers:
    """The master's listening servers, started and stopped together."""

    grpc: grpc.aio.Server
    # gRPC health checking: SERVING while this master leads (`grpc_probes`).
    health: ProbeHealth
    # The web UI, /state, /health, /metrics (`master/http/`); None with `--http-port -1`.
    http: Any = None

    async def start(self) -> None:
        await self.grpc.start()
        if self.http is not None:
            try:
                await self.http.start()
            except BaseException:
                await self.grpc.stop(grace=0)  # a port taken: leave nothing half started
                raise
        self.health.start(SystemClock())

    async def stop(self, grace_s: float) -> None:
        await self.health.stop()
        if self.http is not None:
            await self.http.stop()
        await self.grpc.stop(grace=grace_s)


@dataclass(slots=True)
class Master:
    """A built master, not running yet: `main.serve` runs it."""

    config: MasterConfig
    work_dir: Path
    info: MasterInfo
    leadership: Leadership
    actor: MasterActor
    contender: Contender
    servers: MasterServers
    jobs: JobsRunner
    on_fenced: list[Callable[[str], None]] = field(default_factory=list)


def build_master(config: MasterConfig) -> Master:
    """Build the master `config` describes. Raises `ConfigError` (bad allocator, port taken).

    The registry calls the functions in `Master.on_fenced` when another master took it over.
    """
    work_dir = Path(config.work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    allocator = load_allocator(
        config.allocator, parse_allocator_options(config.allocator_options, "--allocator-options")
    )
    run_id = uuid.uuid4().hex[:8]
    leadership = Leadership(f"master-{run_id}")
    admission = AdmissionGuard(AdmissionLimits.of(config), SystemClock())
    server = grpc.aio.server(
        options=SERVER_OPTIONS,
        interceptors=[OpenToProbes(LeaderGuard(leadership)), DecodeGuard(), admission],
    )
    host, port = _bind(server, config)
    leadership.address = config.advertise_address or f"{host}:{port}"
    info = MasterInfo(
        id=leadership.master_id, address=leadership.address, version=__version__,
        started_at=time.time(),
    )
    state = MasterState(
        allocator=allocator,
        offer_timeout_s=config.offer_timeout_s,
        agent_reregister_timeout_s=config.agent_reregister_timeout_s,
        agent_ping_timeout_s=config.agent_ping_timeout_s,
        max_agent_ping_timeouts=config.max_agent_ping_timeouts,
        seed=config.seed,
        run_id=run_id,
        preemption_grace_s=config.preemption_grace_s,
    )
    on_fenced: list[Callable[[str], None]] = []
    contender, registry = _election(config, info, host, port, work_dir, on_fenced)
    leadership.leader_address_of = lambda: contender.leader_address
    actor = MasterActor(
        state,
        registry,
        SystemClock(),
        allocation_interval_s=config.allocation_interval_s,
        heartbeat_interval_s=config.framework_heartbeat_interval_s,
        agent_ping_interval_s=config.agent_ping_interval_s,
    )
    admission.frameworks = FrameworkCount(
        lambda: len(state.frameworks), lambda fid: fid in state.frameworks
    )
    jobs = JobsRunner(actor, config)
    servers = _build_servers(server, actor, info, jobs, lambda: leadership.leading)
    if config.http_port >= 0:
        from mesoslite.master.http.server import MasterHttpServer
        from mesoslite.master.http.state_json import StateSource

        source = StateSource(actor, info, leadership, jobs)
        servers.http = MasterHttpServer(source, config.host, config.http_port)
    return Master(config, work_dir, info, leadership, actor, contender, servers, jobs, on_fenced)


def _bind(server: grpc.aio.Server, config: MasterConfig) -> tuple[str, int]:
    """Listen on `--host:--port`; returns the host to advertise and the port bound."""
    bind = f"{config.host}:{config.port}"
    port = add_port(server, bind)
    if not port:
        raise ConfigError(f"cannot listen on {bind}: address in use or not available")
    host = config.host if config.host not in ("0.0.0.0", "::", "") else socket.gethostname()
    return host, port


def _election(
    config: MasterConfig,
    info: MasterInfo,
    host: str,
    port: int,
    work_dir: Path,
    on_fenced: list[Callable[[str], None]],
) -> tuple[Contender, Registry]:
    """The contender and registry: ZooKeeper with `--zk`, else standalone with SQLite."""

    def fenced(reason: str) -> None:
        for callback in on_fenced:
            callback(reason)

    if config.zk:
        from mesoslite.discovery import parse_zk_url
        from mesoslite.master.election.zookeeper import ZooKeeperContender
        from mesoslite.master.registry.zookeeper import ZooKeeperRegistryStore

        url = parse_zk_url(config.zk)
        doc = {
            "id": info.id, "address": info.address, "host": host, "port": port,
            "version": __version__, "pid": os.getpid(),
        }
        contender = ZooKeeperContender(url, doc, session_timeout_s=config.zk_session_timeout_s)
        registry = ZooKeeperRegistryStore(
            contender, url, writer={"id": info.id, "address": info.address}, on_fenced=fenced
        )
        return contender, registry
    from mesoslite.master.election.standalone import StandaloneContender
    from mesoslite.master.registry.sqlite import SqliteRegistryStore

    return StandaloneContender(info.address), SqliteRegistryStore(work_dir / "registry.sqlite")


def _build_servers(
    server: grpc.aio.Server,
    actor: MasterActor,
    info: MasterInfo,
    jobs: JobsRunner,
    leading: Callable[[], bool],
) -> MasterServers:
    scheduler_pb2_grpc.add_SchedulerServicer_to_server(SchedulerServicer(actor, info), server)
    agent_pb2_grpc.add_AgentServicer_to_server(AgentServicer(actor, info), server)
    operator_pb2_grpc.add_OperatorServicer_to_server(OperatorServicer(actor, info), server)
    jobs_pb2_grpc.add_JobsServicer_to_server(JobsServicer(lambda: jobs.jobs), server)
    services = [
        m.DESCRIPTOR.services_by_name[n].full_name
        for m, n in (
            (scheduler_pb2, "Scheduler"), (agent_pb2, "Agent"),
            (operator_pb2, "Operator"), (jobs_pb2, "Jobs"),
        )
    ]
    return MasterServers(server, add_probe_services(server, services, leading))
