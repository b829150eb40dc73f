"""Issue #4, "a framework may hold several roles", through real daemons: an SDK framework
with roles [a, b] gets offers tagged with each role, launches in both, and the operator API
and `mesoslite role list` / `framework explain` show its allocation split per role. Bad roles
are refused with INVALID_ARGUMENT and change nothing."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import grpc
import pytest

from mesoslite._proto.v1 import common_pb2, scheduler_pb2, scheduler_pb2_grpc
from mesoslite.scheduler_api import (
    FrameworkInfo,
    SchedulerDriver,
    TaskState,
    parse_resources,
)
from mesoslite.testing import LocalCluster, assert_eventually_async

from .frameworks import OneTaskPerRole

TASK = parse_resources("cpus:1;mem:64")


def cli(cluster: LocalCluster, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mesoslite.cli", "--master", cluster.master_address, *args],
        capture_output=True, text=True, timeout=60,
    )


def test_a_framework_with_two_roles_launches_in_both_and_its_allocation_is_split_per_role(
    tmp_path: Path,
) -> None:
    with LocalCluster(
        tmp_path / "cluster", agents=2, agent_resources="cpus:2;mem:512;disk:100"
    ) as cluster:
        fw = OneTaskPerRole(TASK)

        async def run() -> str:
            info = FrameworkInfo(name="multi", roles=("a", "b"))
            async with SchedulerDriver(fw, info, master=cluster.master_address) as driver:
                await assert_eventually_async(
                    lambda: [fw.states.get(f"in-{r}") for r in "ab"]
                    == [TaskState.RUNNING, TaskState.RUNNING],
                    timeout_s=30,
                )
                # Suppressing role a leaves it subscribed and offered in b only.
                await driver.suppress(roles=["a"])
                fid = str(driver.framework_id)
                listed = await asyncio.to_thread(cli, cluster, "role", "list", "--json")
                assert listed.returncode == 0, listed.stderr
                roles = {r["role"]: r for r in json.loads(listed.stdout)}
                # Each role holds exactly its one task (the rest was declined).
                assert roles["a"]["allocated"] == {"cpus": 1.0, "mem": 64.0}
                assert roles["b"]["allocated"] == {"cpus": 1.0, "mem": 64.0}
                assert roles["a"]["framework_count"] == roles["b"]["framework_count"] == 1
                explained = await asyncio.to_thread(
                    cli, cluster, "framework", "explain", fid, "--json"
                )
                assert explained.returncode == 0, explained.stderr
                e = json.loads(explained.stdout)
                assert e["role"] == "a,b"
                per_role = {r["role"]: r for r in e["roles"]}
                assert per_role["a"]["allocated"] == {"cpus": 1.0, "mem": 64.0}
                assert per_role["a"]["suppressed"] and not per_role["b"]["suppressed"]
                table = await asyncio.to_thread(cli, cluster, "framework", "explain", fid)
                assert "in role a" in table.stdout and "in role b" in table.stdout
                frameworks = await asyncio.to_thread(
                    cli, cluster, "framework", "list", "--json"
                )
                mine = [f for f in json.loads(frameworks.stdout) if f["id"] == fid]
                assert mine[0]["roles"] == ["a", "b"] and mine[0]["role"] == "a,b"
                return fid

        asyncio.run(run())
        assert {"a", "b"} <= set(fw.offer_roles)
        assert set(fw.offer_roles) <= {"a", "b"}
        with cluster.client() as client:
            tasks = {t.id: t for t in client.tasks(include_completed=True)}
        assert set(fw.launched.values()) <= set(tasks)


@pytest.mark.parametrize(
    ("role", "roles", "text"),
    [
        ("", ["a", "a"], "appears twice"),
        ("", ["a", "Not A Role"], "framework_info.roles[1]"),
        ("a", ["a", "b"], "must be empty when roles is given"),
    ],
)
async def test_bad_roles_are_refused_with_invalid_argument_and_change_nothing(
    cluster: LocalCluster, role: str, roles: list[str], text: str
) -> None:
    with cluster.client() as c:
        before = sorted(f.id for f in c.frameworks(include_completed=True))
    async with grpc.aio.insecure_channel(cluster.master_address) as ch:
        stub = scheduler_pb2_grpc.SchedulerStub(ch)
        info = common_pb2.FrameworkInfo(name="bad", role=role, roles=roles)
        call = stub.Subscribe(scheduler_pb2.SubscribeRequest(framework_info=info))
        with pytest.raises(grpc.aio.AioRpcError) as err:
            async for _ in call:
                pass
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert text in (err.value.details() or "")
    with cluster.client() as c:
        assert sorted(f.id for f in c.frameworks(include_completed=True)) == before
