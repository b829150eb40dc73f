"""`Resources`: exact arithmetic (hypothesis properties), ranges, sets, parsing and errors."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mesoslite.errors import ValidationError
from mesoslite.resources import (
    SCALE,
    Resources,
    format_resources,
    parse_resources,
)

R = parse_resources

_scalar_names = st.sampled_from(["cpus", "mem", "disk", "gpus"])
# Thousandths up to 10^12 units: the whole valid range of a scalar.
_millis = st.integers(0, 10**15)
_scalars = st.dictionaries(_scalar_names, _millis.map(lambda m: m / SCALE))
_ranges = st.lists(
    st.tuples(st.integers(0, 200), st.integers(0, 20)).map(lambda t: (t[0], t[0] + t[1])),
    max_size=5,
)
_items = st.lists(st.sampled_from(["a", "b", "c", "d", "e"]), max_size=5)

scalar_resources = st.builds(Resources.of, _scalars)
resources = st.builds(
    lambda sc, ports, disks: Resources.of(sc, {"ports": ports}, {"disks": disks}),
    _scalars,
    _ranges,
    _items,
)


# -- arithmetic


@given(scalar_resources, scalar_resources)
def test_adding_then_subtracting_scalars_gives_back_the_original(
    a: Resources, b: Resources
) -> None:
    assert (a + b) - b == a


@given(resources, resources)
def test_adding_then_subtracting_gives_back_the_original_when_ranges_and_sets_are_disjoint(
    a: Resources, b: Resources
) -> None:
    # b's scalars, with its range values and set items that a lacks.
    b_only = b.minus_clamped(a)
    disjoint = Resources(scalars=b.scalars, ranges=b_only.ranges, sets=b_only.sets)
    assert (a + disjoint) - disjoint == a


@given(resources, resources)
def test_a_sum_contains_both_parts(a: Resources, b: Resources) -> None:
    assert (a + b).contains(a)
    assert (a + b).contains(b)


@given(resources, resources)
def test_addition_is_commutative(a: Resources, b: Resources) -> None:
    assert a + b == b + a


@given(resources)
def test_contains_is_reflexive_and_everything_contains_nothing(a: Resources) -> None:
    assert a.contains(a)
    assert a.contains(Resources.empty())
    assert Resources.empty().contains(a) == a.is_empty()


@given(resources, resources, resources)
def test_contains_is_transitive(c: Resources, x: Resources, y: Resources) -> None:
    b = c + x
    a = b + y
    assert a.contains(b) and b.contains(c)
    assert a.contains(c)


@given(resources, resources)
def test_bundles_that_contain_each_other_are_equal(a: Resources, b: Resources) -> None:
    if a.contains(b) and b.contains(a):
        assert a == b
    assert a.contains(a.minus_clamped(b))


@given(resources, resources)
def test_minus_clamped_stops_at_zero_and_keeps_no_empty_entries(a: Resources, b: Resources) -> None:
    left = a.minus_clamped(b)
    for name in a.scalars.keys() | b.scalars.keys():
        assert left.scalars.get(name, 0) == max(0, a.scalars.get(name, 0) - b.scalars.get(name, 0))
    assert all(v > 0 for v in left.scalars.values())
    assert all(left.ranges.values()) and all(left.sets.values())
    assert a.minus_clamped(a + b).is_empty()


def test_a_tenth_added_ten_thousand_times_is_exactly_one_thousand() -> None:
    tenth = Resources.of({"cpus": 0.1})
    total = Resources.empty()
    for _ in range(10_000):
        total = total + tenth
    assert total.scalars["cpus"] == 1_000_000
    assert total.scalar("cpus") == 1000.0
    assert total == Resources.of({"cpus": 1000})
    for _ in range(10_000):
        total = total - tenth
    assert total.is_empty()


@given(st.lists(st.integers(0, 10**6), max_size=50))
def test_sums_of_thousandths_are_exact(millis: list[int]) -> None:
    total = Resources.empty()
    for m in millis:
        total = total + Resources.of({"mem": m / SCALE})
    assert total.scalars.get("mem", 0) == sum(millis)


def test_sub_thousandth_values_round_to_the_nearest_thousandth() -> None:
    assert Resources.of({"cpus": 0.0014}).scalars == {"cpus": 1}
    assert Resources.of({"cpus": 0.0004}).is_empty()


# -- ranges and sets


def test_adjacent_and_overlapping_ranges_merge() -> None:
    assert R("ports:[1-5]") + R("ports:[6-10]") == R("ports:[1-10]")
    assert R("ports:[1-5]") + R("ports:[3-8]") == R("ports:[1-8]")
    assert (R("ports:[1-3]") + R("ports:[5-6]")).ranges["ports"] == ((1, 3), (5, 6))
    assert R("ports:[5-6,1-3,2-2]").ranges["ports"] == ((1, 3), (5, 6))


def test_subtracting_from_the_middle_of_a_range_splits_it() -> None:
    assert R("ports:[1-10]") - R("ports:[4-6]") == R("ports:[1-3,7-10]")
    assert R("ports:[1-10]") - R("ports:[1-10]") == Resources.empty()
    assert R("ports:[1-10]").minus_clamped(R("ports:[0-2,9-20]")) == R("ports:[3-8]")


def test_range_containment_needs_every_value() -> None:
    assert R("ports:[1-10]").contains(R("ports:[2-3,7-9]"))
    assert not R("ports:[1-5,7-10]").contains(R("ports:[4-8]"))


def test_sets_add_subtract_and_contain_by_item() -> None:
    assert R("disks:{a,b}") + R("disks:{b,c}") == R("disks:{a,b,c}")
    assert R("disks:{a,b,c}") - R("disks:{b}") == R("disks:{a,c}")
    assert R("disks:{a,b}").contains(R("disks:{a}"))
    assert not R("disks:{a,b}").contains(R("disks:{c}"))


def test_quantity_counts_any_kind() -> None:
    r = R("cpus:2.5;ports:[1-10,21-30];disks:{a,b,c}")
    assert r.quantity("cpus") == 2.5
    assert r.quantity("ports") == 20.0
    assert r.quantity("disks") == 3.0
    assert r.quantity("gpus") == 0.0


# -- text


_formattable = st.dictionaries(
    _scalar_names,
    st.one_of(st.integers(0, 10**12).map(float), st.integers(0, 10**12).map(lambda m: m / SCALE)),
)
formattable_resources = st.builds(
    lambda sc, ports, disks: Resources.of(sc, {"ports": ports}, {"disks": disks}),
    _formattable,
    _ranges,
    _items,
)


@given(formattable_resources)
def test_format_then_parse_gives_back_the_same_resources(r: Resources) -> None:
    assert parse_resources(format_resources(r)) == r
    assert parse_resources(str(r)) == r


@pytest.mark.parametrize("text", ["mem:1048576", "cpus:1234.567", "disk:1234567890.123"])
def test_format_keeps_every_digit_of_a_large_scalar(text: str) -> None:
    # Regression: `:g` formatting once turned mem:1048576 into mem:1.04858e+06.
    assert parse_resources(format_resources(R(text))) == R(text)
    assert format_resources(R(text)) == text


def test_parse_reads_every_kind_and_ignores_spaces_and_empty_parts() -> None:
    r = R(" cpus : 4 ; mem:1024.5;;ports:[31000-31009, 32000];disks:{ssd1, ssd2} ;")
    assert r.scalars == {"cpus": 4000, "mem": 1_024_500}
    assert r.ranges == {"ports": ((31000, 31009), (32000, 32000))}
    assert r.sets == {"disks": frozenset({"ssd1", "ssd2"})}
    assert format_resources(r) == (
        "cpus:4;mem:1024.5;ports:[31000-31009,32000-32000];disks:{ssd1,ssd2}"
    )


def test_parse_of_nothing_is_empty() -> None:
    assert R("") == Resources.empty()
    assert R("cpus:0") == Resources.empty()


@pytest.mark.parametrize(
    ("text", "wanted"),
    [
        ("cpus:-1", "must be >= 0, got -1"),
        ("cpus:nan", "must be a finite number, got nan"),
        ("cpus:inf", "must be a finite number, got inf"),
        ("cpus:-inf", "must be a finite number"),
        ("cpus:1e13", "must be at most 1e+12, got 1e+13"),
        ("cpus=4", "expected NAME:VALUE, got 'cpus=4'"),
        ("cpus:", "expected NAME:VALUE"),
        ("cpus:abc", "'abc' is not a number"),
        ("cpus:[1-2", "unclosed range list"),
        ("cpus:{a", "unclosed set"),
        ("cpus:[5-3]", "bad range '5-3'"),
        ("cpus:[a-b]", "bad range 'a-b'"),
        ("cpus:1;cpus:2", "is given twice"),
        ("cpus:[1-2];cpus:{a}", "is given twice"),
        ("mem:1;cpus:2;cpus:3", "is given twice"),
    ],
)
def test_parse_errors_name_the_resource(text: str, wanted: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_resources(text)
    message = str(info.value)
    assert "cpus" in message
    assert wanted in message
    assert info.value.field.startswith("resources")


def test_parse_error_for_a_bad_name_quotes_it() -> None:
    with pytest.raises(ValidationError, match="name 'CPUS' is not valid"):
        parse_resources("CPUS:1")


def test_parse_errors_carry_the_callers_field() -> None:
    with pytest.raises(ValidationError) as info:
        parse_resources("cpus:-1", field="tasks[0].resources")
    assert info.value.field == "tasks[0].resources.cpus"
