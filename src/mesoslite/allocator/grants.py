"""The grants of an allocation pass: what a client holds of an agent while the pass runs
(`Grant`), the pass's book of them (`GrantBook`), and the `OfferGrant`s the pass returns,
made cheaply (`new_grant`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import fields
from operator import itemgetter

from mesoslite.allocator.arith import plus
from mesoslite.allocator.base import OfferGrant
from mesoslite.ids import AgentId, FrameworkId
from mesoslite.resources import Resources

GrantKey = tuple[FrameworkId, str, AgentId]  # (framework, role, agent)
Client = tuple[FrameworkId, str]  # a framework in one of its roles


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


class GrantBook:
    """A pass's grants by (framework, role, agent): a `Grant` summed while the pass runs,
    or a whole agent's offer, final when made (the `OfferGrant` itself, #15)."""

    __slots__ = ("by_key", "open")

    def __init__(self) -> None:
        self.by_key: dict[GrantKey, Grant | OfferGrant] = {}
        self.open: list[GrantKey] = []  # the keys of the `Grant`s

    def record(
        self, key: GrantKey, resources: Resources, reserved: dict[str, Resources], tasks: int
    ) -> None:
        """A grant of `resources` (`reserved`: the parts from reservations, by role)."""
        if key not in self.by_key:
            self.by_key[key] = Grant(resources, reserved, tasks)
            self.open.append(key)
            return
        grant = self.by_key[key]
        if isinstance(grant, OfferGrant):  # a whole agent's offer, made final: reopened
            grant = self.by_key[key] = Grant(grant.resources, dict(grant.reserved), grant.tasks)
            self.open.append(key)
        grant.resources = plus(grant.resources, resources)
        for path, part in reserved.items():
            grant.reserved[path] = grant.reserved.get(path, Resources.empty()) + part
        grant.tasks += tasks

    def counts(
        self,
    ) -> tuple[dict[tuple[FrameworkId, str], int], dict[tuple[FrameworkId, str], int]]:
        """(agents granted from, tasks' worth granted) per client; no entry for no tasks."""
        agents: dict[tuple[FrameworkId, str], int] = Counter(map(_CLIENT, self.by_key))
        tasks: dict[tuple[FrameworkId, str], int] = {}
        for key in self.open:  # only `Grant`s carry tasks
            n = self.by_key[key].tasks
            if n:
                client = (key[0], key[1])
                tasks[client] = tasks.get(client, 0) + n
        return agents, tasks

    def offers(self) -> tuple[OfferGrant, ...]:
        if not self.open:  # whole agents' offers only: made already
            return tuple(self.by_key.values())  # type: ignore[arg-type]
        return tuple(
            g
            if type(g) is OfferGrant
            else new_grant(fid, agent_id, g.resources, dict(g.reserved), g.tasks, role)
            for (fid, role, agent_id), g in self.by_key.items()
        )


_CLIENT = itemgetter(0, 1)  # a grant's key -> its client
