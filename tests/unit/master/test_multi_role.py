"""A framework in several roles (`FrameworkInfo.roles`, Mesos's MULTI_ROLE) through
`MasterState`: offers tagged with their allocation role, accounting per role, suppress and
revive per role, reservations, recovery after a master restart, and bad input."""

from __future__ import annotations

import re

import pytest

from mesoslite.allocator.base import Demand
from mesoslite.errors import ValidationError
from mesoslite.ids import FrameworkId, TaskId
from mesoslite.master.registry.base import RegistrySnapshot, SetReservation
from mesoslite.master.registry.sqlite import framework_from_doc, framework_to_doc
from mesoslite.master.state import MasterState
from mesoslite.model import AgentInfo, FrameworkInfo, TaskState, TaskStatus
from mesoslite.resources import Resources, parse_reserved_resources, parse_resources

from .conftest import Harness, task

R = parse_resources


def two_roles(h: Harness, roles: tuple[str, ...] = ("a", "b")) -> FrameworkId:
    fid, _ = h.state.subscribe_framework(FrameworkInfo(name="multi", roles=roles), h.now)
    return fid


def test_a_framework_in_two_roles_is_offered_in_both_and_accounted_per_role(h: Harness) -> None:
    h.agent("cpus:4;mem:1024", "h1")
    h.agent("cpus:4;mem:1024", "h2")
    fid = two_roles(h)
    offers = h.allocate()[fid]
    assert sorted(o.allocation_role for o in offers) == ["a", "b"]
    by_role = {o.allocation_role: o for o in offers}
    h.launch(fid, by_role["a"], "ta", resources="cpus:1;mem:128")
    h.launch(fid, by_role["b"], "tb1", "tb2", resources="cpus:1;mem:128")
    fw = h.state.frameworks[fid]
    assert fw.used_by_role == {"a": R("cpus:1;mem:128"), "b": R("cpus:2;mem:256")}
    assert fw.tasks["tb1"].spec.allocation_role == "b"
    statuses = {s.role: s for s in h.state.role_statuses()}
    assert statuses["a"].allocated == R("cpus:1;mem:128")
    assert statuses["b"].allocated == R("cpus:2;mem:256")
    assert statuses["a"].frameworks == statuses["b"].frameworks == 1
    # A task ending gives its resources back to its own role.
    agent_id = fw.tasks["tb1"].agent_id
    finished = TaskStatus(TaskId("tb1"), fid, agent_id, TaskState.FINISHED)
    h.state.status_updates(agent_id, [finished], h.now)
    assert fw.used_by_role == {"a": R("cpus:1;mem:128"), "b": R("cpus:1;mem:128")}


def test_suppressing_one_role_leaves_offers_in_the_other(h: Harness) -> None:
    h.agent("cpus:4;mem:1024", "h1")
    h.agent("cpus:4;mem:1024", "h2")
    fid = two_roles(h)
    h.state.suppress(fid, ["a"])
    offers = h.allocate()[fid]
    assert {o.allocation_role for o in offers} == {"b"}
    explanation = h.state.explain(fid, h.now)
    assert [(r.role, r.suppressed) for r in explanation.roles] == [("a", True), ("b", False)]
    assert explanation.roles[0].last_reason == "suppressed"
    assert not explanation.suppressed  # not in every role
    for o in offers:
        h.state.decline(fid, [o.id], 0.0, h.now)
    h.state.revive(fid, ["a"])
    assert "a" in {o.allocation_role for o in h.allocate()[fid]}
    h.state.suppress(fid)  # no roles: all of them
    assert h.state.frameworks[fid].suppressed
    assert h.allocate().get(fid) is None


def test_a_filter_applies_to_the_role_of_the_declined_offer_only(h: Harness) -> None:
    h.agent("cpus:4;mem:1024")
    fid = two_roles(h)
    first = h.allocate()[fid]
    assert len(first) == 1  # one agent: offered whole, in one role
    h.state.decline(fid, [first[0].id], 60.0, h.now)
    second = h.allocate()[fid]
    assert [o.allocation_role for o in second] != [first[0].allocation_role]


def test_a_reservation_is_offered_only_with_its_role_and_reserve_uses_the_offers_role(
    h: Harness,
) -> None:
    total, reserved = parse_reserved_resources("cpus(a):2;mem(a):256;cpus:2;mem:256")
    h.state.register_agent(AgentInfo(hostname="h1", resources=total, reserved=reserved), [], h.now)
    h.agent("cpus:2;mem:256", "h2")
    fid = two_roles(h, ("b", "a"))
    offers = h.allocate()[fid]
    for offer in offers:
        if offer.reserved:
            assert offer.allocation_role == "a"
    in_b = [o for o in offers if o.allocation_role == "b"]
    assert in_b and all(not o.reserved for o in in_b)
    # RESERVE on an offer of role b reserves for b.
    effects = h.state.accept(fid, [in_b[0].id], [], 0.0, h.now, reserve=R("cpus:1"))
    agent_id = in_b[0].agent_id
    assert h.state.dynamic_reservations[agent_id] == {"b": R("cpus:1")}
    assert any(
        op == SetReservation(agent_id, "b", R("cpus:1"))
        for e in effects
        for op in getattr(e, "ops", ())
    )


def test_offers_of_different_roles_cannot_be_accepted_together(h: Harness) -> None:
    h.agent("cpus:4;mem:1024")
    fid = two_roles(h)
    # Demands size offers to tasks, so both roles are offered parts of the one agent.
    h.state.request(fid, [Demand(R("cpus:1;mem:128"), 4)])
    offers = h.allocate()[fid]
    assert {o.allocation_role for o in offers} == {"a", "b"}
    before = h.fingerprint()
    with pytest.raises(ValidationError, match="several roles"):
        h.state.accept(fid, [o.id for o in offers], [task("t1")], 0.0, h.now)
    assert h.fingerprint() == before


