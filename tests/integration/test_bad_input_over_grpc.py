"""Every bad input of the foundation issue, sent over real gRPC to a real master with agents.

Each gets a clear error naming what is wrong, and the master's state (agents' used and
offered resources, frameworks, tasks) is exactly as it was before; the offer stays usable.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest

from mesoslite._proto.v1 import (
    agent_pb2,
    common_pb2,
    jobs_pb2,
    jobs_pb2_grpc,
    operator_pb2,
    operator_pb2_grpc,
    scheduler_pb2,
    scheduler_pb2_grpc,
)
from mesoslite.errors import (
    AlreadyExistsError,
    ConflictError,
    MesosliteError,
    NotFoundError,
    ValidationError,
)
from mesoslite.model import CommandSpec, TaskSpec
from mesoslite.resources import Resources, parse_resources
from mesoslite.scheduler_api import AgentId, FrameworkInfo, Offer, SchedulerDriver, TaskId
from mesoslite.testing import LocalCluster, assert_eventually_async

GOOD = parse_resources("cpus:0.1;mem:16")


@dataclass
class Holder:
    """A framework that keeps every offer it gets."""

    offers: dict[str, Offer] = field(default_factory=dict)

    def on_offers(self, driver: SchedulerDriver, offers: list[Offer]) -> None:
        self.offers.update({o.id: o for o in offers})

    def on_rescinded(self, driver: SchedulerDriver, offer_id: str) -> None:
        self.offers.pop(offer_id, None)


def snapshot(cluster: LocalCluster) -> Any:
    with cluster.client() as c:
        agents = sorted((a.id, str(a.used), str(a.offered), a.task_count) for a in c.agents())
        frameworks = sorted(
            (f.id, f.status, str(f.allocated), str(f.offered), f.task_count)
            for f in c.frameworks(include_completed=True)
        )
        tasks = sorted((t.id, t.state) for t in c.tasks(include_completed=True))
    return agents, frameworks, tasks


def _state_of(cluster: LocalCluster, task_id: str) -> str:
    with cluster.client() as c:
        return next((t.state for t in c.tasks() if t.id == task_id), "")


def task(
    task_id: str = "t1", resources: Resources = GOOD, command: str = "sleep 30", agent_id: str = ""
) -> TaskSpec:
    return TaskSpec(
        TaskId(task_id), CommandSpec.of_shell(command), resources, agent_id=AgentId(agent_id)
    )


@pytest.fixture
async def two(
    cluster: LocalCluster,
) -> AsyncIterator[tuple[SchedulerDriver, Holder, SchedulerDriver, Holder]]:
    """Frameworks A and B, each holding one agent's offer."""
    a, b = Holder(), Holder()
    da = SchedulerDriver(a, FrameworkInfo(name="a"), master=cluster.master_address)
    db = SchedulerDriver(b, FrameworkInfo(name="b"), master=cluster.master_address)
    await da.start()
    await assert_eventually_async(lambda: len(a.offers) == 2, timeout_s=10)
    await db.start()
    await db.wait_subscribed(10)
    # A gives one agent back for a minute, so B is offered it.
    await da.decline([a.offers.popitem()[0]], refuse_seconds=60)
    await assert_eventually_async(lambda: len(b.offers) == 1 and len(a.offers) == 1, timeout_s=10)
    try:
        yield da, a, db, b
    finally:
        await da.stop()
        await db.stop()


async def refused(cluster: LocalCluster, call: Any, error: type[MesosliteError], text: str) -> str:
    before = snapshot(cluster)
    with pytest.raises(error) as info:
        await call
    assert text in info.value.message, info.value.message
    assert snapshot(cluster) == before, "a refused call changed the master's state"
    return info.value.message


