"""`Resources` arithmetic's fast paths (#15) build the bundles `Resources(...)` builds."""

from __future__ import annotations

import dataclasses

import pytest

from mesoslite.resources import Resources, parse_resources

A = parse_resources("cpus:4;mem:1024;ports:[31000-31010]")
B = parse_resources("cpus:1;mem:1024")


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        (A + B, "cpus:5;mem:2048;ports:[31000-31010]"),
        (A - B, "cpus:3;ports:[31000-31010]"),
        (B.minus_clamped(A), ""),
        (B + B - B, "cpus:1;mem:1024"),
    ],
)
def test_arithmetic_results_equal_bundles_built_from_text_and_stay_frozen(
    result: Resources, expected: str
) -> None:
    assert result == parse_resources(expected)
    assert type(result) is Resources
    assert str(result) == str(parse_resources(expected))
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.scalars = {}  # type: ignore[misc]
    assert dataclasses.replace(result) == result


def test_a_sum_shares_nothing_mutable_with_its_operands() -> None:
    total = A + B
    assert A.scalars == {"cpus": 4000, "mem": 1024000}
    assert total.scalars is not A.scalars and total.scalars is not B.scalars
    left = A - B
    assert left.scalars is not A.scalars
    assert A.scalars == {"cpus": 4000, "mem": 1024000}
