"""`SSFPolicy`: shortest-distance first.

Who is offered next is decided as in `drf` (weighted dominant share). *Where* differs: each
framework's agents are ranked by distance to where it wants to run, from its locality hints
(`agent:ID`, `rack:NAME`, `zone:NAME`, or a bare agent id or hostname), or else from the
agents its tasks run on: the same agent, then the same rack, then the same zone (agent
attributes `rack` and `zone`), then elsewhere. Within a distance, best fit: the agent with
the least free resources first (as of the start of the pass), ties by a seeded hash.
Offers left unused are reclaimed by the master after `offer_timeout`, as for every policy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence

from mesoslite.allocator.agents import agent_order
from mesoslite.allocator.base import AgentView, FrameworkView
from mesoslite.allocator.drf import DRFPolicy
from mesoslite.allocator.live import LiveOrder
from mesoslite.ids import AgentId
from mesoslite.resources import SCALE

RACK = "rack"
ZONE = "zone"


class SSFPolicy(DRFPolicy):
    """DRF order of roles and frameworks; agents ranked by distance, then best fit."""

    name = "ssf"

    def __init__(self, rack_attribute: str = RACK, zone_attribute: str = ZONE) -> None:
        super().__init__()
        self.rack_attribute = rack_attribute
        self.zone_attribute = zone_attribute

    def __repr__(self) -> str:
        return "SSFPolicy()"

    def agent_ranker(
        self, agents: Sequence[AgentView], seed: int, alive: Callable[[AgentId], bool]
    ) -> Callable[[FrameworkView, int], Iterable[tuple[int, AgentId]]]:
        ranking = self._last
        if (
            ranking is None
            or ranking.agents is not agents
            or ranking.seed != seed
            or ranking.rack_attribute != self.rack_attribute
            or ranking.zone_attribute != self.zone_attribute
        ):
            ranking = _Ranking(self, agents, seed)
            # Kept for the next pass over the same agents (an immutable tuple; a full pass
            # over the same view, #15).
            self._last = ranking if isinstance(agents, tuple) else None
        return _Ranker(ranking, alive)

    _last: _Ranking | None = None


class _Ranking:
    """What ranking depends on of the agents alone (their free resources and attributes
    at the start of a pass): the best-fit order, and names, racks and zones."""

    def __init__(self, policy: SSFPolicy, agents: Sequence[AgentView], seed: int) -> None:
        self.agents = agents
        self.seed = seed
        self.rack_attribute, self.zone_attribute = policy.rack_attribute, policy.zone_attribute
        # Best fit: the least free first (cpus, then mem), ties in seeded order: a stable
        # sort of the seeded order (`Resources.scalar` inlined: every agent, each pass, #15).
        self.ordered = sorted(
            agent_order(list(agents), seed),
            key=lambda a: (
                a.free.scalars.get("cpus", 0) / SCALE,
                a.free.scalars.get("mem", 0) / SCALE,
            ),
        )
        self.ids = [a.id for a in self.ordered]
        # Names, racks and zones, made when a framework first asks (`index`): most passes
        # need few of them, or none (#15).
        self._indexed = False
        self._position: dict[AgentId, int] | None = None
        self.by_name: dict[str, AgentId] = {}
        self.rack_of: dict[AgentId, str] = {}
        self.zone_of: dict[AgentId, str] = {}
        self.racks: dict[str, list[AgentId]] = {}
        self.zones: dict[str, list[AgentId]] = {}

    @property
    def position(self) -> dict[AgentId, int]:
        """Each agent's place in the best-fit order."""
        if self._position is None:
            self._position = {agent_id: i for i, agent_id in enumerate(self.ids)}
        return self._position

    def index(self) -> None:
        if self._indexed:
            return
        self._indexed = True
        rack_attribute, zone_attribute = self.rack_attribute, self.zone_attribute
        for agent in self.ordered:
            self.by_name.setdefault(agent.id, agent.id)
            self.by_name.setdefault(agent.hostname, agent.id)
            rack = agent.attributes.get(rack_attribute)
            zone = agent.attributes.get(zone_attribute)
            if rack:
                self.rack_of[agent.id] = rack
                self.racks.setdefault(rack, []).append(agent.id)
            if zone:
                self.zone_of[agent.id] = zone
                self.zones.setdefault(zone, []).append(agent.id)


