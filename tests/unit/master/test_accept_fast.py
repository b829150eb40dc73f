"""The master's per-task path made cheaper (#15) says and does what it did: an accept's
launched tasks, the task checks' verdicts and messages, a framework's and an agent's sums,
and one `AllocateSoon` for a batch of updates."""

from __future__ import annotations

import math
from dataclasses import fields, replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mesoslite.errors import ValidationError
from mesoslite.ids import TaskId
from mesoslite.master import records as rec
from mesoslite.master.allocation import _fits
from mesoslite.master.events import AllocateSoon, LaunchOnAgent
from mesoslite.master.validation import _check_no_shared_items, _check_task, check_tasks
from mesoslite.model import (
    AgentInfo,
    CommandSpec,
    FrameworkInfo,
    HealthCheckSpec,
    StatusSource,
    TaskSpec,
    TaskState,
    TaskStatus,
)
from mesoslite.resources import Resources, parse_resources
from tests.unit.master.conftest import Harness, task


def test_an_accepted_task_is_launched_with_every_field_it_was_given() -> None:
    # `_to_launch` copies `TaskSpec` field by field (not `dataclasses.replace`): a new field
    # must be copied there too, and this list updated.
    assert [f.name for f in fields(TaskSpec)] == [
        "task_id",
        "command",
        "resources",
        "name",
        "agent_id",
        "kill_grace_period_s",
        "labels",
        "health_check",
        "allocation_role",
    ], "TaskSpec changed: copy the new field in master/accept.py `_to_launch`"
    h = Harness()
    h.agent()
    fid, _ = h.state.subscribe_framework(FrameworkInfo(name="fw", user="alice"), h.now)
    offer = h.offer_for(fid)
    given_spec = TaskSpec(
        TaskId("t1"),
        CommandSpec.of_shell("sleep 1", environment={"A": "1"}),
        parse_resources("cpus:1;mem:128"),
        name="the task",
        kill_grace_period_s=3.0,
        labels={"k": "v"},
        health_check=HealthCheckSpec("tcp", port=8080),
        allocation_role="ignored",
    )
    effects = h.state.accept(fid, [offer.id], [given_spec], 0.0, h.now)
    (launch,) = [e for e in effects if isinstance(e, LaunchOnAgent)]
    expected = replace(
        given_spec,
        agent_id=offer.agent_id,
        allocation_role=offer.allocation_role,
        command=replace(given_spec.command, user="alice"),
    )
    assert launch.tasks == (expected,)
    assert h.state.framework(fid).tasks[TaskId("t1")].spec == expected


def test_a_batch_of_ended_tasks_asks_for_one_allocation() -> None:
    h = Harness()
    h.agent("cpus:8;mem:1024")
    fid = h.framework()
    offer = h.offer_for(fid)
    h.launch(fid, offer, "a", "b", "c")
    agent_id = offer.agent_id
    ended = [
        TaskStatus(TaskId(t), fid, agent_id, TaskState.FINISHED, source=StatusSource.AGENT)
        for t in ("a", "b", "c")
    ]
    effects = h.state.status_updates(agent_id, ended, h.now)
    assert sum(isinstance(e, AllocateSoon) for e in effects) == 1
    assert not h.state.framework(fid).tasks
    assert h.state.agents[agent_id].used.is_empty()
    assert [k[1] for k in h.state.completed_tasks] == ["a", "b", "c"]


# -- the task checks: the quick look never passes what the full checks refuse


