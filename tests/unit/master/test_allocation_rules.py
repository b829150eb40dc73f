"""Issue #4 rules through `MasterState` on a virtual clock: demands (REQUEST), refuse_seconds
to the second, suppress/revive, run-time weights and quota kept in the registry."""

from __future__ import annotations

from pathlib import Path

import pytest

from mesoslite.allocator.base import Demand, Quota
from mesoslite.errors import ValidationError
from mesoslite.ids import AgentId, TaskId
from mesoslite.master.events import AllocateSoon, PersistRegistry
from mesoslite.master.registry.base import (
    RegistrySnapshot,
    SetQuota,
    SetReservation,
    SetRoleWeight,
)
from mesoslite.master.state import MasterState
from mesoslite.model import AgentInfo, FrameworkInfo, TaskState, TaskStatus
from mesoslite.resources import Resources, parse_reserved_resources, parse_resources

from .conftest import Harness, task

R = parse_resources


def test_demands_size_offers_to_whole_tasks_and_shrink_as_tasks_launch(h: Harness) -> None:
    h.agent("cpus:9;mem:18432")
    fid = h.framework("A")
    h.state.request(fid, [Demand(R("cpus:1;mem:4096"), 2)])
    offer = h.offer_for(fid)
    assert offer.resources == R("cpus:2;mem:8192")  # two tasks' worth, not the whole agent
    h.state.accept(fid, [offer.id], [task("t1", "cpus:1;mem:4096")], 0.0, h.now)
    # One task launched, one still wanted: the next offer is one task's worth.
    assert h.state.frameworks[fid].demands == [Demand(R("cpus:1;mem:4096"), 1)]
    assert h.offer_for(fid).resources == R("cpus:1;mem:4096")


def test_a_framework_whose_demands_are_met_is_told_why(h: Harness) -> None:
    h.agent("cpus:4;mem:4096")
    fid = h.framework()
    h.state.request(fid, [Demand(R("cpus:1;mem:128"), 0)])
    assert h.allocate() == {}
    assert h.state.last_reasons[fid] == "no outstanding demand"


def test_bad_demands_are_rejected_naming_the_field(h: Harness) -> None:
    fid = h.framework()
    with pytest.raises(ValidationError, match=r"demands\[0\].count"):
        h.state.request(fid, [Demand(R("cpus:1"), -1)])
    with pytest.raises(ValidationError, match=r"demands\[0\].resources"):
        h.state.request(fid, [Demand(R("ports:[1-2]"), 1)])


def test_refuse_seconds_is_honoured_to_the_second_on_a_virtual_clock(h: Harness) -> None:
    h.agent("cpus:4;mem:4096")
    fid = h.framework()
    offer = h.offer_for(fid)
    h.state.decline(fid, [offer.id], 5.0, h.now)
    h.clock.advance(4.999)
    assert h.allocate() == {}
    assert "filtered" in h.state.last_reasons[fid]
    h.clock.advance(0.001)  # exactly refuse_seconds later
    assert fid in h.allocate()


def test_a_suppressed_framework_gets_no_offers_until_it_revives(h: Harness) -> None:
    h.agent("cpus:4;mem:4096")
    fid = h.framework()
    h.state.suppress(fid)
    for _ in range(3):
        h.clock.advance(60)
        assert h.allocate() == {}
        assert h.state.last_reasons[fid] == "suppressed"
    h.state.revive(fid)
    assert fid in h.allocate()


def test_weights_and_quota_are_set_at_run_time_and_kept_in_the_registry(h: Harness) -> None:
    effects = h.state.set_role_weight("eng", 3.0)
    assert effects == [PersistRegistry((SetRoleWeight("eng", 3.0),)), AllocateSoon()]
    effects = h.state.set_quota("eng", R("cpus:1"), R("cpus:2"))
    assert effects == [
        PersistRegistry((SetQuota("eng", Quota(R("cpus:1"), R("cpus:2"))),)), AllocateSoon()
    ]
    snap = RegistrySnapshot()
    for effect in effects:
        if not isinstance(effect, PersistRegistry):
            continue
        for op in effect.ops:
            snap = op.apply(snap)
    snap = SetRoleWeight("eng", 3.0).apply(snap)
    # A new master (failover, restart) recovers both.
    fresh = MasterState(
        allocator=h.state.allocator, offer_timeout_s=30, agent_reregister_timeout_s=10
    )
    fresh.recover(snap, h.now)
    statuses = {s.role: s for s in fresh.role_statuses()}
    assert statuses["eng"].weight == 3.0
    assert statuses["eng"].quota == Quota(R("cpus:1"), R("cpus:2"))