def test_a_new_master_accounts_reported_tasks_to_the_role_their_agent_kept(h: Harness) -> None:
    agent_id = h.agent("cpus:4;mem:1024")
    fid = two_roles(h)
    h.state.suppress(fid, ["a"])
    offer = h.allocate()[fid][0]
    h.launch(fid, offer, "tb")
    spec = h.state.frameworks[fid].tasks["tb"].spec
    assert spec.allocation_role == "b"
    info = h.state.frameworks[fid].info
    # A new master: the registry has the framework (roles kept, see the doc round trip),
    # the agent re-registers with the task and the role it kept.
    snap = RegistrySnapshot(
        agents={agent_id: h.state.agents[agent_id].info},
        frameworks={fid: framework_from_doc(framework_to_doc(info))},
    )
    fresh = MasterState(
        allocator=h.state.allocator, offer_timeout_s=30, agent_reregister_timeout_s=10
    )
    fresh.recover(snap, h.now)
    old = task("told", "cpus:1;mem:64")  # reported with no role (an older agent)
    fresh.register_agent(
        h.state.agents[agent_id].info,
        [(fid, spec, TaskState.RUNNING), (fid, old, TaskState.RUNNING)],
        h.now,
    )
    fw = fresh.frameworks[fid]
    assert fw.used_by_role == {"b": R("cpus:1;mem:128"), "a": R("cpus:1;mem:64")}
    assert fw.tasks["told"].spec.allocation_role == "a"  # the framework's first role


def test_registry_docs_keep_roles_and_old_docs_hold_their_one_role() -> None:
    info = FrameworkInfo(name="m", roles=("a", "b/c"), id=FrameworkId("fw-1"))
    assert framework_from_doc(framework_to_doc(info)) == info
    old = {"id": "fw-2", "name": "o", "role": "web"}  # written before `roles`
    back = framework_from_doc(old)
    assert back.roles == () and back.all_roles == ("web",)


@pytest.mark.parametrize(
    ("info", "field", "message"),
    [
        (FrameworkInfo(name="m", roles=("a", "a")), r"roles\[1\]", "appears twice"),
        (FrameworkInfo(name="m", roles=("a", "Bad!")), r"roles\[1\]", "got 'Bad!'"),
        (FrameworkInfo(name="m", roles=("a", "")), r"roles\[1\]", "got ''"),
        (FrameworkInfo(name="m", role="a", roles=("a", "b")), "framework_info.role", "roles wins"),
    ],
)
def test_bad_roles_are_rejected_and_change_nothing(
    h: Harness, info: FrameworkInfo, field: str, message: str
) -> None:
    h.agent()
    two_roles(h)
    before = h.fingerprint()
    with pytest.raises(ValidationError, match=message) as err:
        h.state.subscribe_framework(info, h.now)
    assert re.search(field, err.value.field or "")
    assert h.fingerprint() == before
    assert len(h.state.frameworks) == 1


def test_suppress_or_revive_of_a_role_the_framework_does_not_hold_is_rejected(
    h: Harness,
) -> None:
    fid = two_roles(h)
    before = h.fingerprint()
    with pytest.raises(ValidationError, match=r"'c' is not one of the framework's roles"):
        h.state.suppress(fid, ["a", "c"])
    with pytest.raises(ValidationError, match="roles"):
        h.state.revive(fid, ["c"])
    assert h.fingerprint() == before
    assert h.state.frameworks[fid].suppressed_roles == set()


def test_roles_may_change_on_re_subscription_but_not_leave_one_with_tasks(h: Harness) -> None:
    h.agent("cpus:4;mem:1024", "h1")
    fid = two_roles(h)
    offers = {o.allocation_role: o for o in h.allocate()[fid]}
    h.launch(fid, offers["a"], "ta", resources="cpus:1;mem:128")
    before = h.fingerprint()
    with pytest.raises(ValidationError, match="cannot leave role 'a'"):
        h.state.subscribe_framework(FrameworkInfo(name="multi", roles=("b",), id=fid), h.now)
    assert h.fingerprint() == before
    # The same roles in another order are the same roles; b (holding nothing) may go, c come.
    h.state.subscribe_framework(FrameworkInfo(name="multi", roles=("b", "a"), id=fid), h.now)
    h.state.subscribe_framework(FrameworkInfo(name="multi", roles=("a", "c"), id=fid), h.now)
    assert h.state.frameworks[fid].roles == ("a", "c")
    # The new role, holding nothing, is offered first.
    assert [o.allocation_role for o in h.allocate()[fid]] == ["c"]


def test_explain_says_per_role(h: Harness) -> None:
    h.agent("cpus:4;mem:1024", "h1")
    h.agent("cpus:4;mem:1024", "h2")
    fid = two_roles(h)
    h.allocate()
    e = h.state.explain(fid, h.now)
    assert e.role == "a,b"
    assert [r.role for r in e.roles] == ["a", "b"]
    assert all(r.last_reason.startswith("offered") for r in e.roles)
    assert all(r.offered == R("cpus:4;mem:1024") for r in e.roles)
    assert e.offered == R("cpus:8;mem:2048")
    assert e.roles[0].allocated == Resources.empty()


def test_roles_cross_the_wire_with_role_left_empty() -> None:
    from mesoslite.convert import framework_from_pb, framework_to_pb

    info = FrameworkInfo(name="m", roles=("a", "b"))
    msg = framework_to_pb(info)
    assert (msg.role, list(msg.roles)) == ("", ["a", "b"])
    assert framework_from_pb(msg) == info
    single = FrameworkInfo(name="s", role="web")
    assert framework_from_pb(framework_to_pb(single)) == single
