"""The master's checks of what frameworks and agents send: every string bounded, every number
in range, ids in full; each failure names the field (issue 11 items 6 and 7)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from mesoslite import convert
from mesoslite._proto.v1 import common_pb2 as pb
from mesoslite.errors import ValidationError
from mesoslite.ids import AgentId, FrameworkId, TaskId
from mesoslite.master.validation import check_agent_info, check_framework_info, check_tasks
from mesoslite.model import AgentInfo, CommandSpec, FrameworkInfo, HealthCheckSpec, TaskSpec
from mesoslite.resources import parse_resources

BIG = "x" * 200_000  # over every length limit, the 128 KB command too
AGENT = AgentInfo(hostname="h1", resources=parse_resources("cpus:1;mem:64;ports:[31000-32000]"))
FRAMEWORK = FrameworkInfo(name="fw")
TASK = TaskSpec(TaskId("t1"), CommandSpec.of_shell("true"), parse_resources("cpus:0.1"))


def refused(check: Any, value: Any, field: str) -> str:
    with pytest.raises(ValidationError) as err:
        check(value)
    assert err.value.field == field, err.value
    assert len(err.value.message) < 500, "the bad value came back whole"
    return err.value.message


def test_good_values_pass() -> None:
    check_agent_info(AGENT)
    check_framework_info(FRAMEWORK)
    check_tasks([TASK])


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": "n" * 256}, "framework_info.name"),
        ({"id": FrameworkId("fw-1\n")}, "framework_info.id"),
        ({"user": "u" * 33}, "framework_info.user"),
        ({"hostname": BIG}, "framework_info.hostname"),
        ({"principal": BIG}, "framework_info.principal"),
        ({"labels": {"k": BIG}}, "framework_info.labels['k']"),
        ({"labels": {BIG: ""}}, "framework_info.labels key"),
        ({"role": "eng\n"}, "framework_info.role"),
        ({"roles": ("a", "b" * 256)}, "framework_info.roles[1]"),
        ({"failover_timeout_s": float("nan")}, "framework_info.failover_timeout_s"),
    ],
)
def test_bad_framework_info_is_refused_naming_the_field(change: dict[str, Any], field: str) -> None:
    refused(check_framework_info, replace(FRAMEWORK, **change), field)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"hostname": "h" * 254}, "agent_info.hostname"),
        ({"id": AgentId("ag-1\n")}, "agent_info.id"),
        ({"version": BIG}, "agent_info.version"),
        ({"address": BIG}, "agent_info.address"),
        ({"attributes": {"rack": BIG}}, "agent_info.attributes['rack']"),
        ({"attributes": {str(i): "v" for i in range(101)}}, "agent_info.attributes"),
        ({"resources": parse_resources("cpus:1;ports:[0-18446744073709551615]")},
         "agent_info.resources.ports"),
    ],
)
def test_bad_agent_info_is_refused_naming_the_field(change: dict[str, Any], field: str) -> None:
    refused(check_agent_info, replace(AGENT, **change), field)


def test_an_agent_registering_ports_past_65535_over_the_wire_is_refused() -> None:
    # What the master's Agent service decodes from the wire, then checks.
    everything = pb.Range(begin=0, end=2**64 - 1)
    msg = pb.AgentInfo(hostname="h", resources=[
        pb.Resource(name="cpus", kind=pb.Resource.SCALAR, scalar=1),
        pb.Resource(name="ports", kind=pb.Resource.RANGES, ranges=[everything]),
    ])
    with pytest.raises(ValidationError, match="ends above 65535") as err:
        convert.agent_from_pb(msg)
    assert err.value.field == "agent_info.resources.ports"


def cmd(**kw: Any) -> CommandSpec:
    return replace(TASK.command, **kw)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"task_id": TaskId("fz-nl\n")}, "tasks[0].task_id"),
        ({"task_id": TaskId("t" * 256)}, "tasks[0].task_id"),
        ({"agent_id": AgentId("ag 1")}, "tasks[0].agent_id"),
        ({"name": "n" * 256}, "tasks[0].name"),
        ({"labels": {"k": BIG}}, "tasks[0].labels['k']"),
        ({"command": cmd(value=BIG)}, "tasks[0].command.value"),
        ({"command": cmd(shell=False, argv=("echo",) * 5000)}, "tasks[0].command.argv"),
        ({"command": cmd(shell=False, argv=("echo", BIG))}, "tasks[0].command.argv"),
        ({"command": cmd(environment={"A": BIG})}, "tasks[0].command.environment['A']"),
        ({"command": cmd(environment={BIG: "1"})}, "tasks[0].command.environment key"),
        ({"command": cmd(user="u" * 33)}, "tasks[0].command.user"),
        ({"resources": parse_resources("cpus:1;ports:[70000-70001]")}, "tasks[0].resources.ports"),
        ({"kill_grace_period_s": float("inf")}, "tasks[0].kill_grace_period_s"),
        ({"health_check": HealthCheckSpec("http", port=80, path=BIG)},
         "tasks[0].health_check.path"),
        ({"allocation_role": "r" * 256}, "tasks[0].allocation_role"),
    ],
)
def test_bad_tasks_are_refused_naming_the_field(change: dict[str, Any], field: str) -> None:
    refused(check_tasks, [replace(TASK, **change)], field)


def test_a_task_port_range_past_65535_over_the_wire_is_refused() -> None:
    beyond = pb.Range(begin=1, end=65536)
    ports = pb.Resource(name="ports", kind=pb.Resource.RANGES, ranges=[beyond])
    with pytest.raises(ValidationError, match="ends above 65535"):
        convert.resources_from_pb([ports], "tasks[0].resources")


def test_too_many_resource_entries_are_refused() -> None:
    items = [pb.Resource(name=f"r{i}", kind=pb.Resource.SCALAR, scalar=1) for i in range(101)]
    with pytest.raises(ValidationError, match="at most 100 items"):
        convert.resources_from_pb(items)