async def test_bad_inputs_are_refused_with_clear_errors_and_change_nothing(
    cluster: LocalCluster, two: tuple[SchedulerDriver, Holder, SchedulerDriver, Holder]
) -> None:
    da, a, db, b = two
    mine, theirs = next(iter(a.offers)), next(iter(b.offers))
    agent_of_mine = a.offers[mine].agent_id

    # An offer that is not yours.
    await refused(cluster, da.accept([theirs], [task()]), ConflictError, "is not yours")
    # An offer that never existed.
    await refused(cluster, da.accept(["of-never"], [task()]), NotFoundError, "not outstanding")
    # Asking for more than the offer holds.
    msg = await refused(
        cluster,
        da.accept([mine], [task(resources=parse_resources("cpus:100;mem:16"))]),
        ValidationError,
        "more than the offers hold",
    )
    assert "cpus" in msg
    # A duplicate task id within one call.
    await refused(cluster, da.accept([mine], [task("d"), task("d")]), ValidationError, "twice")
    # An empty command.
    await refused(
        cluster, da.accept([mine], [task(command="  ")]), ValidationError, "command is empty"
    )
    # An unknown agent id on the task.
    await refused(
        cluster, da.accept([mine], [task(agent_id="ag-nope")]), ValidationError, "ag-nope"
    )
    # A bad refuse_seconds.
    await refused(cluster, da.decline([mine], refuse_seconds=-1), ValidationError, "refuse_seconds")

    # The offer is still good after all that: launch t1 on it.
    await da.accept([mine], [task("t1")], refuse_seconds=0)
    del a.offers[mine]
    # Settled (RUNNING) before the next snapshots, which must see only refusals' effects.
    await assert_eventually_async(lambda: _state_of(cluster, "t1") == "TASK_RUNNING", timeout_s=20)
    await assert_eventually_async(lambda: len(a.offers) >= 1, timeout_s=10)
    again = next(o for o in a.offers.values() if o.agent_id == agent_of_mine)
    # A task id that already exists in the framework.
    await refused(
        cluster, da.accept([again.id], [task("t1")]), AlreadyExistsError, "already exists"
    )
    # An offer already used (by the accept of t1).
    await refused(cluster, da.accept([mine], [task("t2")]), NotFoundError, "not outstanding")


async def test_a_rescinded_offer_is_refused(tmp_path: Any) -> None:
    with LocalCluster(
        tmp_path / "c", agents=1, master_args=("--offer-timeout-s", "0.5")
    ) as cluster:
        holder = Holder()
        rescinded: list[str] = []
        holder.on_rescinded = lambda d, oid: rescinded.append(oid)  # type: ignore[method-assign]
        async with SchedulerDriver(
            holder, FrameworkInfo(name="r"), master=cluster.master_address
        ) as d:
            await assert_eventually_async(lambda: rescinded, timeout_s=10)
            with pytest.raises(NotFoundError, match="not outstanding"):
                await d.accept([rescinded[0]], [task("late")])
            with cluster.client() as c:
                assert [t.id for t in c.tasks(include_completed=True)] == []
                assert all(a.used.is_empty() for a in c.agents())


@pytest.mark.parametrize(
    ("scalar", "text"),
    [(-1.0, "cpus"), (float("nan"), "cpus"), (1e18, "cpus"), (float("inf"), "cpus")],
)
async def test_negative_nan_or_absurd_resources_are_refused(
    cluster: LocalCluster, scalar: float, text: str
) -> None:
    # Sent with raw stubs: our own `Resources` refuses to even build such values.
    holder = Holder()
    async with SchedulerDriver(
        holder, FrameworkInfo(name="raw"), master=cluster.master_address
    ) as d:
        await assert_eventually_async(lambda: len(holder.offers) == 2, timeout_s=10)
        offer_id = next(iter(holder.offers))
        before = snapshot(cluster)
        async with grpc.aio.insecure_channel(cluster.master_address) as ch:
            stub = scheduler_pb2_grpc.SchedulerStub(ch)
            info = scheduler_pb2.Operation.Launch(
                task_infos=[
                    {
                        "task_id": "bad",
                        "command": {"shell": True, "value": "true"},
                        "resources": [
                            {"name": "cpus", "kind": 1, "scalar": scalar},
                            {"name": "mem", "kind": 1, "scalar": 16},
                        ],
                    }
                ]
            )
            request = scheduler_pb2.AcceptRequest(
                framework_id=d.framework_id,
                offer_ids=[offer_id],
                operations=[
                    scheduler_pb2.Operation(type=scheduler_pb2.Operation.LAUNCH, launch=info)
                ],
            )
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.Accept(request)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert text in (err.value.details() or "")
        assert snapshot(cluster) == before


