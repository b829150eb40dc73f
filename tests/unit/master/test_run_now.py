"""`place_now` (issue 15): `mesoslite run`'s task is placed by one allocator pass of its own,
with no allocation batch, and under the same rules as any pass (quota, the other frameworks)."""

from __future__ import annotations

from mesoslite.allocator.base import Demand
from mesoslite.master.run_now import place_now
from mesoslite.model import FrameworkInfo
from mesoslite.resources import parse_resources

from .conftest import Harness, offers_in, task

R = parse_resources


def _run_framework(h: Harness, role: str = "*") -> object:
    fid, _ = h.state.subscribe_framework(FrameworkInfo(name="mesoslite-run x", role=role), h.now)
    h.state.request(fid, [Demand(R("cpus:0.5;mem:32"), 1)])
    return fid


def test_the_run_is_offered_its_tasks_shape_at_once_and_no_one_else_is(h: Harness) -> None:
    h.agent("cpus:4;mem:4096")
    other = h.framework("other")
    h.allocate()  # `other` now holds the agent's whole offer; give it back
    h.state.decline(other, [o.id for o in h.state.offers], 0.0, h.now)
    before = dict(h.state.last_reasons)
    fid = _run_framework(h)
    offers = offers_in(place_now(h.state, fid, h.now))  # no `allocate()`: no batch ran
    assert list(offers) == [fid]
    assert offers[fid][0].resources == R("cpus:0.5;mem:32")
    assert h.state.last_reasons[other] == before[other]


def test_a_run_is_placed_within_its_roles_quota_limit_only(h: Harness) -> None:
    h.agent("cpus:4;mem:4096")
    h.state.set_quota("eng", R(""), R("cpus:1"))
    busy, _ = h.state.subscribe_framework(FrameworkInfo(name="busy", role="eng"), h.now)
    offer = h.offer_for(busy)
    h.state.accept(busy, [offer.id], [task("t1", "cpus:1;mem:128")], 0.0, h.now)
    fid = _run_framework(h, role="eng")
    assert offers_in(place_now(h.state, fid, h.now)) == {}
    assert "quota" in h.state.last_reasons[fid]
    # Another role has no such limit: placed at once.
    free_fid = _run_framework(h, role="ops")
    assert list(offers_in(place_now(h.state, free_fid, h.now))) == [free_fid]
