"""`Resources` subtraction: `-` refuses to go negative, `minus_clamped` stops at zero (#17),
and `<=`/`>=` are containment."""

from __future__ import annotations

import pytest
from hypothesis import given

from mesoslite.resources import Resources, parse_resources
from tests.unit.test_resources import resources

R = parse_resources


def test_subtraction_that_would_go_negative_raises_naming_the_resource_and_amounts() -> None:
    # The example of issue 17: this used to give `mem:32` silently.
    with pytest.raises(ValueError, match=r"cpus: 1 - 2 \(use minus_clamped\(\)") as info:
        R("cpus:1;mem:64") - R("cpus:2;mem:32")
    assert "mem" not in str(info.value)  # only what is short is named


def test_subtraction_of_a_missing_resource_names_it() -> None:
    with pytest.raises(ValueError, match=r"gpus: 0 - 1\b"):
        R("cpus:1") - R("gpus:1")


def test_subtraction_of_range_values_or_set_items_not_held_raises() -> None:
    with pytest.raises(ValueError, match=r"ports: wants \[4-8\], has \[1-5\]"):
        R("ports:[1-5]") - R("ports:[4-8]")
    with pytest.raises(ValueError, match=r"disks: missing \{c\}"):
        R("disks:{a,b}") - R("disks:{b,c}")


def test_subtracting_everything_there_is_leaves_nothing() -> None:
    assert (R("cpus:1;mem:64;ports:[1-3]") - R("cpus:1;mem:64;ports:[1-3]")).is_empty()


def test_minus_clamped_is_the_named_way_to_stop_at_zero() -> None:
    assert R("cpus:1;mem:64").minus_clamped(R("cpus:2;mem:32")) == R("mem:32")
    assert R("ports:[1-5]").minus_clamped(R("ports:[4-8]")) == R("ports:[1-3]")
    assert R("disks:{a,b}").minus_clamped(R("disks:{b,c}")) == R("disks:{a}")


@given(resources, resources)
def test_subtraction_succeeds_exactly_when_the_left_side_contains_the_right(
    a: Resources, b: Resources
) -> None:
    if a.contains(b):
        left = a - b
        assert left == a.minus_clamped(b)
        assert left + b == a
    else:
        with pytest.raises(ValueError, match="would go negative"):
            a - b


@given(resources, resources)
def test_le_and_ge_are_containment(a: Resources, b: Resources) -> None:
    assert (a <= b) == b.contains(a)
    assert (a >= b) == a.contains(b)
    assert a <= a + b and a + b >= b