async def test_unknown_framework_id_is_refused(cluster: LocalCluster) -> None:
    before = snapshot(cluster)
    async with grpc.aio.insecure_channel(cluster.master_address) as ch:
        stub = scheduler_pb2_grpc.SchedulerStub(ch)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.Accept(scheduler_pb2.AcceptRequest(framework_id="fw-nope", offer_ids=["x"]))
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
        assert "fw-nope" in (err.value.details() or "")
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.Kill(scheduler_pb2.KillRequest(framework_id="", task_id="t"))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "framework_id" in (err.value.details() or "")
    assert snapshot(cluster) == before
    await asyncio.sleep(0)


# ---------------------------------------------------------------- issue 11 item 7

GARBAGE = b"\xff" * 16  # a truncated varint: no message decodes from it
SERVICES = [
    (scheduler_pb2, "Scheduler"),
    (operator_pb2, "Operator"),
    (jobs_pb2, "Jobs"),
    (agent_pb2, "Agent"),
]


def all_methods() -> list[tuple[str, bool, bool]]:
    out = []
    for module, name in SERVICES:
        service = module.DESCRIPTOR.services_by_name[name]
        for m in service.methods:
            out.append((f"/{service.full_name}/{m.name}", m.client_streaming, m.server_streaming))
    return out


async def call_raw(ch: grpc.aio.Channel, path: str, cs: bool, ss: bool, *msgs: bytes) -> None:
    """Send raw bytes (no serializer) as the request(s) of `path`, and read the whole reply."""

    async def requests() -> AsyncIterator[bytes]:
        for m in msgs:
            yield m

    if not cs and not ss:
        await ch.unary_unary(path)(msgs[0], timeout=10)
    elif not cs:
        async for _ in ch.unary_stream(path)(msgs[0], timeout=10):
            pass
    elif not ss:
        await ch.stream_unary(path)(requests(), timeout=10)
    else:
        async for _ in ch.stream_stream(path)(requests(), timeout=10):
            pass


def master_log(cluster: LocalCluster) -> str:
    return cluster.master_log.read_text(errors="replace")


async def test_undecodable_requests_to_every_service_get_invalid_argument_and_one_warning(
    cluster: LocalCluster,
) -> None:
    methods = all_methods()
    assert len(methods) >= 25
    before = snapshot(cluster)
    async with grpc.aio.insecure_channel(cluster.master_address) as ch:
        for path, cs, ss in methods:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await call_raw(ch, path, cs, ss, GARBAGE)
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (path, err.value)
            assert "not a valid protobuf message" in (err.value.details() or ""), path
    assert snapshot(cluster) == before
    log = master_log(cluster)
    assert "Traceback" not in log and "ERROR" not in log, log[-3000:]
    for path, _, _ in methods:
        assert log.count(f"undecodable request to {path} ") == 1, path


async def test_garbage_after_an_agents_register_message_is_refused_without_traceback(
    cluster: LocalCluster,
) -> None:
    register = agent_pb2.AgentMessage(
        register=agent_pb2.AgentMessage.Register(
            agent_info=common_pb2.AgentInfo(
                hostname="fake", resources=[common_pb2.Resource(name="cpus", kind=1, scalar=1)]
            )
        )
    ).SerializeToString()
    async with grpc.aio.insecure_channel(cluster.master_address) as ch:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call_raw(ch, "/mesoslite.v1.Agent/Connect", True, True, register, GARBAGE)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value
    log = master_log(cluster)
    assert "Traceback" not in log and "ERROR" not in log, log[-3000:]
    assert log.count("undecodable request to /mesoslite.v1.Agent/Connect ") == 1


