"""Every bad request gets a clear error naming what is wrong, and changes nothing."""

from __future__ import annotations

import math

import pytest

from mesoslite import convert
from mesoslite._proto.v1 import common_pb2
from mesoslite.errors import (
    AlreadyExistsError,
    ConflictError,
    MesosliteError,
    UnknownFrameworkError,
    UnknownOfferError,
    UnknownTaskError,
    ValidationError,
)
from mesoslite.ids import AgentId, FrameworkId, OfferId, TaskId
from mesoslite.model import AgentInfo, CommandSpec, FrameworkInfo, TaskSpec
from mesoslite.resources import parse_resources

from .conftest import Harness, task


def rejected(h: Harness, error: type[MesosliteError], match: str, fn: object) -> MesosliteError:
    before = h.fingerprint()
    with pytest.raises(error, match=match) as info:
        fn()  # type: ignore[operator]
    assert h.fingerprint() == before, "a rejected request must not change the master's state"
    return info.value


@pytest.fixture
def setup(h: Harness) -> tuple[Harness, FrameworkId, FrameworkId, object]:
    h.agent("cpus:4;mem:1024;ports:[31000-31009]")
    mine, theirs = h.framework("mine"), h.framework("theirs")
    offers = h.allocate()
    return h, mine, theirs, offers


def test_launching_on_an_offer_that_is_not_yours(setup) -> None:  # type: ignore[no-untyped-def]
    h, mine, theirs, offers = setup
    owner = mine if mine in offers else theirs
    other = theirs if owner == mine else mine
    offer = offers[owner][0]
    rejected(h, ConflictError, "is not yours",
             lambda: h.state.accept(other, [offer.id], [task("t1")], 0, h.now))


def test_launching_on_an_offer_that_never_existed(setup) -> None:  # type: ignore[no-untyped-def]
    h, mine, _, _ = setup
    err = rejected(h, UnknownOfferError, "never made",
                   lambda: h.state.accept(mine, [OfferId("of-nope")], [task("t1")], 0, h.now))
    assert "of-nope" in err.message


def test_launching_on_a_rescinded_offer(setup) -> None:  # type: ignore[no-untyped-def]
    h, mine, theirs, offers = setup
    owner = mine if mine in offers else theirs
    offer = offers[owner][0]
    h.clock.advance(30)
    h.state.tick(h.now)  # offer_timeout rescinds it
    rejected(h, UnknownOfferError, "rescinded",
             lambda: h.state.accept(owner, [offer.id], [task("t1")], 0, h.now))


def test_asking_for_more_than_the_offer_holds(setup) -> None:  # type: ignore[no-untyped-def]
    h, mine, theirs, offers = setup
    owner = mine if mine in offers else theirs
    offer = offers[owner][0]
    too_big = [task("t1", "cpus:5;mem:1")]
    err = rejected(h, ValidationError, r"cpus: wants 5, has 4",
                   lambda: h.state.accept(owner, [offer.id], too_big, 0, h.now))
    assert err.field == "tasks"
    port_80 = [task("t1", "cpus:1;ports:[80-80]")]
    rejected(h, ValidationError, r"ports",
             lambda: h.state.accept(owner, [offer.id], port_80, 0, h.now))
    many = [task(f"t{i}", "cpus:1;mem:1") for i in range(5)]
    rejected(h, ValidationError, r"cpus: wants 5",
             lambda: h.state.accept(owner, [offer.id], many, 0, h.now))


def test_two_tasks_of_one_call_asking_for_the_same_port(setup) -> None:  # type: ignore[no-untyped-def]
    # Summed, [31000-31000] twice merges into one port, which the offer holds: both tasks
    # would be launched with the same port.
    h, mine, theirs, offers = setup
    owner = mine if mine in offers else theirs
    offer = offers[owner][0]
    same = [task("t1", "cpus:1;ports:[31000-31001]"), task("t2", "cpus:1;ports:[31001-31002]")]
    err = rejected(h, ValidationError, r"ports 31001 is also asked for by tasks\[0\]",
                   lambda: h.state.accept(owner, [offer.id], same, 0, h.now))
    assert err.field == "tasks[1].resources"
    apart = [task("t1", "cpus:1;ports:[31000-31001]"), task("t2", "cpus:1;ports:[31002-31002]")]
    h.state.accept(owner, [offer.id], apart, 0, h.now)


def test_duplicate_task_ids(setup) -> None:  # type: ignore[no-untyped-def]
    h, mine, theirs, offers = setup
    owner = mine if mine in offers else theirs
    offer = offers[owner][0]
    rejected(h, ValidationError, r"tasks\[1\]\.task_id: 't1' appears twice",
             lambda: h.state.accept(owner, [offer.id], [task("t1"), task("t1")], 0, h.now))
    h.state.suppress(theirs if owner == mine else mine)
    h.state.accept(owner, [offer.id], [task("t1")], 0, h.now)
    again = h.allocate()[owner][0]
    rejected(h, AlreadyExistsError, r"task 't1' already exists",
             lambda: h.state.accept(owner, [again.id], [task("t1")], 0, h.now))


