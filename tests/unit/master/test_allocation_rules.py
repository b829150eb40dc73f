"""Issue #4 rules through `MasterState` on a virtual clock: demands (REQUEST), refuse_seconds
to the second, suppress/revive, run-time weights and quota kept in the registry."""

from __future__ import annotations

import pytest

from mesoslite.allocator.base import Demand, Quota
from mesoslite.errors import ValidationError
from mesoslite.master.events import PersistRegistry
from mesoslite.master.registry.base import RegistrySnapshot, SetQuota, SetRoleWeight
from mesoslite.master.state import MasterState
from mesoslite.model import FrameworkInfo
from mesoslite.resources import Resources, parse_resources

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
    assert effects == [PersistRegistry((SetRoleWeight("eng", 3.0),))]
    effects = h.state.set_quota("eng", R("cpus:1"), R("cpus:2"))
    assert effects == [PersistRegistry((SetQuota("eng", Quota(R("cpus:1"), R("cpus:2"))),))]
    snap = RegistrySnapshot()
    for effect in effects:
        assert isinstance(effect, PersistRegistry)
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
