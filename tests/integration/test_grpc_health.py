"""gRPC health checking and server reflection on every daemon (issue 13): grpc's own
reflection client lists each daemon's services, the health service answers SERVING on the
leader and a registered agent, NOT_SERVING on a standby."""

from __future__ import annotations

from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from mesoslite.testing import HACluster, assert_eventually, free_port

HEALTH = "grpc.health.v1.Health"
REFLECTION = "grpc.reflection.v1alpha.ServerReflection"
MASTER_SERVICES = {
    "mesoslite.v1.Scheduler", "mesoslite.v1.Agent", "mesoslite.v1.Operator",
    "mesoslite.v1.Jobs", HEALTH, REFLECTION,
}
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def services_of(address: str) -> set[str]:
    with grpc.insecure_channel(address) as channel:
        return set(ProtoReflectionDescriptorDatabase(channel).get_services())


def health_of(address: str, service: str = "") -> int:
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        return int(reply.status)


def test_every_daemon_serves_reflection_and_health_by_its_role(
    zk_url: str, tmp_path: Path
) -> None:
    agent_port = free_port()
    ha = HACluster(
        tmp_path / "ha", zk_url, masters=2, agents=1,
        agent_args=("--grpc-address", f"127.0.0.1:{agent_port}"),
    )
    with ha:
        leader = ha.wait_for_leader()
        standby = 1 - leader
        lead_addr, standby_addr = ha.addresses[leader], ha.addresses[standby]
        agent_addr = f"127.0.0.1:{agent_port}"

        # Reflection answers on every daemon, a standby's too (LeaderGuard lets it by).
        assert services_of(lead_addr) == MASTER_SERVICES
        assert services_of(standby_addr) == MASTER_SERVICES
        assert services_of(agent_addr) == {HEALTH, REFLECTION}
        # A descriptor of the master's API is there to be read (grpcurl needs it).
        with grpc.insecure_channel(lead_addr) as channel:
            db = ProtoReflectionDescriptorDatabase(channel)
            assert db.FindFileContainingSymbol("mesoslite.v1.Operator").name.endswith(
                "operator.proto"
            )

        for service in ("", "mesoslite.v1.Operator", "mesoslite.v1.Scheduler"):
            assert health_of(lead_addr, service) == SERVING, service
            assert health_of(standby_addr, service) == NOT_SERVING, service
        assert health_of(agent_addr) == SERVING

        # The standby takes over: it now answers SERVING.
        ha.kill_master(leader)
        ha.wait_for_leader(30.0, other_than=leader)
        assert_eventually(lambda: health_of(standby_addr) == SERVING, timeout_s=10)
        assert health_of(standby_addr, "mesoslite.v1.Jobs") == SERVING


def test_health_of_an_unknown_service_is_not_found(zk_url: str, tmp_path: Path) -> None:
    with HACluster(tmp_path / "ha", zk_url, masters=1, agents=0) as ha:
        address = ha.addresses[ha.wait_for_leader()]
        try:
            health_of(address, "no.such.Service")
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.NOT_FOUND
        else:
            raise AssertionError("an unknown service answered")


def test_an_agent_without_a_master_is_not_serving(tmp_path: Path) -> None:
    import subprocess
    import sys

    port = free_port()
    argv = [
        sys.executable, "-m", "mesoslite.agent.main", "--master", f"127.0.0.1:{free_port()}",
        "--work-dir", str(tmp_path / "agent"), "--resources", "cpus:1;mem:64;disk:10",
        "--grpc-address", f"127.0.0.1:{port}",
    ]
    with open(tmp_path / "agent.log", "wb") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    try:
        status = assert_eventually(
            lambda: _health_or_none(f"127.0.0.1:{port}"), timeout_s=15,
            retry_on=(AssertionError, grpc.RpcError),
        )
        assert status == NOT_SERVING
    finally:
        proc.kill()
        proc.wait(10)


def _health_or_none(address: str) -> int | None:
    try:
        return health_of(address) or None
    except grpc.RpcError:
        return None