@pytest.mark.parametrize(
    ("value", "message"),
    [(-1.0, "must be >= 0, got -1"), (math.nan, "finite"), (math.inf, "finite"),
     (1e15, "must be at most 1e\\+12")],
)
def test_negative_nan_or_absurd_resources_are_rejected_at_the_edge(
    value: float, message: str
) -> None:
    info = common_pb2.TaskInfo(
        task_id="t1",
        command=common_pb2.CommandInfo(shell=True, value="true"),
        resources=[common_pb2.Resource(name="cpus", kind=common_pb2.Resource.SCALAR, scalar=value)],
    )
    with pytest.raises(ValidationError, match=message) as err:
        convert.task_from_pb(info, "operations[0].launch.task_infos[0]")
    assert "operations[0].launch.task_infos[0].resources.cpus" in err.value.message


def test_zero_resources_and_empty_commands(setup) -> None:  # type: ignore[no-untyped-def]
    h, mine, theirs, offers = setup
    owner = mine if mine in offers else theirs
    offer = offers[owner][0]
    empty = TaskSpec(TaskId("t1"), CommandSpec.of_shell("  "), parse_resources("cpus:1"))
    rejected(h, ValidationError, r"tasks\[0\]\.command\.value: command is empty",
             lambda: h.state.accept(owner, [offer.id], [empty], 0, h.now))
    no_argv = TaskSpec(TaskId("t1"), CommandSpec.of_argv([]), parse_resources("cpus:1"))
    rejected(h, ValidationError, r"command\.argv: command is empty",
             lambda: h.state.accept(owner, [offer.id], [no_argv], 0, h.now))
    nothing = TaskSpec(TaskId("t1"), CommandSpec.of_shell("true"), parse_resources(""))
    rejected(h, ValidationError, r"tasks\[0\]\.resources: a task must use some resources",
             lambda: h.state.accept(owner, [offer.id], [nothing], 0, h.now))
    bad_id = task("bad id!")
    rejected(h, ValidationError, r"tasks\[0\]\.task_id",
             lambda: h.state.accept(owner, [offer.id], [bad_id], 0, h.now))


def test_unknown_framework_and_agent_ids(setup) -> None:  # type: ignore[no-untyped-def]
    h, mine, _, _ = setup
    ghost = FrameworkId("fw-ghost")
    rejected(h, UnknownFrameworkError, "fw-ghost is not known",
             lambda: h.state.decline(ghost, [OfferId("x")], 1, h.now))
    rejected(h, UnknownFrameworkError, "not known to this master",
             lambda: h.state.subscribe_framework(FrameworkInfo(name="x", id=ghost), h.now))
    rejected(h, UnknownTaskError, "'nope' is not known",
             lambda: h.state.kill_task(mine, TaskId("nope"), 0))
    owner = mine if any(o.framework_id == mine for o in h.state.offers) else None
    if owner is not None:
        offer = next(o for o in h.state.offers if o.framework_id == mine)
        elsewhere = TaskSpec(TaskId("t1"), CommandSpec.of_shell("true"), parse_resources("cpus:1"),
                             agent_id=AgentId("ag-x"))
        rejected(h, ValidationError, r"tasks\[0\]\.agent_id: ag-x is not the agent",
                 lambda: h.state.accept(mine, [offer.id], [elsewhere], 0, h.now))


def test_bad_refuse_seconds_and_framework_info(setup) -> None:  # type: ignore[no-untyped-def]
    h, mine, theirs, offers = setup
    owner = mine if mine in offers else theirs
    offer = offers[owner][0]
    rejected(h, ValidationError, r"filters.refuse_seconds: must be >= 0, got -1",
             lambda: h.state.decline(owner, [offer.id], -1, h.now))
    rejected(h, ValidationError, r"refuse_seconds: must be a finite",
             lambda: h.state.decline(owner, [offer.id], math.nan, h.now))
    rejected(h, ValidationError, r"framework_info.name: must not be empty",
             lambda: h.state.subscribe_framework(FrameworkInfo(name=""), h.now))
    rejected(h, ValidationError, r"framework_info.role",
             lambda: h.state.subscribe_framework(FrameworkInfo(name="x", role="Bad Role"), h.now))
    negative_failover = FrameworkInfo(name="x", failover_timeout_s=-5)
    rejected(h, ValidationError, r"failover_timeout_s: must be >= 0",
             lambda: h.state.subscribe_framework(negative_failover, h.now))
    no_resources = AgentInfo(hostname="h", resources=parse_resources(""))
    rejected(h, ValidationError, r"agent_info.resources: must not be empty",
             lambda: h.state.register_agent(no_resources, [], h.now))
    rejected(h, ValidationError, r"offer_ids: must name at least one offer",
             lambda: h.state.accept(owner, [], [task("t1")], 0, h.now))
    rejected(h, ValidationError, r"names the same offer twice",
             lambda: h.state.accept(owner, [offer.id, offer.id], [task("t1")], 0, h.now))