def test_a_quota_limit_caps_offers_through_the_master(h: Harness) -> None:
    h.agent("cpus:8;mem:8192")
    with pytest.raises(ValidationError, match="role"):
        h.state.set_quota("*", R("cpus:1"), R("cpus:3"))  # the default role has no quota
    capped, _ = h.state.subscribe_framework(FrameworkInfo(name="c", role="batch"), h.now)
    h.state.set_quota("batch", Resources.empty(), R("cpus:3"))
    assert h.offer_for(capped).resources.scalar("cpus") == 3


@pytest.mark.parametrize(
    ("weight", "message"), [(0.0, "weight"), (-1.0, "weight"), (float("inf"), "weight")]
)
def test_bad_weights_are_rejected(h: Harness, weight: float, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        h.state.set_role_weight("eng", weight)


def test_a_guarantee_above_the_limit_is_rejected(h: Harness) -> None:
    with pytest.raises(ValidationError, match="guarantee"):
        h.state.set_quota("eng", R("cpus:4"), R("cpus:2"))


def reserved_agent(h: Harness, text: str) -> None:
    total, reserved = parse_reserved_resources(text)
    info = AgentInfo(hostname="h1", resources=total, reserved=reserved)
    h.state.register_agent(info, [], h.now)


def test_static_reservations_are_offered_only_to_their_role(h: Harness) -> None:
    reserved_agent(h, "cpus(ml):4;mem(ml):4096;cpus:2;mem:2048")
    web, _ = h.state.subscribe_framework(FrameworkInfo(name="web", role="web"), h.now)
    offer = h.offer_for(web)
    assert offer.resources == R("cpus:2;mem:2048")  # the unreserved part only
    h.state.decline(web, [offer.id], 3600, h.now)
    ml, _ = h.state.subscribe_framework(FrameworkInfo(name="ml", role="ml"), h.now)
    offer = h.offer_for(ml)
    # Its reservation, and the unreserved part that web declined.
    assert offer.resources == R("cpus:6;mem:6144")
    assert h.state.reservations.taken[offer.agent_id] == {"ml": R("cpus:4;mem:4096")}


def test_tasks_on_reserved_resources_give_them_back_to_their_role_when_they_end(
    h: Harness,
) -> None:
    reserved_agent(h, "cpus(ml):4;mem(ml):4096")
    ml, _ = h.state.subscribe_framework(FrameworkInfo(name="ml", role="ml"), h.now)
    offer = h.offer_for(ml)
    h.state.accept(ml, [offer.id], [task("t1", "cpus:4;mem:4096")], 0.0, h.now)
    assert h.state.reservations.taken[offer.agent_id] == {"ml": R("cpus:4;mem:4096")}
    web, _ = h.state.subscribe_framework(FrameworkInfo(name="web", role="web"), h.now)
    assert h.allocate() == {}
    h.state.status_updates(
        offer.agent_id,
        [TaskStatus(TaskId("t1"), ml, offer.agent_id, TaskState.FINISHED)],
        h.now,
    )
    assert h.state.reservations.taken[offer.agent_id] == {}
    offers = h.allocate()
    assert web not in offers and ml in offers


def test_an_agent_flag_with_reservations_parses_into_total_and_parts() -> None:
    total, reserved = parse_reserved_resources("cpus(ml):4;mem(ml):4096;cpus:2;ports:[1-5]")
    assert total == R("cpus:6;mem:4096;ports:[1-5]")
    assert reserved == {"ml": R("cpus:4;mem:4096")}
    with pytest.raises(ValidationError, match="role"):
        parse_reserved_resources("cpus(Not A Role):1")
    with pytest.raises(ValidationError, match="overlap"):
        parse_reserved_resources("ports(a):[1-10];ports:[5-20]")


def test_an_agents_reservations_travel_as_resources_with_roles() -> None:
    from mesoslite.convert import agent_from_pb, agent_to_pb

    total, reserved = parse_reserved_resources("cpus(eng/ml):4;mem(eng/ml):512;cpus:2")
    info = AgentInfo(hostname="h", resources=total, reserved=reserved)
    msg = agent_to_pb(info)
    assert {(r.name, r.role) for r in msg.resources} == {
        ("cpus", ""), ("cpus", "eng/ml"), ("mem", "eng/ml")
    }
    assert agent_from_pb(msg) == info


def test_reserve_in_accept_keeps_resources_for_the_role_and_in_the_registry(h: Harness) -> None:
    h.agent("cpus:4;mem:4096")
    ml, _ = h.state.subscribe_framework(FrameworkInfo(name="ml", role="ml"), h.now)
    offer = h.offer_for(ml)
    effects = h.state.accept(ml, [offer.id], [], 0.0, h.now, reserve=R("cpus:3;mem:3072"))
    op = SetReservation(offer.agent_id, "ml", R("cpus:3;mem:3072"))
    assert effects == [PersistRegistry((op,)), AllocateSoon()]
    h.state.suppress(ml)
    web, _ = h.state.subscribe_framework(FrameworkInfo(name="web", role="web"), h.now)
    assert h.offer_for(web).resources == R("cpus:1;mem:1024")
    # A new master (restart, failover) keeps it.
    fresh = MasterState(
        allocator=h.state.allocator, offer_timeout_s=30, agent_reregister_timeout_s=10
    )
    fresh.recover(op.apply(RegistrySnapshot()), h.now)
    assert fresh.dynamic_reservations == {offer.agent_id: {"ml": R("cpus:3;mem:3072")}}


def test_unreserve_gives_a_dynamic_reservation_back(h: Harness) -> None:
    h.agent("cpus:4;mem:4096")
    ml, _ = h.state.subscribe_framework(FrameworkInfo(name="ml", role="ml"), h.now)
    offer = h.offer_for(ml)
    h.state.accept(ml, [offer.id], [], 0.0, h.now, reserve=R("cpus:4;mem:4096"))
    offer = h.offer_for(ml)
    with pytest.raises(ValidationError, match="operations.unreserve"):
        h.state.accept(ml, [offer.id], [], 0.0, h.now, unreserve=R("cpus:5"))
    h.state.accept(ml, [offer.id], [], 0.0, h.now, unreserve=R("cpus:4;mem:4096"))
    assert h.state.dynamic_reservations == {}
    h.state.suppress(ml)
    web, _ = h.state.subscribe_framework(FrameworkInfo(name="web", role="web"), h.now)
    assert h.offer_for(web).resources == R("cpus:4;mem:4096")


def test_reserve_is_refused_for_the_default_role_and_beyond_the_offer(h: Harness) -> None:
    h.agent("cpus:4;mem:4096")
    fid = h.framework()
    offer = h.offer_for(fid)
    with pytest.raises(ValidationError, match="role"):
        h.state.accept(fid, [offer.id], [], 0.0, h.now, reserve=R("cpus:1"))
    ml, _ = h.state.subscribe_framework(FrameworkInfo(name="ml", role="ml"), h.now)
    h.state.suppress(fid)
    h.state.decline(fid, [offer.id], 0, h.now)
    offer = h.offer_for(ml)
    with pytest.raises(ValidationError, match="more than the offers hold"):
        h.state.accept(ml, [offer.id], [], 0.0, h.now, reserve=R("cpus:9"))
    assert h.state.dynamic_reservations == {}


async def test_weights_quota_and_reservations_round_trip_through_sqlite(tmp_path: Path) -> None:
    from mesoslite.master.registry.sqlite import SqliteRegistryStore

    ops = [
        SetRoleWeight("eng", 2.0),
        SetQuota("eng", Quota(R("cpus:1"), R("cpus:4;mem:512"))),
        SetQuota("ops", Quota(R("cpus:1"), None)),
        SetReservation(AgentId("ag-1"), "ml", R("cpus:2")),
        SetReservation(AgentId("ag-1"), "web", R("mem:64")),
        SetReservation(AgentId("ag-1"), "web", Resources.empty()),
    ]
    store = SqliteRegistryStore(tmp_path / "registry.db")
    await store.apply(list(ops))
    loaded = await store.load()
    await store.close()
    expected = RegistrySnapshot()
    for op in ops:
        expected = op.apply(expected)
    assert loaded == expected


def test_offers_say_which_part_is_reserved_and_for_which_role(h: Harness) -> None:
    from mesoslite.convert import offer_from_pb, offer_to_pb

    reserved_agent(h, "cpus(ml):2;mem(ml):256;cpus:1;mem:128")
    ml, _ = h.state.subscribe_framework(FrameworkInfo(name="ml", role="ml"), h.now)
    offer = h.offer_for(ml)
    assert offer.reserved == {"ml": R("cpus:2;mem:256")}
    assert offer_from_pb(offer_to_pb(offer)) == offer
