"""The grants of an allocation pass: what a client holds of an agent while the pass runs
(`Grant`), and the `OfferGrant`s the pass returns, made cheaply (`new_grant`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import fields

from mesoslite.allocator.base import OfferGrant
from mesoslite.ids import AgentId, FrameworkId
from mesoslite.resources import Resources


class Grant:
    """What a pass has granted one client on one agent so far (summed over its grants)."""

    __slots__ = ("resources", "reserved", "tasks")

    def __init__(self, resources: Resources, reserved: dict[str, Resources], tasks: int) -> None:
        self.resources = resources
        self.reserved = reserved
        self.tasks = tasks


def _grant_maker() -> Callable[..., OfferGrant]:
    """`OfferGrant(...)` at half the cost, for a pass's thousands of grants (#15): a frozen
    dataclass's `__init__` sets each field through `object.__setattr__`; this sets its
    slots directly. Same object (`tests/unit/allocator/test_pass_parts.py`)."""
    names = [f.name for f in fields(OfferGrant)]
    setters = [getattr(OfferGrant, name).__set__ for name in names]
    make = object.__new__
    if len(setters) != 6:
        return OfferGrant
    s0, s1, s2, s3, s4, s5 = setters

    def new(
        framework_id: FrameworkId,
        agent_id: AgentId,
        resources: Resources,
        reserved: Mapping[str, Resources],
        tasks: int,
        role: str,
    ) -> OfferGrant:
        grant: OfferGrant = make(OfferGrant)
        s0(grant, framework_id)
        s1(grant, agent_id)
        s2(grant, resources)
        s3(grant, reserved)
        s4(grant, tasks)
        s5(grant, role)
        return grant

    return new


new_grant = _grant_maker()
