"""Parts of an allocation pass made faster for #15 give what the plain code gives."""

from __future__ import annotations

from dataclasses import FrozenInstanceError

import pytest

from mesoslite.allocator.allocation_pass import new_grant
from mesoslite.allocator.arith import add_into
from mesoslite.allocator.base import OfferGrant
from mesoslite.ids import AgentId, FrameworkId
from mesoslite.resources import Resources, parse_resources


def test_a_grant_made_fast_is_the_offer_grant_the_constructor_makes() -> None:
    args = (
        FrameworkId("f1"), AgentId("a1"), parse_resources("cpus:2;ports:[1-3]"),
        {"web": parse_resources("cpus:1")}, 3, "web",
    )
    fast, plain = new_grant(*args), OfferGrant(*args)
    assert type(fast) is OfferGrant
    assert fast == plain and repr(fast) == repr(plain)
    with pytest.raises(FrozenInstanceError):
        fast.tasks = 4  # type: ignore[misc]


def test_summing_into_an_owned_bundle_equals_plus_and_leaves_the_callers_alone() -> None:
    theirs = parse_resources("cpus:1;mem:64;ports:[31000-31010]")
    grants = [
        parse_resources("cpus:2;mem:128;ports:[31000-31010]"),
        parse_resources("cpus:0.5"),
        parse_resources("cpus:1;ports:[32000-32001]"),  # a range it lacks: a new bundle
        parse_resources("mem:1;disk:5"),
    ]
    held, owned, expected = theirs, False, theirs
    for grant in grants:
        held = add_into(held, grant, owned)
        owned = True
        expected = expected + grant
        assert held == expected
    assert theirs == parse_resources("cpus:1;mem:64;ports:[31000-31010]"), "caller's unchanged"
    assert add_into(Resources.empty(), grants[1], False) == grants[1]