_ids = st.one_of(
    st.sampled_from(["t1", "a.b:c@d-e_f", "", " ", "t\n", "é", "x" * 255, "x" * 256]),
    st.text(max_size=6),
)
_commands = st.builds(
    CommandSpec,
    shell=st.booleans(),
    value=st.one_of(
        st.sampled_from(["true", "", "  ", "\t\n", "écho", "x" * (128 * 1024)]), st.text()
    ),
    argv=st.one_of(st.just(()), st.tuples(st.text(max_size=3))),
    environment=st.one_of(st.just({}), st.dictionaries(st.text(max_size=3), st.text(max_size=3))),
    user=st.sampled_from(["", "alice", "u" * 32, "u" * 33]),
)
_resources = st.sampled_from(
    ["cpus:1;mem:64", "cpus:0.001", "", "ports:[31000-31001]", "ports:[70000-70001]", "g:{a}"]
).map(parse_resources)
_durations = st.one_of(
    st.sampled_from([0.0, 1.5, -1.0, math.nan, math.inf, 365 * 24 * 3600.0, 4e7]),
    st.floats(allow_nan=True),
)
_tasks = st.builds(
    TaskSpec,
    task_id=_ids,
    command=_commands,
    resources=_resources,
    name=st.sampled_from(["", "n", "n" * 255, "n" * 256]),
    agent_id=_ids,
    kill_grace_period_s=_durations,
    labels=st.one_of(st.just({}), st.dictionaries(st.text(max_size=2), st.text(max_size=2))),
    health_check=st.one_of(st.none(), st.just(HealthCheckSpec("command", command="x" * 5000))),
    allocation_role=st.sampled_from(["", "eng", "Bad Role", "*"]),
)

# A plain task with one or two things changed: the quick look's own ground.
_PLAIN = TaskSpec(TaskId("t1"), CommandSpec.of_shell("true"), parse_resources("cpus:1;mem:64"))
_command_change = st.one_of(
    st.booleans().map(lambda v: {"shell": v}),
    _commands.map(lambda c: {"value": c.value}),
    _commands.map(lambda c: {"argv": c.argv}),
    _commands.map(lambda c: {"environment": c.environment}),
    _commands.map(lambda c: {"user": c.user}),
)
_change = st.one_of(
    _ids.map(lambda v: {"task_id": v}),
    _ids.map(lambda v: {"agent_id": v}),
    st.lists(_command_change, max_size=2).map(
        lambda cs: {"command": replace(_PLAIN.command, **{k: v for c in cs for k, v in c.items()})}
    ),
    _resources.map(lambda v: {"resources": v}),
    _durations.map(lambda v: {"kill_grace_period_s": v}),
    _tasks.map(lambda t: {"name": t.name}),
    _tasks.map(lambda t: {"labels": t.labels}),
    _tasks.map(lambda t: {"health_check": t.health_check}),
    _tasks.map(lambda t: {"allocation_role": t.allocation_role}),
)
_near_plain = st.lists(_change, max_size=2).map(
    lambda cs: replace(_PLAIN, **{k: v for c in cs for k, v in c.items()})
)


def _verdict_of_every_check(tasks: list[TaskSpec]) -> str:
    """What `check_tasks` said before its quick look: each task's checks in full."""
    seen: set[str] = set()
    try:
        for i, t in enumerate(tasks):
            _check_task(f"tasks[{i}]", t, seen)
            seen.add(t.task_id)
        _check_no_shared_items(tasks, "tasks")
    except ValidationError as err:
        return f"{err.field}: {err.message}"
    return "ok"


def _verdict(tasks: list[TaskSpec]) -> str:
    try:
        check_tasks(tasks)
    except ValidationError as err:
        return f"{err.field}: {err.message}"
    return "ok"


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(_near_plain, _tasks), max_size=3))
def test_task_checks_give_the_same_verdict_and_message_as_every_check_in_full(
    tasks: list[TaskSpec],
) -> None:
    assert _verdict(tasks) == _verdict_of_every_check(tasks)


_BOUNDARIES: dict[str, list[object]] = {
    "task_id": ["t1", "x" * 255, "x" * 256, "", " ", "t\n", "é", "a.b:c@d-e_f"],
    "agent_id": ["", "a1", "x" * 256, "a b"],
    "resources": [
        parse_resources(t)
        for t in ("", "cpus:0.001", "cpus:1;ports:[70000-70001]", "cpus:1;ports:[1-2]", "g:{a}")
    ],
    "kill_grace_period_s": [0.0, 365 * 24 * 3600.0, 4e7, -1.0, math.nan, math.inf],
    "name": ["n" * 255, "n" * 256],
    "labels": [{"k": "v"}, {"k" * 300: "v"}, {str(i): "" for i in range(200)}],
    "health_check": [HealthCheckSpec("command", command="x" * 200_000), HealthCheckSpec("tcp")],
    "allocation_role": ["eng", "Bad Role", "*"],
}
_COMMAND_BOUNDARIES: dict[str, list[object]] = {
    "shell": [False],
    "value": ["", "  ", "\t\n", "écho", "é" * 70_000, "x" * (128 * 1024 - 1), "x" * (128 * 1024)],
    "argv": [("ls",), ("",), ("x",) * 4097],
    "environment": [{"A": "1"}, {"A": "x" * 200_000}],
    "user": ["u" * 32, "u" * 33],
}


