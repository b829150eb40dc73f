"""`MasterState`: the master's bookkeeping as a synchronous, deterministic state machine.

Design:
- Each public method handles one event (a framework subscribing, an accept, an agent's
  status updates, the clock ticking), validates it completely *before* changing anything,
  then mutates and returns the effects for the shell to carry out (`events.py`). A rejected
  request raises a `MesosliteError` and leaves the state exactly as it was.
- Nothing here awaits, sends, or reads a clock: `now` is an argument. The same code runs in
  the daemon (`actor.py`), in unit tests on a virtual clock, and in the simulator.
- Invariants: an agent's `used + offered` is the sum of its live tasks and outstanding
  offers; a framework's likewise; every offer is indexed by its agent and its framework.
- Agents are the source of truth for tasks: after a master restart, tasks are rebuilt from
  the agents' re-registrations; the registry keeps only agents and frameworks.
- `MasterState` is the façade: it holds the records and takes the events; the work is done
  by functions that take it, in modules named for what they handle: `frameworks.py`,
  `agents.py`, `tasks.py` (status updates, kills, reconciliation), `accept.py` (ACCEPT and
  DECLINE), `allocation.py` (the allocator's view, offers, `explain`) and `lookup.py`.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterable, Sequence

from mesoslite.allocator.base import Allocator, Demand
from mesoslite.ids import AgentId, FrameworkId, IdSequence, OfferId, TaskId
from mesoslite.master import accept as _accept  # `accept` names a method here
from mesoslite.master import agents, allocation, frameworks, lookup
from mesoslite.master import records as rec
from mesoslite.master import tasks as _tasks  # `tasks` names a parameter here
from mesoslite.master.allocation import LOCALITY_LABEL as LOCALITY_LABEL  # for sim/engine.py
from mesoslite.master.events import Effect, PersistRegistry
from mesoslite.master.offers import OfferBook
from mesoslite.master.registry.base import RegistrySnapshot
from mesoslite.master.reservations import ReservationBook
from mesoslite.master.roles import Explanation, RoleBook, RoleStatus
from mesoslite.master.tasks import TaskKey
from mesoslite.model import AgentInfo, FrameworkInfo, TaskSpec, TaskState, TaskStatus
from mesoslite.resources import Resources

logger = logging.getLogger(__name__)


class MasterState:
    """The master's agents, frameworks, offers and tasks. See the module docstring."""

    def __init__(
        self,
        *,
        allocator: Allocator,
        offer_timeout_s: float,
        agent_reregister_timeout_s: float,
        agent_ping_timeout_s: float = 0.0,
        max_agent_ping_timeouts: int = 3,
        seed: int = 0,
        run_id: str | None = None,
    ) -> None:
        self.allocator = allocator
        policy = getattr(allocator, "policy", allocator)
        self._locality_aware = callable(getattr(policy, "agent_ranker", None))
        self.offer_timeout_s = offer_timeout_s
        self.agent_reregister_timeout_s = agent_reregister_timeout_s
        # An active agent silent for this long is unreachable (Mesos's agent_ping_timeout x
        # max_agent_ping_timeouts); 0 (the default here, not in the daemon) never.
        self.agent_silence_limit_s = agent_ping_timeout_s * max_agent_ping_timeouts
        self.agents: dict[AgentId, rec.AgentRecord] = {}
        self.frameworks: dict[FrameworkId, rec.FrameworkRecord] = {}
        self.completed_frameworks: OrderedDict[FrameworkId, rec.FrameworkRecord] = OrderedDict()
        self.completed_tasks: OrderedDict[TaskKey, rec.TaskRecord] = OrderedDict()
        self.offers = OfferBook(run_id)
        self.allocation_wanted = False
        self.last_reasons: dict[FrameworkId, str] = {}
        self.last_role_reasons: dict[FrameworkId, dict[str, str]] = {}
        self.roles = RoleBook()
        self.reservations = ReservationBook()
        # RESERVE/UNRESERVE: agent -> role -> resources, beside the agents' static ones.
        self.dynamic_reservations: dict[AgentId, dict[str, Resources]] = {}
        self._seed = seed
        self._rounds = 0
        self._agent_ids = IdSequence("ag", run_id)
        # Agents marked gone this run (`mark_agent_gone`): they may not register again.
        self.gone_agents: set[AgentId] = set()

    # ------------------------------------------------------------------ recovery

    def recover(self, snap: RegistrySnapshot, now: float) -> None:
        """Load the registry after a (re)start: agents must re-register, frameworks re-subscribe."""
        self.roles.recover(snap)
        self.dynamic_reservations = {a: dict(r) for a, r in snap.reservations.items()}
        self.gone_agents |= snap.gone_agents
        for info in snap.agents.values():
            self.agents[info.id] = rec.AgentRecord(
                info=info, status=rec.AGENT_DISCONNECTED, registered_at=now, disconnected_at=now
            )
        for fw in snap.frameworks.values():
            self.frameworks[fw.id] = rec.FrameworkRecord(
                info=fw, status=rec.FRAMEWORK_DISCONNECTED, registered_at=now, disconnected_at=now
            )

    # ------------------------------------------------------------------ frameworks

    def subscribe_framework(
        self, info: FrameworkInfo, now: float
    ) -> tuple[FrameworkId, list[Effect]]:
        """Add a framework, or reconnect one that gives its id. Raises on bad info."""
        return frameworks.subscribe(self, info, now)

    def framework_disconnected(self, fid: FrameworkId, now: float) -> list[Effect]:
        return frameworks.disconnected(self, fid, now)

    def teardown(self, fid: FrameworkId, now: float) -> list[Effect]:
        return frameworks.teardown(self, fid, now)

    def accept(
        self,
        fid: FrameworkId,
        offer_ids: Sequence[OfferId],
        tasks: Sequence[TaskSpec],
        refuse_seconds: float,
        now: float,
        *,
        reserve: Resources | None = None,
        unreserve: Resources | None = None,
    ) -> list[Effect]:
        """Launch `tasks` on the offers; all or nothing. Unused resources go back to the pool.

        The offers must share one allocation role: the tasks are accounted to it.
        `reserve` (RESERVE) reserves part of the offers for that role on their agent from now
        on; `unreserve` (UNRESERVE) gives back part of the role's dynamic reservation there.
        Both are kept in the registry.
        """
        return _accept.accept(
            self, fid, offer_ids, tasks, refuse_seconds, now, reserve=reserve, unreserve=unreserve
        )

    def decline(
        self, fid: FrameworkId, offer_ids: Sequence[OfferId], refuse_seconds: float, now: float
    ) -> list[Effect]:
        return _accept.decline(self, fid, offer_ids, refuse_seconds, now)

    def revive(self, fid: FrameworkId, roles: Sequence[str] = ()) -> list[Effect]:
        """Offer the framework again in `roles` (all its roles if none): unsuppress them and
        clear their filters. Raises `ValidationError` for a role it does not hold."""
        return frameworks.revive(self, fid, roles)

    def request(self, fid: FrameworkId, demands: Sequence[Demand]) -> list[Effect]:
        """Replace the framework's demands (REQUEST): it still needs `count` tasks of each
        shape. Offers to it are then sized to whole tasks; no demands means whole agents."""
        return frameworks.request(self, fid, demands)

    def suppress(self, fid: FrameworkId, roles: Sequence[str] = ()) -> list[Effect]:
        """Offer the framework nothing in `roles` (all its roles if none) until it revives
        them. Raises `ValidationError` for a role it does not hold."""
        return frameworks.suppress(self, fid, roles)

    def kill_task(
        self, fid: FrameworkId, task_id: TaskId, grace_period_s: float, now: float
    ) -> list[Effect]:
        """Kill a task. Killing a task that already ended does nothing (kills race with exits)."""
        return _tasks.kill(self, fid, task_id, grace_period_s)

    def acknowledge(
        self, fid: FrameworkId, acks: Sequence[tuple[AgentId, TaskId, bytes]]
    ) -> list[Effect]:
        return _tasks.acknowledge(self, fid, acks)

    def reconcile(
        self, fid: FrameworkId, tasks: Sequence[tuple[TaskId, AgentId]], now: float
    ) -> list[Effect]:
        """Send the latest state of the given tasks, or of all the framework's live tasks."""
        return _tasks.reconcile(self, fid, tasks, now)

    # ------------------------------------------------------------------ agents

    def register_agent(
        self,
        info: AgentInfo,
        reported: Sequence[tuple[FrameworkId, TaskSpec, TaskState]],
        now: float,
    ) -> tuple[AgentId, list[Effect]]:
        """Admit a new agent or take back a known one with the tasks it reports."""
        return agents.register(self, info, reported, now, self._agent_ids)

    def agent_disconnected(self, agent_id: AgentId, now: float) -> list[Effect]:
        return agents.disconnected(self, agent_id, now)

    def status_updates(
        self, agent_id: AgentId, statuses: Iterable[TaskStatus], now: float
    ) -> list[Effect]:
        """Record updates from an agent and forward them, one event per framework."""
        return _tasks.status_updates(self, agent_id, statuses, now)

    # ------------------------------------------------------------------ time

    def tick(self, now: float) -> list[Effect]:
        """Expire offers, frameworks past their failover timeout, agents that did not return."""
        effects = allocation.expire_offers(self, now)
        effects += frameworks.expire(self, now)
        effects += agents.expire(self, now)
        return effects

    def drain_agent(self, agent_id: AgentId, now: float) -> list[Effect]:
        """Offer the agent no more, rescind its offers and kill its tasks (each with its own
        kill policy); it stays registered, `draining` (drained once its tasks are gone)."""
        return agents.drain(self, agent_id, now)

    def mark_agent_gone(self, agent_id: AgentId, now: float) -> list[Effect]:
        """The agent is gone for good: its tasks are TASK_GONE, it is removed from the
        registry and may not register again (with that id). If it is still connected, its
        tasks are killed and its stream closed."""
        return agents.mark_gone(self, agent_id, now)

    def agent_seen(self, agent_id: AgentId, now: float) -> None:
        """A message came from the agent: it is alive (see `tick`)."""
        agent = self.agents.get(agent_id)
        if agent is not None:
            agent.last_seen_at = now

    def allocate(self, now: float) -> list[Effect]:
        """Run the allocator over the current free resources and make its offers."""
        self.allocation_wanted = False
        view = allocation.view(self, now, self._seed + self._rounds, self._locality_aware)
        if not view.agents or not view.frameworks:
            return []
        self._rounds += 1
        return allocation.make_offers(self, self.allocator.allocate(view, now), now)

    # ------------------------------------------------------------------ queries

    def locate_task(self, task_id: TaskId, fid: FrameworkId | None) -> rec.TaskRecord:
        """Find a live or recently completed task; `fid` is needed only if the id is ambiguous."""
        return _tasks.locate(self, task_id, fid)

    def framework(self, fid: FrameworkId) -> rec.FrameworkRecord:
        return lookup.framework(self, fid)

    def reserved_on(self, agent: rec.AgentRecord) -> dict[str, Resources]:
        """The agent's reservations by role: static (its flag) plus dynamic (RESERVE)."""
        return allocation.reserved_on(self, agent)

    # ------------------------------------------------------------------ roles

    def set_role_weight(self, role: str, weight: float) -> list[Effect]:
        before = self.roles.weights.get(role)
        op = self.roles.set_weight(role, weight)
        self.allocation_wanted = True
        logger.info("role weight set role=%s weight=%g", role, weight)

        def undo() -> list[Effect]:
            self.roles.undo_weight(op, before)
            self.allocation_wanted = True
            return []

        return [PersistRegistry((op,), undo)]

    def set_quota(
        self, role: str, guarantee: Resources, limit: Resources | None
    ) -> list[Effect]:
        before = self.roles.quotas.get(role)
        op = self.roles.set_quota(role, guarantee, limit)
        self.allocation_wanted = True
        logger.info("role quota set role=%s guarantee=%s limit=%s", role, guarantee, limit)

        def undo() -> list[Effect]:
            self.roles.undo_quota(op, before)
            self.allocation_wanted = True
            return []

        return [PersistRegistry((op,), undo)]

    def explain(self, fid: FrameworkId, now: float) -> Explanation:
        """Why `fid` is or is not getting offers: its share, role, filters, quota, demands."""
        return allocation.explain(self, fid, now)

    def role_statuses(self) -> list[RoleStatus]:
        held: dict[str, tuple[Resources, int]] = {}
        for fw in self.frameworks.values():
            for role in fw.info.all_roles:
                res, n = held.get(role, (Resources.empty(), 0))
                held[role] = (res + fw.held(role), n + 1)
        return self.roles.describe(held)
