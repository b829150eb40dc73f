"""TLS on a real cluster (issue 14): a master and an agent with mutual TLS from a CA made in
the test; clients with the right certificate work, anything else is refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from mesoslite._proto.v1 import operator_pb2, operator_pb2_grpc
from mesoslite.errors import UnavailableError
from mesoslite.scheduler_api import FrameworkInfo, SchedulerDriver, TaskState
from mesoslite.security.tls import client_ssl_context
from mesoslite.security.tls_certs import make_tls_dir
from mesoslite.testing import LocalCluster, assert_eventually, assert_eventually_async
from mesoslite.transport import PLAIN, Security, open_channel

from .frameworks import OneTask


@pytest.fixture(scope="module")
def tls_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """One master and one agent, every daemon with TLS (mutual TLS for agents and clients)."""
    with LocalCluster(tmp_path_factory.mktemp("tls"), agents=1, tls=True) as c:
        yield c


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory: pytest.TempPathFactory) -> Security:
    """A client certificate (and its CA) from a CA the cluster does not trust."""
    files = make_tls_dir(tmp_path_factory.mktemp("other-ca"))
    return Security(
        tls_ca=str(files.ca), tls_cert=str(files.client_cert), tls_key=str(files.client_key)
    )


def get_agents(address: str, security: Security) -> int:
    """How many agents the master reports, asked over a channel with `security`."""
    with open_channel(address, security, aio=False) as ch:
        reply = operator_pb2_grpc.OperatorStub(ch).GetAgents(
            operator_pb2.GetAgentsRequest(), timeout=5
        )
    return len(reply.agents)


async def test_a_framework_with_the_right_ca_and_certificate_runs_a_task_end_to_end(
    tls_cluster: LocalCluster,
) -> None:
    fw = OneTask("echo over-tls")
    async with SchedulerDriver(
        fw, FrameworkInfo(name="tls"), master=tls_cluster.master_address,
        security=tls_cluster.security, connect_timeout_s=10,
    ):
        await assert_eventually_async(lambda: fw.state() == TaskState.FINISHED, timeout_s=20)


def test_the_cli_with_the_printed_env_runs_a_task_and_without_it_is_refused(
    tls_cluster: LocalCluster,
) -> None:
    cmd = [sys.executable, "-m", "mesoslite.cli", "run", "--", "echo", "hello-tls"]
    ok = subprocess.run(cmd, env=tls_cluster.cli_env(), capture_output=True, text=True,
                        timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert "hello-tls" in ok.stdout
    plain_env = {k: v for k, v in tls_cluster.cli_env().items()
                 if not k.startswith("MESOSLITE_TLS_")}
    refused = subprocess.run(
        [sys.executable, "-m", "mesoslite.cli", "agent", "list"], env=plain_env,
        capture_output=True, text=True, timeout=60,
    )
    assert refused.returncode == 69, refused.stderr  # EXIT_UNAVAILABLE


def test_a_client_from_another_ca_without_a_certificate_or_in_plain_text_is_refused(
    tls_cluster: LocalCluster, other_ca: Security,
) -> None:
    address, good = tls_cluster.master_address, tls_cluster.security
    assert get_agents(address, good) == 1  # the right CA and certificate: answered
    refused = {
        "a certificate from another CA": Security(
            tls_ca=good.tls_ca, tls_cert=other_ca.tls_cert, tls_key=other_ca.tls_key
        ),
        "trusting another CA": other_ca,
        "no client certificate": Security(tls_ca=good.tls_ca),
        "plain text": PLAIN,
    }
    for what, security in refused.items():
        with pytest.raises(grpc.RpcError) as info:
            get_agents(address, security)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE, what
    # The CLI's client says the master cannot be reached, as for any refused connection.
    from mesoslite.cli._client import BlockingOperatorClient

    with pytest.raises(UnavailableError):
        with BlockingOperatorClient(address, timeout_s=3, security=other_ca) as c:
            c.agents()


def _start_agent(cluster: LocalCluster, work: Path, security: Security) -> subprocess.Popen[str]:
    args = ["--tls-ca", security.tls_ca]
    if security.tls_cert:
        args += ["--tls-cert", security.tls_cert, "--tls-key", security.tls_key]
    log = (work.parent / f"{work.name}.log").open("w")
    return subprocess.Popen(
        [sys.executable, "-m", "mesoslite.agent.main", "--master", cluster.master_address,
         "--work-dir", str(work), "--http-port", "-1", "--resources", "cpus:4;mem:4096",
         "--reconnect-backoff-max-s", "0.2", *args],
        stdout=log, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


@pytest.mark.parametrize("which", ["another CA's certificate", "no certificate"])
async def test_an_agent_without_a_valid_certificate_cannot_register_and_gets_no_task(
    tls_cluster: LocalCluster, other_ca: Security, tmp_path: Path, which: str,
) -> None:
    good = tls_cluster.security
    security = (
        Security(tls_ca=good.tls_ca, tls_cert=other_ca.tls_cert, tls_key=other_ca.tls_key)
        if which == "another CA's certificate" else Security(tls_ca=good.tls_ca)
    )
    work = tmp_path / "bad-agent"
    agent = _start_agent(tls_cluster, work, security)
    try:
        log = tmp_path / "bad-agent.log"
        assert_eventually(
            lambda: log.read_text().count("register with the master") >= 1, timeout_s=20
        )
        assert agent.poll() is None  # it keeps trying: refused, not crashed
        with tls_cluster.client() as c:
            assert [a.id for a in c.agents()] == tls_cluster.agent_ids
        fw = OneTask("true", task_id=f"while-{which.split()[0]}")
        async with SchedulerDriver(
            fw, FrameworkInfo(name="tls-agent"), master=tls_cluster.master_address,
            security=good, connect_timeout_s=10,
        ):
            await assert_eventually_async(lambda: fw.state() == TaskState.FINISHED, timeout_s=20)
        assert {u.agent_id for u in fw.updates} == set(tls_cluster.agent_ids)
        assert not list(work.glob("sandboxes/*"))  # the refused agent ran nothing
    finally:
        agent.terminate()
        agent.wait(timeout=10)


def test_state_over_https_works_and_plain_http_fails(tls_cluster: LocalCluster) -> None:
    url = tls_cluster.http_url()
    assert url.startswith("https://")
    ctx = client_ssl_context(tls_cluster.security)
    with urllib.request.urlopen(url + "state", context=ctx, timeout=5) as reply:
        doc = json.load(reply)
    assert len(doc["agents"]) == 1
    with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
        urllib.request.urlopen("http://" + url.removeprefix("https://") + "state", timeout=5)


def test_the_agent_serves_its_probes_and_metrics_over_tls(tls_cluster: LocalCluster) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    log = tls_cluster.agent_logs[0].read_text()
    grpc_address = log.split("grpc=", 1)[1].split()[0]
    with open_channel(grpc_address, tls_cluster.security, aio=False) as ch:
        reply = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    with open_channel(grpc_address, PLAIN, aio=False) as ch, pytest.raises(grpc.RpcError):
        health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=5)
    port = json.loads((Path(tls_cluster.agent_work_dirs[0]) / "http.json").read_text())["port"]
    ctx = client_ssl_context(tls_cluster.security)
    with urllib.request.urlopen(f"https://127.0.0.1:{port}/health", context=ctx, timeout=5) as r:
        assert r.read() == b"registered\n"
