"""`Tally` and the records' in-place sums give exactly what immutable `Resources` arithmetic
gives, including ports (ranges), sets, clamping and the error of an overdrawn subtraction."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mesoslite.master import records as rec
from mesoslite.master.tally import Tally
from mesoslite.model import AgentInfo, FrameworkInfo
from mesoslite.resources import Resources, parse_resources

_bundles = st.sampled_from(
    [
        "cpus:1",
        "cpus:0.5;mem:64",
        "mem:128",
        "cpus:2;mem:256;gpus:1",
        "ports:[31000-31001]",
        "cpus:1;ports:[31001-31003]",
        "cpus:1;disks:{a,b}",
        "disks:{b}",
    ]
).map(parse_resources)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["add", "minus", "clamped"]), _bundles), max_size=25))
def test_a_tally_follows_plain_arithmetic(steps: list[tuple[str, Resources]]) -> None:
    tally, plain = Tally(), Resources.empty()
    for op, res in steps:
        if op == "add":
            tally.add(res)
            plain = plain + res
        elif op == "clamped":
            tally.subtract(res, clamp=True)
            plain = plain.minus_clamped(res)
        else:
            try:
                expected = plain - res
            except ValueError as e:
                with pytest.raises(ValueError) as raised:
                    tally.subtract(res, clamp=False)
                assert str(raised.value) == str(e)
                assert tally.value == plain  # nothing changed
                continue
            tally.subtract(res, clamp=False)
            plain = expected
        assert tally.value == plain
        assert str(tally.value) == str(plain)
        assert tally.is_empty() == plain.is_empty()
        assert dict(tally.scalars) == dict(plain.scalars)


def test_a_tally_reads_as_the_same_bundle_until_it_changes() -> None:
    tally = Tally(parse_resources("cpus:1"))
    first = tally.value
    assert tally.value is first
    tally.add(parse_resources("cpus:1"))
    second = tally.value
    assert second is not first
    assert first == parse_resources("cpus:1")  # a bundle read earlier never changes
    assert second == parse_resources("cpus:2")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["use", "unuse", "hold", "release"]), _bundles)))
def test_an_agents_in_place_sums_are_those_of_plain_arithmetic(
    steps: list[tuple[str, Resources]],
) -> None:
    total = parse_resources("cpus:8;mem:1024;gpus:2;ports:[31000-31010];disks:{a,b}")
    agent = rec.AgentRecord(AgentInfo(hostname="h", resources=total), "active", 0.0)
    changed: set[str] = set()
    agent.changed = changed  # type: ignore[assignment]
    used, offered = Resources.empty(), Resources.empty()
    for op, res in steps:
        changed.clear()
        if op == "use":
            agent.use(res)
            used = used + res
        elif op == "unuse":
            agent.unuse(res)
            used = used.minus_clamped(res)
        elif op == "hold":
            agent.hold(res)
            offered = offered + res
        elif not offered.contains(res):
            with pytest.raises(ValueError):
                agent.release(res)
            continue
        else:
            agent.release(res)
            offered = offered - res
        assert changed == {agent.id}  # the next allocation pass looks at it again
        assert agent.used == used and agent.offered == offered
        assert agent.free == total.minus_clamped(used + offered)
        for grant in (parse_resources("cpus:1"), parse_resources("cpus:4;mem:512")):
            assert agent.fits(grant) == agent.free.contains(grant)


def test_a_framework_in_a_second_role_leaves_the_first_roles_sum_alone() -> None:
    fw = rec.FrameworkRecord(FrameworkInfo(name="fw", roles=("a", "b")), "connected", 0.0)
    one = parse_resources("cpus:1")
    fw.add_used("a", one)  # one role so far: its sum and the total are one tally
    fw.add_used("b", one)
    assert fw.used_by_role == {"a": one, "b": one}
    fw.remove_used("b", one)
    fw.remove_used("b", one)  # nothing left in b: clamped, a is untouched
    assert fw.used_by_role == {"a": one}
    assert fw.used.is_empty()  # the total was clamped at zero, as before
    assert fw.used_by_role.pop("a") == one
    assert fw.used_by_role == {}
