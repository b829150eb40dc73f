"""Parts of an allocation pass made faster for #15 give what the plain code gives."""

from __future__ import annotations

import hashlib
from dataclasses import FrozenInstanceError

import pytest

from mesoslite.allocator.agents import agent_order
from mesoslite.allocator.arith import add_into
from mesoslite.allocator.base import AgentView, OfferGrant
from mesoslite.allocator.grants import new_grant
from mesoslite.ids import AgentId, FrameworkId
from mesoslite.resources import Resources, parse_resources


def test_a_grant_made_fast_is_the_offer_grant_the_constructor_makes() -> None:
    args = (
        FrameworkId("f1"),
        AgentId("a1"),
        parse_resources("cpus:2;ports:[1-3]"),
        {"web": parse_resources("cpus:1")},
        3,
        "web",
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


def _reference_order(agents: list[AgentView], seed: int) -> list[AgentView]:
    """The order as first written: sorted by (blake2b(seed, id) digest bytes, id)."""
    prefix = f"{seed}\0".encode()

    def key(agent: AgentView) -> tuple[bytes, str]:
        return (hashlib.blake2b(prefix + agent.id.encode(), digest_size=8).digest(), agent.id)

    return sorted(agents, key=key)


def test_the_agent_order_is_the_digest_order_it_always_was() -> None:
    total = parse_resources("cpus:1")
    agents = [AgentView(AgentId(f"a{i}"), f"h{i}", total, total) for i in range(300)]
    # Duplicate ids (the caller's error) tie on the digest: the fallback keeps the order.
    agents += [AgentView(AgentId("a7"), "dup", total, total)]
    for seed in (0, 1, 42):
        assert agent_order(agents, seed) == _reference_order(agents, seed)
