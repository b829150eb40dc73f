"""`PassScope`: whether the master's next allocation pass must be full, or may offer only
the agents changed since the last one (`HierarchicalAllocator.allocate_agents`, #15).

Why an incremental pass makes the full pass's offers: after a pass, an agent left with
free resources is one no candidate framework could take (filtered, suppressed, no demand
that fits, quota). A later full pass would offer it only if the agent changed (then it is
in the incremental pass) or a framework can now take what it could not: it subscribed or
took a new role, was revived (unsuppressed, or its filters cleared), a filter expired, or
its outstanding demands grew (a REQUEST, or an offer sized to them declined). Those, and
anything global (weights, priority tiers, any quota, preemption holds), make the next pass
full; so do the periodic pass (`want_full`) and the first pass after a (re)start. Which
framework goes first among several changes nothing of this: it only orders the grants of
the agents in the pass, which both passes make alike.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from mesoslite.allocator.base import Demand, FrameworkView
from mesoslite.ids import AgentId, FrameworkId
from mesoslite.master.books import MasterBooks

Client = tuple[FrameworkId, str]


class PassScope:
    """Remembers the frameworks and roles of the last pass; `must_be_full` compares."""

    def __init__(self) -> None:
        self.want_full = True  # the first pass after a (re)start is full
        self._frameworks: dict[Client, FrameworkView] = {}
        self._roles: tuple[dict[str, float], dict[str, int]] | None = None

    def must_be_full(
        self,
        books: MasterBooks,
        frameworks: Sequence[FrameworkView],
        changed: Collection[AgentId],
    ) -> bool:
        """True if the pass over `frameworks` must offer every agent; `changed`: the agents
        whose views were rebuilt for it. Remembers `frameworks` for the next call."""
        roles = (dict(books.roles.weights), dict(books.roles.priorities))
        current = {(f.id, f.role): f for f in frameworks}
        full = (
            self.want_full
            or bool(books.roles.quotas)
            or bool(books.preemption.holds)
            or roles != self._roles
            or current.keys() != self._frameworks.keys()
        )
        if not full:
            unchanged = changed if isinstance(changed, set | frozenset) else set(changed)
            full = any(
                _may_take_more(old, current[key], unchanged)
                for key, old in self._frameworks.items()
            )
        self._frameworks = current
        self._roles = roles
        self.want_full = False
        return full


def _may_take_more(old: FrameworkView, new: FrameworkView, changed: Collection[AgentId]) -> bool:
    """True if `new` may be granted, on an agent outside `changed`, what `old` was not."""
    if old.suppressed and not new.suppressed:
        return True
    new_filters = new.filters
    for agent_id in old.filters:
        if agent_id not in new_filters and agent_id not in changed:
            return True  # expired or revived: that agent is open to it again
    return old.demands != new.demands and not _within(new.demands, old.demands)


def _within(new: Sequence[Demand], old: Sequence[Demand]) -> bool:
    """True if `new` asks for no task `old` did not: the same shapes, no count higher."""
    if len(new) != len(old):
        return False
    return all(
        n.resources == o.resources and n.count <= o.count for n, o in zip(new, old, strict=True)
    )