def roles_and_jobs(cluster: LocalCluster) -> Any:
    with cluster.client() as c:
        roles = sorted((r.role, r.weight, str(r.guarantee)) for r in c.roles())
        jobs = sorted(j.name for j in c.jobs())
    return roles, jobs


async def refused_raw(cluster: LocalCluster, call: Any, field: str) -> str:
    """`call` (a coroutine of a raw stub call) gets INVALID_ARGUMENT naming `field`, and the
    master's agents, frameworks, tasks, roles and jobs are as they were."""
    before = snapshot(cluster), roles_and_jobs(cluster)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    details = err.value.details() or ""
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (field, err.value)
    assert details.startswith(field) or f" {field}" in details, (field, details)
    assert len(details) < 1000, "the bad value came back whole"
    assert (snapshot(cluster), roles_and_jobs(cluster)) == before
    return details


async def first_event(call: Any) -> Any:
    async for event in call:
        return event


def framework_info(**kw: Any) -> scheduler_pb2.SubscribeRequest:
    info = {"name": "raw", **kw}
    return scheduler_pb2.SubscribeRequest(framework_info=common_pb2.FrameworkInfo(**info))


BIG = "a" * 20_000


async def test_oversized_fields_are_refused_naming_the_field(cluster: LocalCluster) -> None:
    async with grpc.aio.insecure_channel(cluster.master_address) as ch:
        sched = scheduler_pb2_grpc.SchedulerStub(ch)
        op = operator_pb2_grpc.OperatorStub(ch)
        for field, kw in [
            ("framework_info.name", {"name": "n" * 256}),
            ("framework_info.id", {"id": "fw-x\n"}),
            ("framework_info.user", {"user": "u" * 33}),
            ("framework_info.hostname", {"hostname": BIG}),
            ("framework_info.principal", {"principal": BIG}),
            ("framework_info.role", {"role": "r" * 256}),
            ("framework_info.labels", {"labels": {"k": BIG}}),
            ("framework_info.labels", {"labels": {BIG: "v"}}),
            ("framework_info.failover_timeout_s", {"failover_timeout_s": float("inf")}),
        ]:
            await refused_raw(cluster, first_event(sched.Subscribe(framework_info(**kw))), field)
        fw = "fw-nope"
        await refused_raw(cluster, sched.Kill(scheduler_pb2.KillRequest(
            framework_id=fw, task_id=BIG)), "task_id")
        await refused_raw(cluster, sched.Kill(scheduler_pb2.KillRequest(
            framework_id=BIG, task_id="t")), "framework_id")
        await refused_raw(cluster, sched.Decline(scheduler_pb2.DeclineRequest(
            framework_id=fw, offer_ids=["of-1", BIG])), "offer_ids[1]")
        await refused_raw(cluster, sched.Revive(scheduler_pb2.ReviveRequest(
            framework_id=fw, roles=["r" * 300])), "roles[0]")
        ack = scheduler_pb2.Acknowledgement(agent_id="ag-1", task_id="t", uuid=b"u" * 1000)
        await refused_raw(cluster, sched.Acknowledge(scheduler_pb2.AcknowledgeRequest(
            framework_id=fw, acknowledgements=[ack])), "acknowledgements[0].uuid")
        await refused_raw(cluster, sched.Reconcile(scheduler_pb2.ReconcileRequest(
            framework_id=fw, tasks=[{"task_id": "t\n"}])), "tasks[0].task_id")
        demand = scheduler_pb2.Demand(count=2_000_000_000)
        await refused_raw(cluster, sched.Request(scheduler_pb2.RequestRequest(
            framework_id=fw, demands=[demand])), "demands[0].count")
        await refused_raw(
            cluster, op.KillTask(operator_pb2.KillTaskRequest(task_id=BIG)), "task_id"
        )
        await refused_raw(cluster, op.DrainAgent(operator_pb2.DrainAgentRequest(
            agent_id="ag-1\n")), "agent_id")
        await refused_raw(cluster, op.ReadFile(operator_pb2.ReadFileRequest(
            task_id="t", framework_id=BIG)), "framework_id")
        await refused_raw(cluster, op.SetQuota(operator_pb2.SetQuotaRequest(role=BIG)), "role")
    assert "Traceback" not in master_log(cluster)


