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
  the agents' re-registrations; the registry keeps agents (admitted and gone), frameworks,
  roles' weights and quotas, and dynamic reservations (and the jobs framework's documents).
- Each noun's data is owned by its book (`MasterBooks`: `AgentBook`, `FrameworkBook`,
  `TaskBook`, `OfferBook`, `RoleBook`, `ReservationBook`); the handlers that change several
  books at once live in modules named for what they handle: `frameworks.py`, `agents.py`,
  `tasks.py` (status updates, kills, reconciliation), `accept.py` (ACCEPT and DECLINE) and
  `allocation.py` (the allocator's view, offers, `explain`). `MasterState` is their façade;
  readers outside it get read-only mappings. "Allocate soon" is an effect (`AllocateSoon`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence

from mesoslite.allocator.base import AllocationRound, Allocator, ClusterView, Demand
from mesoslite.ids import AgentId, FrameworkId, OfferId, TaskId
from mesoslite.master import accept as _accept  # `accept` names a method here
from mesoslite.master import agents, allocation, frameworks, preemption
from mesoslite.master import records as rec
from mesoslite.master import tasks as _tasks  # `tasks` names a parameter here
from mesoslite.master.agent_book import AgentBook
from mesoslite.master.agent_views import AgentViews
from mesoslite.master.allocation import LOCALITY_LABEL as LOCALITY_LABEL  # for sim/engine.py
from mesoslite.master.books import MasterBooks
from mesoslite.master.events import AllocateSoon, Effect, PersistRegistry
from mesoslite.master.framework_book import FrameworkBook
from mesoslite.master.offers import OfferBook
from mesoslite.master.pass_scope import PassScope
from mesoslite.master.registry.base import RegistrySnapshot
from mesoslite.master.reservations import ReservationBook
from mesoslite.master.roles import Explanation, RoleBook, RoleStatus
from mesoslite.master.task_book import TaskKey
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
        preemption_grace_s: float = 0.0,
        framework_ids: Callable[[], str] | None = None,
        incremental_allocation: bool = True,
    ) -> None:
        self.allocator = allocator
        policy = getattr(allocator, "policy", allocator)
        self._locality_aware = callable(getattr(policy, "agent_ranker", None))
        # An active agent silent for this long is unreachable (Mesos's agent_ping_timeout x
        # max_agent_ping_timeouts); 0 (the default here, not in the daemon) never.
        agents = AgentBook(
            run_id,
            reregister_timeout_s=agent_reregister_timeout_s,
            silence_limit_s=agent_ping_timeout_s * max_agent_ping_timeouts,
        )
        # `framework_ids`: new frameworks' ids (default random); the simulator numbers them.
        self.books = MasterBooks(
            agents, FrameworkBook(framework_ids), OfferBook(run_id), offer_timeout_s
        )
        self._seed = seed
        self._rounds = 0
        # Incremental passes (#15): the agents' views kept between passes, and what decides
        # whether a pass may offer only the agents changed since the last one.
        self.incremental_allocation = incremental_allocation
        self._agent_views = AgentViews()
        self._scope = PassScope()
        self._allocate_agents: Callable[[ClusterView, float, list[AgentId]], AllocationRound] | None
        self._allocate_agents = getattr(allocator, "allocate_agents", None)
        # How long a higher tier's work waits before lower tiers are preempted; 0: never.
        self.books.preemption.grace_s = preemption_grace_s

    # ------------------------------------------------------------------ read-only views

    @property
    def agents(self) -> Mapping[AgentId, rec.AgentRecord]:
        return self.books.agents

    @property
    def gone_agents(self) -> frozenset[AgentId]:
        return self.books.agents.gone

    @property
    def frameworks(self) -> Mapping[FrameworkId, rec.FrameworkRecord]:
        return self.books.frameworks

    @property
    def completed_frameworks(self) -> Mapping[FrameworkId, rec.FrameworkRecord]:
        return self.books.frameworks.completed

    @property
    def completed_tasks(self) -> Mapping[TaskKey, rec.TaskRecord]:
        return self.books.tasks

    @property
    def offers(self) -> OfferBook:
        return self.books.offers

    @property
    def roles(self) -> RoleBook:
        return self.books.roles

    @property
    def reservations(self) -> ReservationBook:
        return self.books.reservations

    @property
    def dynamic_reservations(self) -> Mapping[AgentId, Mapping[str, Resources]]:
        return self.books.dynamic_reservations

    @property
    def last_reasons(self) -> Mapping[FrameworkId, str]:
        return self.books.last_reasons

    # ------------------------------------------------------------------ recovery

    def recover(self, snap: RegistrySnapshot, now: float) -> None:
        """Load the registry after a (re)start: agents must re-register, frameworks re-subscribe."""
        self.books.roles.recover(snap)
        self.books.dynamic_reservations = {a: dict(r) for a, r in snap.reservations.items()}
        self.books.agents.recover(snap, now)
        self.books.frameworks.recover(snap, now)
        self._agent_views.reset()  # records are new: the first pass views them all, in full
        self._scope.want_full = True

    def fresh_windows(self, now: float) -> None:
        """The master leads again after a pause: disconnected agents and frameworks get
        their whole re-registration window and failover timeout from `now`."""
        self.books.agents.fresh_windows(now)
        self.books.frameworks.fresh_windows(now)

    # ------------------------------------------------------------------ frameworks

    def subscribe_framework(
        self, info: FrameworkInfo, now: float
    ) -> tuple[FrameworkId, list[Effect]]:
        """Add a framework, or reconnect one that gives its id. Raises on bad info."""
        return frameworks.subscribe(self.books, info, now)

    def framework_disconnected(self, fid: FrameworkId, now: float) -> list[Effect]:
        return frameworks.disconnected(self.books, fid, now)

    def teardown(self, fid: FrameworkId, now: float) -> list[Effect]:
        return frameworks.teardown(self.books, fid, now)

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
            self.books, fid, offer_ids, tasks, refuse_seconds, now,
            reserve=reserve, unreserve=unreserve,
        )

    def decline(
        self, fid: FrameworkId, offer_ids: Sequence[OfferId], refuse_seconds: float, now: float
    ) -> list[Effect]:
        return _accept.decline(self.books, fid, offer_ids, refuse_seconds, now)

    def revive(self, fid: FrameworkId, roles: Sequence[str] = ()) -> list[Effect]:
        """Offer the framework again in `roles` (all its roles if none): unsuppress them and
        clear their filters. Raises `ValidationError` for a role it does not hold."""
        return frameworks.revive(self.books, fid, roles)

    def request(self, fid: FrameworkId, demands: Sequence[Demand]) -> list[Effect]:
        """Replace the framework's demands (REQUEST): it still needs `count` tasks of each
        shape. Offers to it are then sized to whole tasks; no demands means whole agents."""
        return frameworks.request(self.books, fid, demands)

    def declare_waiting(
        self, fid: FrameworkId, by_role: Mapping[str, tuple[Demand, ...]], now: float
    ) -> list[Effect]:
        """Replace what waits for room in each of the framework's roles (the jobs
        framework says so; others' REQUEST demands count): it may preempt lower tiers."""
        return preemption.declare_waiting(self.books, fid, by_role)

    def suppress(self, fid: FrameworkId, roles: Sequence[str] = ()) -> list[Effect]:
        """Offer the framework nothing in `roles` (all its roles if none) until it revives
        them. Raises `ValidationError` for a role it does not hold."""
        return frameworks.suppress(self.books, fid, roles)

    def kill_task(self, fid: FrameworkId, task_id: TaskId, grace_period_s: float) -> list[Effect]:
        """Kill a task. Killing a task that already ended does nothing (kills race with exits)."""
        return _tasks.kill(self.books, fid, task_id, grace_period_s)

    def acknowledge(
        self, fid: FrameworkId, acks: Sequence[tuple[AgentId, TaskId, bytes]]
    ) -> list[Effect]:
        return _tasks.acknowledge(self.books, fid, acks)

    def reconcile(
        self, fid: FrameworkId, tasks: Sequence[tuple[TaskId, AgentId]], now: float
    ) -> list[Effect]:
        """Send the latest state of the given tasks, or of all the framework's live tasks."""
        return _tasks.reconcile(self.books, fid, tasks, now)

    # ------------------------------------------------------------------ agents

    def register_agent(
        self,
        info: AgentInfo,
        reported: Sequence[tuple[FrameworkId, TaskSpec, TaskState]],
        now: float,
    ) -> tuple[AgentId, list[Effect]]:
        """Admit a new agent or take back a known one with the tasks it reports."""
        return agents.register(self.books, info, reported, now)

    def agent_disconnected(self, agent_id: AgentId, now: float) -> list[Effect]:
        return agents.disconnected(self.books, agent_id, now)

    def status_updates(
        self, agent_id: AgentId, statuses: Iterable[TaskStatus], now: float
    ) -> list[Effect]:
        """Record updates from an agent and forward them, one event per framework."""
        return _tasks.status_updates(self.books, agent_id, statuses, now)

    # ------------------------------------------------------------------ time

    def tick(self, now: float) -> list[Effect]:
        """Expire offers, frameworks past their failover timeout, agents that did not return."""
        effects = allocation.expire_offers(self.books, now)
        effects += frameworks.expire(self.books, now)
        effects += agents.expire(self.books, now)
        effects += preemption.check(self.books, now)
        return effects

    def drain_agent(self, agent_id: AgentId, now: float) -> list[Effect]:
        """Offer the agent no more, rescind its offers and kill its tasks (each with its own
        kill policy); it stays registered, `draining` (drained once its tasks are gone)."""
        return agents.drain(self.books, agent_id, now)

    def mark_agent_gone(self, agent_id: AgentId, now: float) -> list[Effect]:
        """The agent is gone for good: its tasks are TASK_GONE, it is removed from the
        registry and may not register again (with that id). If it is still connected, its
        tasks are killed and its stream closed."""
        return agents.mark_gone(self.books, agent_id, now)

    def agent_seen(self, agent_id: AgentId, now: float) -> None:
        """A message came from the agent: it is alive (see `tick`)."""
        self.books.agents.seen(agent_id, now)

    def agent_pong(self, agent_id: AgentId, pending_updates: int, now: float) -> None:
        """The agent answered a ping: it holds `pending_updates` unacknowledged updates."""
        self.books.agents.seen(agent_id, now)
        self.books.agents.pending_updates(agent_id, pending_updates)

    def allocate(self, now: float) -> list[Effect]:
        """Run the allocator over the current free resources and make its offers: over the
        agents changed since the last pass alone when nothing else changed (the same offers
        as a full pass, see `pass_scope.py`), else over every agent (#15)."""
        if not self.incremental_allocation:
            view = allocation.view(self.books, now, self._seed + self._rounds, self._locality_aware)
            if not view.agents or not view.frameworks:
                return []
            self._rounds += 1
            return allocation.make_offers(self.books, self.allocator.allocate(view, now), now)
        return self._allocate_incrementally(now)

    def want_full_pass(self) -> None:
        """Make the next pass offer every agent (the periodic pass: it catches anything no
        event told of)."""
        self._scope.want_full = True

    def _allocate_incrementally(self, now: float) -> list[Effect]:
        views, scope = self._agent_views, self._scope
        changed = views.refresh(self.books)
        frameworks = allocation.framework_views(self.books, now, views.free, self._locality_aware)
        if not views.by_id or not frameworks:
            scope.want_full = True  # what changed meanwhile was offered to nobody
            return []
        full = scope.must_be_full(self.books, frameworks, changed)
        seed = self._seed + self._rounds
        self._rounds += 1
        if not full and not changed:
            return []  # a full pass would offer nothing either
        roles = self.books.roles
        view = ClusterView(
            views.agents,
            frameworks,
            roles.weights,
            seed,
            roles.quotas,
            roles.priorities,
            total=views.total.value(),
            agents_by_id=views.by_id,
        )
        scope.want_full = True  # until this pass is done: a failed pass forgets nothing
        if full or self._allocate_agents is None:
            result = self.allocator.allocate(view, now)
        else:
            result = self._allocate_agents(view, now, changed)
        scope.want_full = False
        return allocation.make_offers(self.books, result, now)

    # ------------------------------------------------------------------ queries

    def locate_task(self, task_id: TaskId, fid: FrameworkId | None) -> rec.TaskRecord:
        """Find a live or recently completed task; `fid` is needed only if the id is ambiguous."""
        return self.books.tasks.locate(self.books.frameworks, task_id, fid)

    def framework(self, fid: FrameworkId) -> rec.FrameworkRecord:
        return self.books.frameworks.require(fid)

    def reserved_on(self, agent: rec.AgentRecord) -> dict[str, Resources]:
        """The agent's reservations by role: static (its flag) plus dynamic (RESERVE)."""
        return allocation.reserved_on(self.books, agent)

    # ------------------------------------------------------------------ roles

    def set_role_weight(self, role: str, weight: float) -> list[Effect]:
        roles = self.books.roles
        before = roles.weights.get(role)
        op = roles.set_weight(role, weight)
        logger.info("role weight set role=%s weight=%g", role, weight)

        def undo() -> list[Effect]:
            roles.undo_weight(op, before)
            return [AllocateSoon()]

        return [PersistRegistry((op,), undo), AllocateSoon()]

    def set_quota(
        self, role: str, guarantee: Resources, limit: Resources | None
    ) -> list[Effect]:
        roles = self.books.roles
        before = roles.quotas.get(role)
        op = roles.set_quota(role, guarantee, limit)
        logger.info("role quota set role=%s guarantee=%s limit=%s", role, guarantee, limit)

        def undo() -> list[Effect]:
            roles.undo_quota(op, before)
            return [AllocateSoon()]

        return [PersistRegistry((op,), undo), AllocateSoon()]

    def set_role_tier(self, role: str, priority: int, preemptible: bool | None) -> list[Effect]:
        """`mesoslite role set-priority`; `preemptible` None keeps the current setting."""
        roles = self.books.roles
        before = roles.tiers.get(role)
        op = roles.set_tier(role, priority, preemptible)
        logger.info(
            "role tier set role=%s priority=%d preemptible=%s",
            role, op.tier.priority, op.tier.preemptible,
        )

        def undo() -> list[Effect]:
            roles.undo_tier(op, before)
            return [AllocateSoon()]

        return [PersistRegistry((op,), undo), AllocateSoon()]

    def explain(self, fid: FrameworkId, now: float) -> Explanation:
        """Why `fid` is or is not getting offers: its share, role, filters, quota, demands."""
        return allocation.explain(self.books, fid, now)

    def role_statuses(self) -> list[RoleStatus]:
        held: dict[str, tuple[Resources, int]] = {}
        for fw in self.frameworks.values():
            for role in fw.info.all_roles:
                res, n = held.get(role, (Resources.empty(), 0))
                held[role] = (res + fw.held(role), n + 1)
        return self.roles.describe(held)