@pytest.mark.parametrize(
    "changed",
    [replace(_PLAIN, **{k: v}) for k, vs in _BOUNDARIES.items() for v in vs]  # type: ignore[arg-type]
    + [
        replace(_PLAIN, command=replace(_PLAIN.command, **{k: v}))  # type: ignore[arg-type]
        for k, vs in _COMMAND_BOUNDARIES.items()
        for v in vs
    ],
)
def test_a_plain_task_changed_at_one_boundary_gets_the_verdict_of_every_check(
    changed: TaskSpec,
) -> None:
    assert _verdict([changed]) == _verdict_of_every_check([changed])


def test_two_plain_tasks_with_one_id_are_refused() -> None:
    with pytest.raises(ValidationError) as err:
        check_tasks([task("t1"), task("t2"), task("t1")])
    assert err.value.field == "tasks[2].task_id"


# -- sums: shared where they are equal, never a different value


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.booleans(),
            st.sampled_from(["a", "b"]),
            st.sampled_from(["cpus:1", "cpus:0.5;mem:64", "ports:[1-2]", "mem:1"]),
        ),
        max_size=25,
    ),
    st.booleans(),
)
def test_a_frameworks_used_and_offered_sums_are_those_of_plain_arithmetic(
    steps: list[tuple[bool, str, str]], one_role: bool
) -> None:
    record = rec.FrameworkRecord(FrameworkInfo(name="fw"), rec.FRAMEWORK_CONNECTED, 0.0)
    total, by_role = Resources.empty(), {}
    for add, role, text in steps:
        role = "a" if one_role else role
        res = parse_resources(text)
        if add:
            record.add_used(role, res)
            record.add_offered(role, res)
            total = total + res
            by_role[role] = by_role.get(role, Resources.empty()) + res
        else:
            record.remove_used(role, res)
            record.remove_offered(role, res)
            total = total.minus_clamped(res)
            left = by_role.get(role, Resources.empty()).minus_clamped(res)
            by_role.pop(role, None)
            if left:
                by_role[role] = left
        assert record.used == total and record.offered == total
        assert record.used_by_role == by_role and record.offered_by_role == by_role


def test_an_agents_free_resources_follow_its_used_offered_and_size() -> None:
    agent = rec.AgentRecord(
        AgentInfo(hostname="h", resources=parse_resources("cpus:4;mem:64")), "active", 0.0
    )
    assert agent.free == parse_resources("cpus:4;mem:64")
    agent.used = parse_resources("cpus:1")
    assert agent.free == parse_resources("cpus:3;mem:64")
    agent.offered = parse_resources("cpus:1;mem:64")
    assert agent.free == parse_resources("cpus:2")
    agent.info = replace(agent.info, resources=parse_resources("cpus:1;mem:64"))
    assert agent.free == Resources.empty()  # re-registered smaller: clamped


_bundles = st.dictionaries(
    st.sampled_from(["cpus", "mem", "gpus"]), st.integers(0, 5), max_size=3
).map(lambda d: Resources.of({k: float(v) for k, v in d.items()}))


@settings(max_examples=300, deadline=None)
@given(_bundles, _bundles, _bundles, _bundles, st.booleans())
def test_a_grant_fits_an_agent_exactly_when_its_free_resources_contain_it(
    total: Resources, used: Resources, offered: Resources, grant: Resources, ports: bool
) -> None:
    if ports:
        total = total + parse_resources("ports:[1-10]")
        grant = grant + parse_resources("ports:[2-3]")
    agent = rec.AgentRecord(AgentInfo(hostname="h", resources=total), "active", 0.0)
    agent.used, agent.offered = used, offered
    assert _fits(agent, grant) == agent.free.contains(grant)