class _Ranker:
    def __init__(self, ranking: _Ranking, alive: Callable[[AgentId], bool]) -> None:
        self.ranking = ranking
        self.order = LiveOrder(ranking.ids, alive)
        self._prefixes: dict[str, list[AgentId]] = {}
        self._prefix_sets: dict[str, set[AgentId]] = {}

    def __call__(self, fw: FrameworkView, begin: int) -> Iterator[tuple[int, AgentId]]:
        # Positions: the preferred agents first (0..n-1), then every agent by best fit
        # (n + its place in `order`), skipping the preferred ones.
        prefix = self._prefix(fw)
        n = len(prefix)
        for i in range(begin, n):
            if self.order.alive(prefix[i]):
                yield i, prefix[i]
        skip = self._prefix_sets.get(fw.id) if n else None
        for i, agent_id in self.order.iter_from(max(0, begin - n)):
            if skip is None or agent_id not in skip:
                yield n + i, agent_id

    def first_unfiltered(
        self, fw: FrameworkView, begin: int, now: float
    ) -> tuple[int, AgentId] | None:
        """The first (position, agent) that `self(fw, begin)` yields and `fw` is not
        filtered on at `now`, without a generator (a pass asks once per grant, #15)."""
        filters = fw.filters
        prefix = self._prefix(fw)
        n = len(prefix)
        if begin < n:
            alive = self.order.alive
            for i in range(begin, n):
                agent_id = prefix[i]
                if alive(agent_id) and (
                    not filters or (until := filters.get(agent_id)) is None or until <= now
                ):
                    return i, agent_id
        skip = self._prefix_sets.get(fw.id) if n else None
        order = self.order
        ids, next_live = order.ids, order.next_live
        end = len(ids)
        i = next_live(max(0, begin - n))
        while i < end:
            agent_id = ids[i]
            if (skip is None or agent_id not in skip) and (
                not filters or (until := filters.get(agent_id)) is None or until <= now
            ):
                return n + i, agent_id
            i = next_live(i + 1)
        return None

    def _prefix(self, fw: FrameworkView) -> list[AgentId]:
        cached = self._prefixes.get(fw.id)
        if cached is not None:
            return cached
        near, racks, zones = self._wants(fw)
        prefix: list[AgentId] = []
        seen: set[AgentId] = set()
        for group in (
            sorted(near, key=self.ranking.position.__getitem__) if near else (),
            *(self.ranking.racks.get(r, []) for r in sorted(racks)),
            *(self.ranking.zones.get(z, []) for z in sorted(zones)),
        ):
            for agent_id in group:
                if agent_id not in seen:
                    seen.add(agent_id)
                    prefix.append(agent_id)
        self._prefixes[fw.id] = prefix
        if prefix:
            self._prefix_sets[fw.id] = seen
        return prefix

    def _wants(self, fw: FrameworkView) -> tuple[set[AgentId], set[str], set[str]]:
        if fw.locality or fw.running_on:
            self.ranking.index()
        near: set[AgentId] = set()
        racks: set[str] = set()
        zones: set[str] = set()
        if fw.locality:
            for hint in fw.locality:
                kind, _, value = hint.partition(":")
                if kind == "rack" and value:
                    racks.add(value)
                elif kind == "zone" and value:
                    zones.add(value)
                elif kind == "agent" and value:
                    if value in self.ranking.by_name:
                        near.add(self.ranking.by_name[value])
                elif hint in self.ranking.by_name:
                    near.add(self.ranking.by_name[hint])
            return near, racks, zones
        for agent_id in fw.running_on:
            if agent_id in self.ranking.position:
                near.add(agent_id)
            if agent_id in self.ranking.rack_of:
                racks.add(self.ranking.rack_of[agent_id])
            if agent_id in self.ranking.zone_of:
                zones.add(self.ranking.zone_of[agent_id])
        return near, racks, zones
