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
from mesoslite.grpc_probes import (
    PROBE_METHOD_PREFIXES,
    OpenToProbes,
    ProbeHealth,
    add_probe_services,
)
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
from mesoslite.security.authz import Authorizer
from mesoslite.security.limits_interceptor import AdmissionGuard, AdmissionLimits, FrameworkCount
from mesoslite.transport import PLAIN, Security, add_port


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
    authz: Authorizer = field(default_factory=Authorizer)  # `--acls`; reloaded on SIGHUP


def build_master(config: MasterConfig) -> Master:
    """Build the master `config` describes. Raises `ConfigError` (bad allocator, port taken).

    The registry calls the functions in `Master.on_fenced` when another master took it over.
    """
    from mesoslite.tls_settings import master_security

    security = master_security(config)  # TLS, plain text off loopback, ZooKeeper auth
    work_dir = Path(config.work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    run_id = uuid.uuid4().hex[:8]
    state = _master_state(config, run_id)
    leadership = Leadership(f"master-{run_id}")
    authz, credentials, auth_guard = _auth(config)
    admission = AdmissionGuard(AdmissionLimits.of(config), SystemClock())
    # Order: who leads, who calls (UNAUTHENTICATED), can it decode, is the caller over a limit.
    guards = [OpenToProbes(LeaderGuard(leadership)), *auth_guard, DecodeGuard(), admission]
    server = grpc.aio.server(options=SERVER_OPTIONS, interceptors=guards)
    host, port = _bind(server, config, security)
    leadership.address = config.advertise_address or f"{host}:{port}"
    info = MasterInfo(
        id=leadership.master_id, address=leadership.address, version=__version__,
        started_at=time.time(),
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
    servers = _build_servers(server, actor, info, jobs, lambda: leadership.leading, authz)
    if config.http_port >= 0:
        from mesoslite.master.http.server import MasterHttpServer
        from mesoslite.master.http.state_json import StateSource
        from mesoslite.security.tls import server_ssl_context

        source = StateSource(actor, info, leadership, jobs)
        servers.http = MasterHttpServer(
            source, config.host, config.http_port, server_ssl_context(security)
        )
        servers.http.use_auth(credentials, authz)
    return Master(
        config, work_dir, info, leadership, actor, contender, servers, jobs, on_fenced, authz
    )


def _master_state(config: MasterConfig, run_id: str) -> MasterState:
    """The master's books and its allocator (a bad `--allocator` is a ConfigError here)."""
    allocator = load_allocator(
        config.allocator, parse_allocator_options(config.allocator_options, "--allocator-options")
    )
    return MasterState(
        allocator=allocator,
        offer_timeout_s=config.offer_timeout_s,
        agent_reregister_timeout_s=config.agent_reregister_timeout_s,
        agent_ping_timeout_s=config.agent_ping_timeout_s,
        max_agent_ping_timeouts=config.max_agent_ping_timeouts,
        seed=config.seed,
        run_id=run_id,
        preemption_grace_s=config.preemption_grace_s,
    )


def _auth(config: MasterConfig) -> tuple[Authorizer, Any, list[grpc.aio.ServerInterceptor]]:
    """`--credentials` and `--acls` (#14): the authorizer, the credentials (None: off) and
    the interceptor that authenticates every call when they are on."""
    authz = Authorizer(config.acls)
    if not config.credentials:
        return authz, None, []
    from mesoslite.security.auth_server import AuthGuard
    from mesoslite.security.credentials import load_credentials

    credentials = load_credentials(config.credentials)
    return authz, credentials, [AuthGuard(credentials, PROBE_METHOD_PREFIXES)]


def _bind(
    server: grpc.aio.Server, config: MasterConfig, security: Security = PLAIN
) -> tuple[str, int]:
    """Listen on `--host:--port`; returns the host to advertise and the port bound."""
    bind = f"{config.host}:{config.port}"
    port = add_port(server, bind, security)
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
        from mesoslite.security.zk_auth import read_zk_auth

        auth = read_zk_auth(config.zk_auth_file) if config.zk_auth_file else None
        contender = ZooKeeperContender(
            url, doc, session_timeout_s=config.zk_session_timeout_s, auth=auth
        )
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
    authz: Authorizer,
) -> MasterServers:
    scheduler_pb2_grpc.add_SchedulerServicer_to_server(
        SchedulerServicer(actor, info, authz), server
    )
    agent_pb2_grpc.add_AgentServicer_to_server(AgentServicer(actor, info, authz), server)
    operator_pb2_grpc.add_OperatorServicer_to_server(
        OperatorServicer(actor, info, authz), server
    )
    jobs_pb2_grpc.add_JobsServicer_to_server(JobsServicer(lambda: jobs.jobs, authz), server)
    services = [
        m.DESCRIPTOR.services_by_name[n].full_name
        for m, n in (
            (scheduler_pb2, "Scheduler"), (agent_pb2, "Agent"),
            (operator_pb2, "Operator"), (jobs_pb2, "Jobs"),
        )
    ]
    return MasterServers(server, add_probe_services(server, services, leading))
