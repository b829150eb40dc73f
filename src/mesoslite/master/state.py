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
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import replace

from mesoslite.allocator.base import Allocator, Demand
from mesoslite.errors import ConflictError, UnknownFrameworkError, ValidationError
from mesoslite.ids import AgentId, FrameworkId, IdSequence, OfferId, TaskId, new_id
from mesoslite.master import accept as _accept  # `accept` names a method here
from mesoslite.master import allocation, lookup
from mesoslite.master import records as rec
from mesoslite.master import tasks as _tasks  # `tasks` names a parameter here
from mesoslite.master.allocation import LOCALITY_LABEL as LOCALITY_LABEL  # for sim/engine.py
from mesoslite.master.constants import MAX_COMPLETED_FRAMEWORKS
from mesoslite.master.events import (
    CloseFramework,
    DisconnectAgent,
    Effect,
    ErrorEvent,
    FailureEvent,
    KillOnAgent,
    PersistRegistry,
    ReconcileOnAgent,
    SendToFramework,
    ShutdownFrameworkOnAgent,
    UpdateEvent,
)
from mesoslite.master.offers import OfferBook
from mesoslite.master.registry.base import (
    AddFramework,
    AdmitAgent,
    MarkAgentGone,
    RegistrySnapshot,
    RemoveFramework,
)
from mesoslite.master.reservations import ReservationBook
from mesoslite.master.roles import Explanation, RoleBook, RoleStatus, check_demands
from mesoslite.master.tasks import TaskKey
from mesoslite.master.validation import check_agent_info, check_framework_info
from mesoslite.model import (
    REASON_AGENT_REMOVED,
    REASON_AGENT_RESTARTED,
    REASON_AGENT_UNREACHABLE,
    REASON_FRAMEWORK_REMOVED,
    REASON_RECONCILIATION,
    AgentInfo,
    FrameworkInfo,
    TaskSpec,
    TaskState,
    TaskStatus,
)
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
        check_framework_info(info)
        effects: list[Effect] = []
        if info.id:
            fw = self.frameworks.get(info.id)
            if fw is None:
                if info.id in self.completed_frameworks:
                    raise UnknownFrameworkError(
                        f"framework {info.id} was removed (torn down or past its failover timeout)"
                    )
                raise UnknownFrameworkError(f"framework {info.id} is not known to this master")
            if sorted(fw.info.all_roles) != sorted(info.all_roles):
                field = "framework_info.roles" if info.roles else "framework_info.role"
                raise ValidationError(
                    field,
                    "cannot change roles on re-subscription: was "
                    f"{', '.join(fw.info.all_roles)}, got {', '.join(info.all_roles)}",
                )
            for offer in list(self.offers.of_framework(fw.id)):
                allocation.rescind(self, offer, notify=False)
            fw.info = info
            fw.status = rec.FRAMEWORK_CONNECTED
            fw.disconnected_at = None
            fw.suppressed_roles.clear()
            effects.append(PersistRegistry((AddFramework(info),)))
            # Ask agents to resend what this framework has not acknowledged, now, not at their
            # next retry.
            for agent_id in sorted({t.agent_id for t in fw.tasks.values()}):
                if lookup.agent_active(self, agent_id):
                    effects.append(ReconcileOnAgent(agent_id, (fw.id,)))
            logger.info("framework re-subscribed framework_id=%s name=%r", fw.id, info.name)
        else:
            fid = FrameworkId(new_id("fw"))
            info = _with_framework_id(info, fid)
            self.frameworks[fid] = rec.FrameworkRecord(
                info=info, status=rec.FRAMEWORK_CONNECTED, registered_at=now
            )
            effects.append(PersistRegistry((AddFramework(info),)))
            logger.info(
                "framework subscribed framework_id=%s name=%r roles=%s",
                fid, info.name, ",".join(info.all_roles),
            )
        self.allocation_wanted = True
        return info.id, effects

    def framework_disconnected(self, fid: FrameworkId, now: float) -> list[Effect]:
        fw = self.frameworks.get(fid)
        if fw is None or not fw.connected:
            return []
        fw.status = rec.FRAMEWORK_DISCONNECTED
        fw.disconnected_at = now
        for offer in list(self.offers.of_framework(fid)):
            allocation.rescind(self, offer, notify=False)
        logger.info(
            "framework disconnected framework_id=%s failover_timeout_s=%g",
            fid, fw.info.failover_timeout_s,
        )
        self.allocation_wanted = True
        if fw.info.failover_timeout_s <= 0:
            return self._remove_framework(fw, now, "its failover timeout is 0")
        return []

    def teardown(self, fid: FrameworkId, now: float) -> list[Effect]:
        fw = lookup.framework(self, fid)
        effects = self._remove_framework(fw, now, "it was torn down")
        effects.append(SendToFramework(fid, ErrorEvent("framework torn down")))
        effects.append(CloseFramework(fid))
        return effects

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
        fw = lookup.connected_framework(self, fid)
        for role in lookup.own_roles(fw, roles):
            fw.suppressed_roles.discard(role)
            fw.filters.pop(role, None)
            fw.refused.pop(role, None)
        self.allocation_wanted = True
        return []

    def request(self, fid: FrameworkId, demands: Sequence[Demand]) -> list[Effect]:
        """Replace the framework's demands (REQUEST): it still needs `count` tasks of each
        shape. Offers to it are then sized to whole tasks; no demands means whole agents."""
        fw = lookup.connected_framework(self, fid)
        fw.demands = check_demands(demands) or None
        self.allocation_wanted = True
        return []

    def suppress(self, fid: FrameworkId, roles: Sequence[str] = ()) -> list[Effect]:
        """Offer the framework nothing in `roles` (all its roles if none) until it revives
        them. Raises `ValidationError` for a role it does not hold."""
        fw = lookup.connected_framework(self, fid)
        fw.suppressed_roles.update(lookup.own_roles(fw, roles))
        return []

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
        check_agent_info(info)
        if info.id in self.gone_agents:
            raise ConflictError(
                f"agent {info.id} was marked gone: start it with an empty work dir to join anew"
            )
        effects: list[Effect] = []
        agent_id = info.id or AgentId(self._agent_ids())
        info = _with_agent_id(info, agent_id)
        agent = self.agents.get(agent_id)
        if agent is None:
            agent = rec.AgentRecord(info=info, status=rec.AGENT_ACTIVE, registered_at=now)
            self.agents[agent_id] = agent
            logger.info(
                "agent registered agent_id=%s hostname=%s resources=%s",
                agent_id, info.hostname, info.resources,
            )
        else:
            for offer in list(self.offers.of_agent(agent_id)):
                effects += allocation.rescind(self, offer, notify=True)
            agent.info = info
            agent.status = rec.AGENT_ACTIVE
            agent.disconnected_at = None
            logger.info("agent re-registered agent_id=%s tasks=%d", agent_id, len(reported))
        agent.last_seen_at = now
        effects.insert(0, PersistRegistry((AdmitAgent(info),)))
        effects += self._adopt_reported_tasks(agent, reported, now)
        self.allocation_wanted = True
        return agent_id, effects

    def agent_disconnected(self, agent_id: AgentId, now: float) -> list[Effect]:
        agent = self.agents.get(agent_id)
        if agent is None or agent.status != rec.AGENT_ACTIVE:
            return []
        agent.status = rec.AGENT_DISCONNECTED
        agent.disconnected_at = now
        logger.warning("agent disconnected agent_id=%s", agent_id)
        effects: list[Effect] = []
        for offer in list(self.offers.of_agent(agent_id)):
            effects += allocation.rescind(self, offer, notify=True)
        return effects

    def status_updates(
        self, agent_id: AgentId, statuses: Iterable[TaskStatus], now: float
    ) -> list[Effect]:
        """Record updates from an agent and forward them, one event per framework."""
        return _tasks.status_updates(self, agent_id, statuses, now)

    # ------------------------------------------------------------------ time

    def tick(self, now: float) -> list[Effect]:
        """Expire offers, frameworks past their failover timeout, agents that did not return."""
        effects = allocation.expire_offers(self, now)
        for fw in list(self.frameworks.values()):
            if (
                fw.status == rec.FRAMEWORK_DISCONNECTED
                and fw.disconnected_at is not None
                and now >= fw.disconnected_at + fw.info.failover_timeout_s
            ):
                effects += self._remove_framework(fw, now, "its failover timeout passed")
        for agent in self.agents.values():
            if (
                agent.status == rec.AGENT_DISCONNECTED
                and agent.disconnected_at is not None
                and now >= agent.disconnected_at + self.agent_reregister_timeout_s
            ):
                effects += self._mark_unreachable(agent, now, "agent did not re-register in time")
            elif (
                agent.status == rec.AGENT_ACTIVE
                and self.agent_silence_limit_s > 0
                and agent.last_seen_at is not None
                and now >= agent.last_seen_at + self.agent_silence_limit_s
            ):
                # Its stream may look open (a stopped or partitioned agent): close it, so
                # that the agent registers again when it can, and reconcile then.
                effects.append(DisconnectAgent(agent.id))
                for offer in list(self.offers.of_agent(agent.id)):
                    effects += allocation.rescind(self, offer, notify=True)
                effects += self._mark_unreachable(
                    agent,
                    now,
                    f"agent missed its pings for {now - agent.last_seen_at:.1f}s",
                )
                self.allocation_wanted = True
        return effects

    def drain_agent(self, agent_id: AgentId, now: float) -> list[Effect]:
        """Offer the agent no more, rescind its offers and kill its tasks (each with its own
        kill policy); it stays registered, `draining` (drained once its tasks are gone)."""
        agent = lookup.agent(self, agent_id)
        agent.draining = True
        effects: list[Effect] = []
        for offer in list(self.offers.of_agent(agent_id)):
            effects += allocation.rescind(self, offer, notify=True)
        if agent.status == rec.AGENT_ACTIVE:
            for fid, task_id in sorted(agent.tasks):
                effects.append(KillOnAgent(agent_id, fid, task_id, 0.0))
        logger.info("agent draining agent_id=%s tasks=%d", agent_id, len(agent.tasks))
        return effects

    def mark_agent_gone(self, agent_id: AgentId, now: float) -> list[Effect]:
        """The agent is gone for good: its tasks are TASK_GONE, it is removed from the
        registry and may not register again (with that id). If it is still connected, its
        tasks are killed and its stream closed."""
        agent = lookup.agent(self, agent_id)
        effects: list[Effect] = []
        for offer in list(self.offers.of_agent(agent_id)):
            effects += allocation.rescind(self, offer, notify=True)
        by_framework: dict[FrameworkId, list[TaskStatus]] = {}
        for fid, task_id in sorted(agent.tasks):
            fw = self.frameworks.get(fid)
            record = fw.tasks.get(task_id) if fw else None
            if fw is None or record is None:
                continue
            record.status = TaskStatus(
                task_id, fid, agent_id, TaskState.GONE, "its agent was marked gone",
                REASON_AGENT_REMOVED, timestamp=now,
            )
            _tasks.finish(self, fw, record)
            if fw.connected:
                by_framework.setdefault(fid, []).append(record.status)
        if agent.status == rec.AGENT_ACTIVE:
            for fid in sorted(self.frameworks):
                effects.append(ShutdownFrameworkOnAgent(agent_id, fid))
            effects.append(DisconnectAgent(agent_id))
        effects += [SendToFramework(f, UpdateEvent(tuple(s))) for f, s in by_framework.items()]
        del self.agents[agent_id]
        self.gone_agents.add(agent_id)
        effects.append(PersistRegistry((MarkAgentGone(agent_id),)))
        self.allocation_wanted = True
        logger.warning("agent marked gone agent_id=%s", agent_id)
        return effects

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

    # ------------------------------------------------------------------ roles

    def set_role_weight(self, role: str, weight: float) -> list[Effect]:
        op = self.roles.set_weight(role, weight)
        self.allocation_wanted = True
        logger.info("role weight set role=%s weight=%g", role, weight)
        return [PersistRegistry((op,))]

    def set_quota(
        self, role: str, guarantee: Resources, limit: Resources | None
    ) -> list[Effect]:
        op = self.roles.set_quota(role, guarantee, limit)
        self.allocation_wanted = True
        logger.info("role quota set role=%s guarantee=%s limit=%s", role, guarantee, limit)
        return [PersistRegistry((op,))]

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

    # ------------------------------------------------------------------ internals

    def _remove_framework(self, fw: rec.FrameworkRecord, now: float, why: str) -> list[Effect]:
        effects: list[Effect] = []
        for offer in list(self.offers.of_framework(fw.id)):
            allocation.rescind(self, offer, notify=False)
        agents: set[AgentId] = set()
        for record in list(fw.tasks.values()):
            agents.add(record.agent_id)
            record.status = TaskStatus(
                record.spec.task_id, fw.id, record.agent_id, TaskState.KILLING,
                f"framework removed: {why}", REASON_FRAMEWORK_REMOVED, timestamp=now,
            )
            _tasks.finish(self, fw, record)
        for agent_id in sorted(agents):
            if lookup.agent_active(self, agent_id):
                effects.append(ShutdownFrameworkOnAgent(agent_id, fw.id))
        del self.frameworks[fw.id]
        fw.status = rec.FRAMEWORK_COMPLETED
        fw.unregistered_at = now
        self.completed_frameworks[fw.id] = fw
        while len(self.completed_frameworks) > MAX_COMPLETED_FRAMEWORKS:
            self.completed_frameworks.popitem(last=False)
        effects.append(PersistRegistry((RemoveFramework(fw.id),)))
        self.allocation_wanted = True
        logger.info("framework removed framework_id=%s because %s", fw.id, why)
        return effects

    def _mark_unreachable(self, agent: rec.AgentRecord, now: float, why: str) -> list[Effect]:
        agent.status = rec.AGENT_UNREACHABLE
        agent.disconnected_at = agent.disconnected_at or now
        logger.warning(
            "agent unreachable agent_id=%s tasks=%d: %s", agent.id, len(agent.tasks), why
        )
        by_framework: dict[FrameworkId, list[TaskStatus]] = {}
        for fid, task_id in sorted(agent.tasks):
            fw = self.frameworks.get(fid)
            if fw is None or task_id not in fw.tasks:
                continue
            record = fw.tasks[task_id]
            record.status = TaskStatus(
                task_id, fid, agent.id, TaskState.UNREACHABLE,
                why, REASON_AGENT_UNREACHABLE, timestamp=now,
            )
            if fw.connected:
                by_framework.setdefault(fid, []).append(record.status)
        effects: list[Effect] = [
            SendToFramework(fid, UpdateEvent(tuple(s))) for fid, s in by_framework.items()
        ]
        for fw in self.frameworks.values():
            if fw.connected:
                effects.append(SendToFramework(fw.id, FailureEvent(agent.id, "agent unreachable")))
        return effects

    def _adopt_reported_tasks(
        self,
        agent: rec.AgentRecord,
        reported: Sequence[tuple[FrameworkId, TaskSpec, TaskState]],
        now: float,
    ) -> list[Effect]:
        effects: list[Effect] = []
        seen: set[TaskKey] = set()
        shutdown: set[FrameworkId] = set()
        changed: dict[FrameworkId, list[TaskStatus]] = {}
        for fid, spec, state in reported:
            seen.add((fid, spec.task_id))
            fw = self.frameworks.get(fid)
            if fw is None:
                if not state.terminal:
                    shutdown.add(fid)
                continue
            record = fw.tasks.get(spec.task_id)
            if state.terminal:
                # Its terminal update is still pending on the agent and will come. A master
                # that never saw the task (a new leader) remembers it as completed, so that
                # reconciliation answers its end state rather than TASK_GONE.
                key = (fid, spec.task_id)
                if record is None and key not in self.completed_tasks:
                    status = TaskStatus(spec.task_id, fid, agent.id, state, timestamp=now)
                    _tasks.remember_completed(self, rec.TaskRecord(fid, spec, agent.id, status))
                continue
            if record is None:
                spec = _in_role_of(fw, spec)
                status = TaskStatus(spec.task_id, fid, agent.id, state, timestamp=now)
                fw.tasks[spec.task_id] = rec.TaskRecord(fid, spec, agent.id, status)
                agent.tasks.add((fid, spec.task_id))
                agent.used = agent.used + spec.resources
                fw.add_used(spec.allocation_role, spec.resources)
            elif record.state != state:
                record.status = TaskStatus(
                    spec.task_id, fid, agent.id, state, "agent re-registered",
                    REASON_RECONCILIATION, timestamp=now,
                )
                changed.setdefault(fid, []).append(record.status)
        for fid, task_id in sorted(agent.tasks - seen):
            fw = self.frameworks.get(fid)
            record = fw.tasks.get(task_id) if fw else None
            if fw is None or record is None:
                agent.tasks.discard((fid, task_id))
                continue
            record.status = TaskStatus(
                task_id, fid, agent.id, TaskState.LOST,
                "task was not found on its agent when it re-registered",
                REASON_AGENT_RESTARTED, timestamp=now,
            )
            _tasks.finish(self, fw, record)
            changed.setdefault(fid, []).append(record.status)
        for fid in sorted(shutdown):
            effects.append(ShutdownFrameworkOnAgent(agent.id, fid))
        for fid, items in changed.items():
            if self.frameworks[fid].connected:
                effects.append(SendToFramework(fid, UpdateEvent(tuple(items))))
        return effects

    def reserved_on(self, agent: rec.AgentRecord) -> dict[str, Resources]:
        """The agent's reservations by role: static (its flag) plus dynamic (RESERVE)."""
        return allocation.reserved_on(self, agent)


def _in_role_of(fw: rec.FrameworkRecord, spec: TaskSpec) -> TaskSpec:
    """The task accounted to one of the framework's roles: the one its agent kept, or the
    framework's first (a task launched before the agent kept roles, or a role it left)."""
    roles = fw.info.all_roles
    if spec.allocation_role in roles:
        return spec
    return replace(spec, allocation_role=roles[0])


def _with_framework_id(info: FrameworkInfo, fid: FrameworkId) -> FrameworkInfo:
    return replace(info, id=fid)


def _with_agent_id(info: AgentInfo, agent_id: AgentId) -> AgentInfo:
    return replace(info, id=agent_id)
