"""Authentication and ACLs on a real cluster (issue 14): a master with `--credentials` and
`--acls`, an agent that authenticates, frameworks (the SDK), the CLI and HTTP as clients.

Each refusal is checked for its status, its reason (the rule, or `default: ...`), and that
it changed nothing: the state fingerprint (frameworks, tasks, roles, jobs as the master
shows them, and every registry row) is the same before and after.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from mesoslite._proto.v1 import (
    jobs_pb2,
    jobs_pb2_grpc,
    operator_pb2,
    operator_pb2_grpc,
    scheduler_pb2,
    scheduler_pb2_grpc,
)
from mesoslite.errors import PermissionDeniedError, UnauthenticatedError
from mesoslite.scheduler_api import (
    CommandSpec,
    FrameworkInfo,
    SchedulerDriver,
    TaskId,
    TaskSpec,
    TaskState,
    parse_resources,
)
from mesoslite.security.credentials import hash_secret
from mesoslite.testing import LocalCluster, assert_eventually, assert_eventually_async
from mesoslite.transport import Security, open_channel, use_client_credentials

from .frameworks import SMALL_TASK, OneTask

SECRETS = {
    "alice": "alice-secret-4f1e", "bob": "bob-secret-9a7c",
    "ops": "ops-secret-2b8d", "agent": "agent-secret-77e0",
}
ACLS = """\
rules:
  - name: no-prod-for-alice
    principals: [alice]
    actions: [register_framework, submit_job]
    objects: [prod, prod/*]
    effect: deny
  - name: ops-operate
    principals: [ops]
    actions: [set_weight, set_quota, set_priority, drain_agent, mark_agent_gone, kill_task,
              kill_job, read_files, teardown_framework]
    effect: allow
"""
JOB = "name: {name}\ntype: batch\ncommand: sleep 60\nresources: {{cpus: 0.1, mem: 16}}\n"


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("auth")
    lines = [f"{p}: {hash_secret(s)}" for p, s in SECRETS.items()]
    (d / "credentials.yaml").write_text("\n".join(lines) + "\n")
    (d / "acls.yaml").write_text(ACLS)
    for p, s in SECRETS.items():
        (d / f"{p}.secret").write_text(s + "\n")
    return d


@pytest.fixture(scope="module")
def cluster(files: Path) -> Iterator[LocalCluster]:
    # This process's own polling (is the agent active?) goes as `ops`.
    use_client_credentials("ops", SECRETS["ops"])
    try:
        with LocalCluster(
            files / "cluster", agents=1,
            master_args=["--credentials", str(files / "credentials.yaml"),
                         "--acls", str(files / "acls.yaml")],
            agent_args=["--principal", "agent", "--secret-file", str(files / "agent.secret")],
        ) as c:
            yield c
    finally:
        use_client_credentials("", "")


def channel(cluster: LocalCluster, principal: str | None = None, secret: str = "") -> Any:
    """A blocking channel presenting `principal` (its own secret unless given), or nothing."""
    if principal is None:
        return grpc.insecure_channel(cluster.master_address)
    security = Security(principal=principal, secret=secret or SECRETS[principal])
    return open_channel(cluster.master_address, security, aio=False)


def operator(ch: Any) -> Any:
    return operator_pb2_grpc.OperatorStub(ch)


def registry_rows(cluster: LocalCluster) -> dict[tuple[str, str], str]:
    path = cluster.work_dir / "master" / "registry.sqlite"
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT kind, key, doc FROM objects").fetchall()
    finally:
        conn.close()
    return {(k, key): hashlib.sha256(doc if isinstance(doc, bytes) else doc.encode())
            .hexdigest() for k, key, doc in rows}


def fingerprint(cluster: LocalCluster) -> tuple[Any, ...]:
    """What the master holds, as `ops` reads it, and every registry row."""
    with channel(cluster, "ops") as ch:
        op = operator(ch)
        frameworks = op.GetFrameworks(operator_pb2.GetFrameworksRequest(include_completed=True))
        tasks = op.GetTasks(operator_pb2.GetTasksRequest(include_completed=True))
        roles = op.GetRoles(operator_pb2.GetRolesRequest())
        jobs = jobs_pb2_grpc.JobsStub(ch).List(jobs_pb2.ListJobsRequest())
    views = [m.SerializeToString(deterministic=True) for m in (frameworks, tasks, roles, jobs)]
    return (*views, registry_rows(cluster))


def settled_fingerprint(cluster: LocalCluster) -> tuple[Any, ...]:
    """The fingerprint once two reads 0.3 s apart agree (bounded): a fresh agent's record
    is written again just after it registers."""
    before = fingerprint(cluster)
    for _ in range(20):
        time.sleep(0.3)
        again = fingerprint(cluster)
        if again == before:
            return again
        before = again
    raise AssertionError("the cluster's state did not settle in 6 s")


def code_and_details(call: Any) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value.code(), info.value.details()


# ---------------------------------------------------------------------------- authentication


def test_calls_without_or_with_a_wrong_secret_are_unauthenticated_and_change_nothing(
    cluster: LocalCluster,
) -> None:
    before = settled_fingerprint(cluster)
    weight = operator_pb2.SetRoleWeightRequest(role="eng", weight=5)
    subscribe = scheduler_pb2.SubscribeRequest(
        framework_info=scheduler_pb2.SubscribeRequest().framework_info
    )
    subscribe.framework_info.name = "intruder"
    for ch, words in (
        (channel(cluster), "authentication required"),
        (channel(cluster, "ops", "not-the-secret"), "invalid credentials for principal 'ops'"),
        (channel(cluster, "nobody", "x"), "invalid credentials for principal 'nobody'"),
    ):
        with ch:
            code, details = code_and_details(lambda ch=ch: operator(ch).SetRoleWeight(weight))
            assert code == grpc.StatusCode.UNAUTHENTICATED and words in details
            stream = scheduler_pb2_grpc.SchedulerStub(ch).Subscribe(subscribe, timeout=10)
            code, details = code_and_details(lambda stream=stream: next(iter(stream)))
            assert code == grpc.StatusCode.UNAUTHENTICATED and words in details
    assert fingerprint(cluster) == before


def test_health_stays_open_without_credentials(cluster: LocalCluster) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with channel(cluster) as ch:
        reply = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest())
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_a_framework_with_the_right_secret_runs_a_task_end_to_end(
    cluster: LocalCluster,
) -> None:
    framework = OneTask("echo hello")
    info = FrameworkInfo(name="alice-fw", principal="alice")
    async with SchedulerDriver(
        framework, info, master=cluster.master_address, secret=SECRETS["alice"]
    ):
        await assert_eventually_async(
            lambda: framework.state() == TaskState.FINISHED, timeout_s=30
        )
    with channel(cluster, "ops") as ch:
        frameworks = operator(ch).GetFrameworks(
            operator_pb2.GetFrameworksRequest(include_completed=True)
        ).frameworks
    owners = {f.framework_info.name: f.framework_info.principal for f in frameworks}
    assert owners["alice-fw"] == "alice"  # the owner is recorded


async def test_a_framework_with_a_wrong_secret_is_refused(cluster: LocalCluster) -> None:
    before = settled_fingerprint(cluster)
    driver = SchedulerDriver(
        OneTask("true"), FrameworkInfo(name="bad", principal="alice"),
        master=cluster.master_address, secret="wrong", connect_timeout_s=10,
    )
    with pytest.raises(UnauthenticatedError, match="invalid credentials"):
        async with driver:
            await asyncio.wait_for(driver.join(), 15)
    assert fingerprint(cluster) == before


def test_an_agent_without_credentials_cannot_register(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    with channel(cluster, "ops") as ch:
        agents_before = len(operator(ch).GetAgents(operator_pb2.GetAgentsRequest()).agents)
    log = tmp_path / "agent.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mesoslite.agent.main", "--master", cluster.master_address,
             "--work-dir", str(tmp_path / "work"), "--http-port", "-1",
             "--resources", "cpus:1;mem:64"],
            stdout=out, stderr=subprocess.STDOUT,
        )
    try:
        assert_eventually(lambda: "authentication required" in log.read_text(), timeout_s=20)
        with channel(cluster, "ops") as ch:
            agents = operator(ch).GetAgents(operator_pb2.GetAgentsRequest()).agents
        assert len(agents) == agents_before  # never admitted, so never offered nor given tasks
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


# ---------------------------------------------------------------------------- ACLs


async def test_a_principal_cannot_register_in_a_forbidden_role(cluster: LocalCluster) -> None:
    before = settled_fingerprint(cluster)
    driver = SchedulerDriver(
        OneTask("true"), FrameworkInfo(name="prod-fw", role="prod", principal="alice"),
        master=cluster.master_address, secret=SECRETS["alice"], connect_timeout_s=10,
    )
    with pytest.raises(PermissionDeniedError) as info:
        async with driver:
            await asyncio.wait_for(driver.join(), 15)
    assert info.value.message == (
        "principal 'alice' may not register_framework 'prod': rule 'no-prod-for-alice'"
    )
    assert fingerprint(cluster) == before


class RootTask(OneTask):
    """Tries to launch its task as root; records the refusal."""

    def __init__(self) -> None:
        super().__init__("id -u")
        self.task = TaskSpec(
            TaskId("as-root"), CommandSpec.of_shell("id -u", user="root"),
            parse_resources(SMALL_TASK),
        )
        self.refused: list[Exception] = []

    async def on_offers(self, driver: SchedulerDriver, offers: list[Any]) -> None:
        if self.launched:
            await driver.decline([o.id for o in offers], refuse_seconds=60)
            return
        self.launched = True
        try:
            await driver.accept([offers[0].id], [self.task])
        except PermissionDeniedError as e:
            self.refused.append(e)


async def test_a_principal_cannot_run_a_task_as_root(cluster: LocalCluster) -> None:
    framework = RootTask()
    async with SchedulerDriver(
        framework, FrameworkInfo(name="root-fw", principal="alice"),
        master=cluster.master_address, secret=SECRETS["alice"],
    ) as driver:
        await assert_eventually_async(lambda: bool(framework.refused), timeout_s=20)
        tasks_of = {driver.framework_id}
    assert str(framework.refused[0]) == (
        "principal 'alice' may not run_as 'root': default: running as root needs an "
        "explicit rule"
    )
    assert framework.updates == []  # nothing launched
    with channel(cluster, "ops") as ch:
        tasks = operator(ch).GetTasks(operator_pb2.GetTasksRequest(include_completed=True))
    assert not [t for t in tasks.tasks if t.framework_id in tasks_of]


async def test_a_principal_cannot_kill_anothers_task(cluster: LocalCluster) -> None:
    framework = OneTask("sleep 60", task_id="alice-sleeps")
    async with SchedulerDriver(
        framework, FrameworkInfo(name="alice-long", principal="alice"),
        master=cluster.master_address, secret=SECRETS["alice"],
    ) as driver:
        await assert_eventually_async(
            lambda: framework.state() == TaskState.RUNNING, timeout_s=30
        )
        fid = driver.framework_id
        before = settled_fingerprint(cluster)
        kill = operator_pb2.KillTaskRequest(task_id="alice-sleeps", framework_id=fid)
        with channel(cluster, "bob") as ch:
            code, details = code_and_details(lambda: operator(ch).KillTask(kill))
            assert code == grpc.StatusCode.PERMISSION_DENIED
            assert details == (
                "principal 'bob' may not kill_task 'alice': default: a principal may act "
                "only on its own frameworks, tasks and jobs"
            )
            # Nor through the scheduler API, naming alice's framework.
            sched = scheduler_pb2_grpc.SchedulerStub(ch)
            code, _ = code_and_details(lambda: sched.Kill(
                scheduler_pb2.KillRequest(framework_id=fid, task_id="alice-sleeps")
            ))
            assert code == grpc.StatusCode.PERMISSION_DENIED
            code, details = code_and_details(lambda: sched.Teardown(
                scheduler_pb2.TeardownRequest(framework_id=fid)
            ))
            assert code == grpc.StatusCode.PERMISSION_DENIED and "teardown_framework" in details
        assert fingerprint(cluster) == before
        with channel(cluster, "ops") as ch:  # a rule lets ops do it
            operator(ch).KillTask(kill)
        await assert_eventually_async(
            lambda: framework.state() == TaskState.KILLED, timeout_s=30
        )


def cli(files: Path, principal: str, *args: str, stdin: str = "",
        master: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MESOSLITE_PRINCIPAL": principal,
           "MESOSLITE_SECRET_FILE": str(files / f"{principal}.secret")}
    return subprocess.run(
        [sys.executable, "-m", "mesoslite.cli", "--master", master, *args],
        capture_output=True, text=True, timeout=60, input=stdin, env=env,
    )


def test_a_principal_cannot_kill_anothers_job(cluster: LocalCluster, files: Path) -> None:
    addr = cluster.master_address
    done = cli(files, "alice", "job", "submit", "-", stdin=JOB.format(name="alices-job"),
               master=addr)
    assert done.returncode == 0, done.stderr
    before = settled_fingerprint(cluster)
    refused = cli(files, "bob", "job", "kill", "alices-job", master=addr)
    assert refused.returncode == 77, refused.stderr
    assert "principal 'bob' may not kill_job 'alice': default:" in refused.stderr
    assert fingerprint(cluster) == before
    status = json.loads(cli(files, "alice", "job", "status", "alices-job", "--json",
                            master=addr).stdout)
    assert status["state"] not in ("KILLED", "FAILED")
    assert cli(files, "alice", "job", "kill", "alices-job", master=addr).returncode == 0


def test_operator_actions_need_a_rule(cluster: LocalCluster) -> None:
    before = settled_fingerprint(cluster)
    with channel(cluster, "alice") as ch:
        code, details = code_and_details(lambda: operator(ch).SetRoleWeight(
            operator_pb2.SetRoleWeightRequest(role="eng", weight=3)
        ))
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert details.endswith("default: operator actions need an explicit rule")
    assert fingerprint(cluster) == before
    with channel(cluster, "ops") as ch:
        operator(ch).SetRoleWeight(operator_pb2.SetRoleWeightRequest(role="eng", weight=3))


def test_sighup_reloads_the_acls_and_a_bad_file_keeps_them(
    cluster: LocalCluster, files: Path
) -> None:
    acls, pid = files / "acls.yaml", cluster.master_pid
    assert pid is not None
    deny_bob = "  - {name: bob-reads-nothing, principals: [bob], actions: [read_state], " \
               "effect: deny}\n"
    agents = operator_pb2.GetAgentsRequest()

    def bob_reads() -> str:
        with channel(cluster, "bob") as ch:
            try:
                operator(ch).GetAgents(agents)
            except grpc.RpcError as e:
                return f"{e.code().name}: {e.details()}"
        return "OK"

    def reloads(word: str) -> int:
        return cluster.master_log.read_text().count(word)

    assert bob_reads() == "OK"
    try:
        acls.write_text(ACLS + deny_bob)
        good, bad = reloads("acls reloaded"), reloads("acls reload failed")
        os.kill(pid, signal.SIGHUP)
        assert_eventually(lambda: reloads("acls reloaded") > good, timeout_s=10)
        denied = "PERMISSION_DENIED: principal 'bob' may not read_state: rule 'bob-reads-nothing'"
        assert bob_reads() == denied
        acls.write_text(ACLS + "  - {name: broken, principals: [bob], actions: [fly]}\n")
        os.kill(pid, signal.SIGHUP)
        assert_eventually(lambda: reloads("acls reload failed") > bad, timeout_s=10)
        assert "unknown action 'fly'" in cluster.master_log.read_text()
        assert bob_reads() == denied  # the rules in force were kept
    finally:
        acls.write_text(ACLS)
        good = reloads("acls reloaded")
        os.kill(pid, signal.SIGHUP)
        assert_eventually(lambda: reloads("acls reloaded") > good, timeout_s=10)
    assert bob_reads() == "OK"


# ---------------------------------------------------------------------------- HTTP, secrets


def http_get(url: str, principal: str | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url)
    if principal is not None:
        token = base64.b64encode(f"{principal}:{SECRETS[principal]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_http_needs_basic_auth_but_health(cluster: LocalCluster) -> None:
    base = cluster.http_url()
    status, text = http_get(base + "state")
    assert status == 401 and "authentication required" in text
    assert http_get(base + "state", "alice")[0] == 200
    assert http_get(base + "health")[0] == 200
    with_wrong = urllib.request.Request(base + "metrics", headers={
        "Authorization": "Basic " + base64.b64encode(b"alice:nope").decode()
    })
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(with_wrong, timeout=10)
    assert info.value.code == 401


def test_secrets_never_appear_in_logs_state_or_registry(
    cluster: LocalCluster, files: Path
) -> None:
    # Last in this module: the tests above made every kind of call, good and bad.
    status, state = http_get(cluster.http_url() + "state", "ops")
    assert status == 200
    path = cluster.work_dir / "master" / "registry.sqlite"
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        registry = repr(conn.execute("SELECT * FROM objects").fetchall())
    finally:
        conn.close()
    printed = subprocess.run(
        [sys.executable, "-m", "mesoslite.agent.main", "--principal", "agent",
         "--secret-file", str(files / "agent.secret"), "--print-config"],
        capture_output=True, text=True, timeout=30,
    ).stdout
    texts = {"state": state, "registry": registry, "print-config": printed,
             "master log": cluster.master_log.read_text(),
             **{str(p): p.read_text() for p in cluster.agent_logs}}
    for where, text in texts.items():
        for secret in SECRETS.values():
            assert secret not in text, f"a secret in {where}"


def test_the_run_fast_path_refuses_while_authentication_is_on(
    cluster: LocalCluster, files: Path
) -> None:
    # POST /run skips the scheduler API's role and run_as checks, so even an authenticated
    # principal is refused there (403) and nothing runs; `mesoslite run` then falls back to
    # the gRPC path, where the ACLs apply, and still works.
    before = settled_fingerprint(cluster)
    token = base64.b64encode(f"alice:{SECRETS['alice']}".encode()).decode()
    body = json.dumps({"argv": ["id", "-u"], "user": "root"}).encode()
    request = urllib.request.Request(
        cluster.http_url() + "run", data=body, method="POST",
        headers={"Authorization": f"Basic {token}", "Content-Type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=10)
    assert info.value.code == 403 and "authentication is on" in info.value.read().decode()
    assert fingerprint(cluster) == before
    exe = Path(sys.executable).with_name("mesoslite")
    env = {**os.environ, "MESOSLITE_MASTER": cluster.master_address,
           "MESOSLITE_PRINCIPAL": "alice", "MESOSLITE_SECRET_FILE": str(files / "alice.secret")}
    done = subprocess.run(
        [str(exe), "run", "--user", "nobody", "--", "echo", "ran"],
        capture_output=True, text=True, timeout=60, env=env,
    )
    assert (done.returncode, done.stdout) == (0, "ran\n"), done.stderr
