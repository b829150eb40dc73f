"""`AgentBook`: the master's agents by id, the ones marked gone, and their liveness windows."""

from __future__ import annotations

from collections.abc import ItemsView, Iterator, Mapping, ValuesView
from typing import Any

from mesoslite.errors import UnknownAgentError
from mesoslite.ids import AgentId, IdSequence
from mesoslite.master import records as rec
from mesoslite.master.registry.base import RegistrySnapshot


class AgentBook(Mapping[AgentId, rec.AgentRecord]):
    """Owns the agent records; readers see a read-only mapping, writers use its methods.

    Args:
        reregister_timeout_s: how long a disconnected agent has to register again.
        silence_limit_s: an active agent silent this long is unreachable (0: never).
    """

    def __init__(
        self, run_id: str | None, *, reregister_timeout_s: float, silence_limit_s: float
    ) -> None:
        self._agents: dict[AgentId, rec.AgentRecord] = {}
        # Agents marked gone this run (`agents.mark_gone`): they may not register again.
        self._gone: set[AgentId] = set()
        self._ids = IdSequence("ag", run_id)
        self.reregister_timeout_s = reregister_timeout_s
        self.silence_limit_s = silence_limit_s
        # Agents added, removed, or whose record's allocation fields were set since the
        # allocation pass last took this set (`MasterState.allocate`, #15).
        self.changed: set[AgentId] = set()

    def __getitem__(self, agent_id: AgentId) -> rec.AgentRecord:
        return self._agents[agent_id]

    def __iter__(self) -> Iterator[AgentId]:
        return iter(self._agents)

    def __len__(self) -> int:
        return len(self._agents)

    # The dict's own lookups, not `Mapping`'s (a `__getitem__` call and a `KeyError` each):
    # the master looks records up several times per task (#15).
    def get(self, key: AgentId, default: Any = None) -> Any:
        return self._agents.get(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self._agents

    def values(self) -> ValuesView[rec.AgentRecord]:
        return self._agents.values()

    def items(self) -> ItemsView[AgentId, rec.AgentRecord]:
        return self._agents.items()

    @property
    def gone(self) -> frozenset[AgentId]:
        return frozenset(self._gone)

    def is_gone(self, agent_id: AgentId) -> bool:
        return agent_id in self._gone

    def new_id(self) -> AgentId:
        return AgentId(self._ids())

    def require(self, agent_id: AgentId) -> rec.AgentRecord:
        """The agent a request names. Raises `UnknownAgentError`."""
        found = self._agents.get(agent_id)
        if found is None:
            if agent_id in self._gone:
                raise UnknownAgentError(f"agent {agent_id} was marked gone")
            raise UnknownAgentError(f"agent {agent_id!r} is not known")
        return found

    def is_active(self, agent_id: AgentId) -> bool:
        found = self._agents.get(agent_id)
        return found is not None and found.status == rec.AGENT_ACTIVE

    def add(self, agent: rec.AgentRecord) -> None:
        self._agents[agent.id] = agent
        self._watch(agent)

    def remove(self, agent_id: AgentId, *, gone: bool = False) -> None:
        """Forget the agent; `gone`: it may not register again with this id."""
        del self._agents[agent_id]
        self.changed.add(agent_id)
        if gone:
            self._gone.add(agent_id)

    def restore(self, agent: rec.AgentRecord) -> None:
        """Take back an agent `remove(gone=True)` dropped (its registry write failed)."""
        self._agents[agent.id] = agent
        self._watch(agent)
        self._gone.discard(agent.id)

    def _watch(self, agent: rec.AgentRecord) -> None:
        agent.changed = self.changed
        self.changed.add(agent.id)

    def seen(self, agent_id: AgentId, now: float) -> None:
        """A message came from the agent: it is alive (see `agents.expire`)."""
        agent = self._agents.get(agent_id)
        if agent is not None:
            agent.last_seen_at = now

    def pending_updates(self, agent_id: AgentId, count: int) -> None:
        """As of its last pong, the agent holds `count` unacknowledged updates."""
        agent = self._agents.get(agent_id)
        if agent is not None:
            agent.pending_updates = count

    def fresh_windows(self, now: float) -> None:
        """Disconnected agents get their whole re-registration window from `now`."""
        for agent in self._agents.values():
            if agent.disconnected_at is not None:
                agent.disconnected_at = now

    def recover(self, snap: RegistrySnapshot, now: float) -> None:
        """Admitted agents from the registry: disconnected until they register again."""
        self._gone |= snap.gone_agents
        for info in snap.agents.values():
            self._agents[info.id] = rec.AgentRecord(
                info=info, status=rec.AGENT_DISCONNECTED, registered_at=now, disconnected_at=now
            )
            self._watch(self._agents[info.id])

    def missed_reregistration(self, now: float) -> list[rec.AgentRecord]:
        """Disconnected agents whose re-registration window has passed."""
        return [
            a for a in self._agents.values()
            if a.status == rec.AGENT_DISCONNECTED
            and a.disconnected_at is not None
            and now >= a.disconnected_at + self.reregister_timeout_s
        ]

    def silent(self, now: float) -> list[rec.AgentRecord]:
        """Active agents that sent nothing for `silence_limit_s` (none if it is 0)."""
        if self.silence_limit_s <= 0:
            return []
        return [
            a for a in self._agents.values()
            if a.status == rec.AGENT_ACTIVE
            and a.last_seen_at is not None
            and now >= a.last_seen_at + self.silence_limit_s
        ]