async def test_a_1mb_role_name_to_set_role_weight_is_invalid_argument_and_not_listed(
    cluster: LocalCluster,
) -> None:
    # Issue 11 item 6: it was UNAVAILABLE from the registry's size check, and then listed.
    async with grpc.aio.insecure_channel(cluster.master_address) as ch:
        op = operator_pb2_grpc.OperatorStub(ch)
        request = operator_pb2.SetRoleWeightRequest(role="r" * (1024 * 1024), weight=2)
        details = await refused_raw(cluster, op.SetRoleWeight(request), "role")
        assert "at most 255 characters" in details


async def test_an_agent_registering_ports_beyond_65535_is_refused(cluster: LocalCluster) -> None:
    ports = common_pb2.Resource(
        name="ports", kind=common_pb2.Resource.RANGES,
        ranges=[common_pb2.Range(begin=0, end=2**64 - 1)],
    )
    cpus = common_pb2.Resource(name="cpus", kind=common_pb2.Resource.SCALAR, scalar=1)
    register = agent_pb2.AgentMessage(
        register=agent_pb2.AgentMessage.Register(
            agent_info=common_pb2.AgentInfo(hostname="fake", resources=[cpus, ports])
        )
    ).SerializeToString()
    async with grpc.aio.insecure_channel(cluster.master_address) as ch:
        call = call_raw(ch, "/mesoslite.v1.Agent/Connect", True, True, register)
        details = await refused_raw(cluster, call, "agent_info.resources.ports")
    assert "ends above 65535" in details


async def test_a_task_id_with_a_trailing_newline_is_refused(cluster: LocalCluster) -> None:
    holder = Holder()
    async with SchedulerDriver(
        holder, FrameworkInfo(name="nl"), master=cluster.master_address
    ) as d:
        await assert_eventually_async(lambda: len(holder.offers) == 2, timeout_s=10)
        offer_id = next(iter(holder.offers))
        async with grpc.aio.insecure_channel(cluster.master_address) as ch:
            stub = scheduler_pb2_grpc.SchedulerStub(ch)
            for task_id, field in [("fz-nl\n", "task_id"), ("x" * 256, "task_id")]:
                info = scheduler_pb2.Operation.Launch(task_infos=[{
                    "task_id": task_id, "command": {"shell": True, "value": "true"},
                    "resources": [{"name": "cpus", "kind": 1, "scalar": 0.1}],
                }])
                request = scheduler_pb2.AcceptRequest(
                    framework_id=d.framework_id, offer_ids=[offer_id],
                    operations=[
                        scheduler_pb2.Operation(type=scheduler_pb2.Operation.LAUNCH, launch=info)
                    ],
                )
                await refused_raw(cluster, stub.Accept(request), f"tasks[0].{field}")
    sandboxes = [p.name for w in cluster.agent_work_dirs for p in w.rglob("*nl*")]
    assert sandboxes == []


@pytest.mark.parametrize(
    ("spec", "text"),
    [
        ("name: deep\ntype: batch\ncommand: 'true'\nlabels: " + "[" * 5000 + "]" * 5000,
         "nested more than 64 levels deep"),
        ("name: big\ntype: batch\ncommand: 'true'\n#" + "x" * (1024 * 1024), "over the limit"),
    ],
    ids=["nested-5000-deep", "over-1MB"],
)
async def test_a_deep_or_huge_yaml_job_spec_is_refused_cleanly(
    cluster: LocalCluster, spec: str, text: str
) -> None:
    async with grpc.aio.insecure_channel(cluster.master_address) as ch:
        stub = jobs_pb2_grpc.JobsStub(ch)
        call = stub.Submit(jobs_pb2.SubmitJobRequest(spec_yaml=spec))
        details = await refused_raw(cluster, call, "")
    assert text in details
    assert "Traceback" not in master_log(cluster)
