"""Roles' priority tiers through `MasterState` (#16): set, validated, kept in the registry,
and served strictly first by the master's allocation passes."""

from __future__ import annotations

from pathlib import Path

import pytest

from mesoslite.allocator.base import Demand
from mesoslite.allocator.tiers import RoleTier
from mesoslite.errors import ValidationError
from mesoslite.master.events import AllocateSoon, PersistRegistry
from mesoslite.master.registry.base import RegistrySnapshot, SetRoleTier
from mesoslite.master.registry.codec import (
    decode_objects,
    encode_object,
    snapshot_from_doc,
    snapshot_to_doc,
)
from mesoslite.master.state import MasterState
from mesoslite.model import FrameworkInfo
from mesoslite.resources import parse_resources

from .conftest import Harness

R = parse_resources


def test_a_roles_tier_is_set_kept_in_the_registry_and_recovered(h: Harness) -> None:
    effects = h.state.set_role_tier("urgent", 10, True)
    op = SetRoleTier("urgent", RoleTier(10, True))
    assert effects == [PersistRegistry((op,)), AllocateSoon()]
    # Priority alone keeps the role's preemptibility.
    h.state.set_role_tier("urgent", 7, None)
    assert h.state.roles.tiers["urgent"] == RoleTier(7, True)
    snap = SetRoleTier("urgent", RoleTier(7, True)).apply(RegistrySnapshot())
    fresh = MasterState(
        allocator=h.state.allocator, offer_timeout_s=30, agent_reregister_timeout_s=10
    )
    fresh.recover(snap, h.now)
    statuses = {s.role: s for s in fresh.role_statuses()}
    assert statuses["urgent"].tier == RoleTier(7, True)


def test_the_default_tier_removes_the_roles_record() -> None:
    snap = SetRoleTier("a", RoleTier(3, False)).apply(RegistrySnapshot())
    assert snap.role_tiers == {"a": RoleTier(3, False)}
    assert SetRoleTier("a", RoleTier()).apply(snap).role_tiers == {}


def test_tiers_survive_both_registry_encodings() -> None:
    snap = SetRoleTier("eng/ml", RoleTier(-5, True)).apply(RegistrySnapshot())
    data = encode_object(snap, ("roles", "eng/ml"))
    assert data is not None
    assert decode_objects([(("roles", "eng/ml"), data)]).role_tiers == snap.role_tiers
    assert snapshot_from_doc(snapshot_to_doc(snap)).role_tiers == snap.role_tiers


@pytest.mark.parametrize(
    ("role", "priority", "field"),
    [
        ("urgent", 1001, "priority"),
        ("urgent", -1001, "priority"),
        ("*", 1, "role"),
        ("Bad Role", 1, "role"),
    ],
)
def test_bad_tiers_are_rejected_and_change_nothing(
    h: Harness, role: str, priority: int, field: str
) -> None:
    with pytest.raises(ValidationError, match=field):
        h.state.set_role_tier(role, priority, True)
    assert h.state.roles.tiers == {}


@pytest.mark.parametrize("tiered", [False, True])
def test_a_high_tier_is_offered_before_a_role_of_more_weight(h: Harness, tiered: bool) -> None:
    h.agent("cpus:2;mem:2048")
    low, _ = h.state.subscribe_framework(FrameworkInfo(name="low", role="batch"), h.now)
    high, _ = h.state.subscribe_framework(FrameworkInfo(name="high", role="urgent"), h.now)
    h.state.request(high, [Demand(R("cpus:2;mem:2048"), 1)])
    h.state.set_role_weight("batch", 100.0)  # by weight alone, batch comes first
    if tiered:
        h.state.set_role_tier("urgent", 10, None)
    assert list(h.allocate()) == [high if tiered else low]


def test_role_tiers_round_trip_through_sqlite(tmp_path: Path) -> None:
    import asyncio

    from mesoslite.master.registry.sqlite import SqliteRegistryStore

    async def go() -> RegistrySnapshot:
        store = SqliteRegistryStore(tmp_path / "registry.db")
        await store.apply([SetRoleTier("urgent", RoleTier(10, False))])
        loaded = await store.load()
        await store.close()
        return loaded

    assert asyncio.run(go()).role_tiers == {"urgent": RoleTier(10, False)}
