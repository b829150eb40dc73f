"""`Simulation`: drive the real `MasterState` and allocator in virtual time, with no daemons.

Design:
- Every timed event (frameworks arriving, tasks being submitted, tasks finishing, allocation
  passes and the master's `tick`) is a timer on a `VirtualClock`, the clock unit tests
  inject into the daemons. Time jumps from one timer to the next; nothing sleeps and nothing
  reads a wall clock, so a run is deterministic for a seed.
- Agents are simulated by answering `LaunchOnAgent` with a `TASK_FINISHED` update after the
  task's duration. Tasks of one agent that end at the same time end in one batch of
  updates (one `status_updates` call and one timer), as a real agent sends its updates.
  Frameworks are simulated by `SimFramework`: launch as many pending tasks as fit in each
  offer (in submission order), decline what no task fits with their
  `refuse_seconds`, suppress when nothing is pending and revive when tasks come, and, if
  they declare demands, send a REQUEST with their pending tasks whenever that changes.
- Allocation passes are paced as `MasterActor` paces them: after any change whose effects
  ask for `AllocateSoon` (an arrival, a finished task, a decline), a pass runs the
  master's `ALLOCATION_BATCH_S` later, coalescing the changes in between; and every
  `allocation_interval_s` while waiting alone can change a pass (filters or offers that
  end). `tick` (offer timeouts) runs with each pass: the simulated frameworks answer every
  offer at once, so there is nothing else for it to expire.
- Metrics: `metrics.Recorder` integrates utilization between events and samples shares.
- Tiers and preemption (#16): roles' `priority`/`preemptible` and the cluster's
  `preemption_grace_s` go to the master as the CLI would set them. A `KillOnAgent` (a
  preemption) ends the task at once with TASK_KILLED; its framework submits it again, and
  its wait counts from the kill. Only frameworks with `demands: true` declare what waits,
  so only they can preempt. While preemption is on and work waits, the master's tick runs
  every `allocation_interval_s`, as the daemon's does.
"""

from __future__ import annotations

import gc
import logging
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial

from mesoslite.allocator.base import Demand
from mesoslite.allocator.loader import load_allocator
from mesoslite.clock import VirtualClock
from mesoslite.frozen import maker
from mesoslite.ids import AgentId, FrameworkId, IdSequence, TaskId
from mesoslite.master.constants import ALLOCATION_BATCH_S
from mesoslite.master.events import (
    AllocateSoon,
    Effect,
    KillOnAgent,
    LaunchOnAgent,
    OffersEvent,
    RescindEvent,
    SendToFramework,
)
from mesoslite.master.state import LOCALITY_LABEL, MasterState
from mesoslite.model import (
    AgentInfo,
    CommandSpec,
    FrameworkInfo,
    Offer,
    StatusSource,
    TaskSpec,
    TaskState,
    TaskStatus,
)
from mesoslite.resources import Resources
from mesoslite.sim.metrics import Recorder, SimResult
from mesoslite.sim.shapes import copies as _copies
from mesoslite.sim.shapes import less as _less
from mesoslite.sim.tiers import tier_stats
from mesoslite.sim.trace import ClusterSpec, FrameworkSpec, WorkloadSpec

logger = logging.getLogger(__name__)

COMMAND = CommandSpec.of_shell("true")
MAX_EVENTS_DEFAULT = 50_000_000
# Every field given, without the frozen dataclasses' `__init__`: one of each per task (#15).
_task_spec = maker(TaskSpec)
_task_status = maker(TaskStatus)
_NO_AGENT = AgentId("")


@dataclass(slots=True)
class _Group:
    """One task group of a framework: which of its tasks are submitted and launched."""

    index: int
    resources: Resources
    duration_s: float
    count: int
    first_submit: float
    interval_s: float
    submitted: int = 0
    launched: int = 0
    # Preempted tasks to launch again, with when each was preempted (their wait's start).
    again: list[float] | None = None

    def submit_time(self, k: int) -> float:
        return self.first_submit + k * self.interval_s


class _Ending:
    """The tasks of one agent that end at one time, and the timer that ends them."""

    __slots__ = ("key", "tasks", "cancel")

    def __init__(self, key: tuple[AgentId, float]) -> None:
        self.key = key
        self.tasks: list[tuple[SimFramework, TaskSpec]] = []
        self.cancel: Callable[[], None] = _nothing


def _nothing() -> None:
    pass


class SimFramework:
    """A framework as the simulator plays it; see the module docstring."""

    def __init__(self, spec: FrameworkSpec) -> None:
        self.spec = spec
        self.id = FrameworkId("")
        self.groups = [
            _Group(i, g.resources, g.duration_s, g.count, spec.arrive_s + g.submit_s, g.interval_s)
            for i, g in enumerate(spec.tasks)
        ]
        self.total_tasks = sum(g.count for g in spec.tasks)
        self.running = 0
        self.finished = 0
        self.suppressed = False
        self.pending_count = 0
        # Every launch's wait, for the report's percentiles: 8 bytes each, not a float
        # object each (a million tasks, #15).
        self.wait_times: array[float] = array("d")
        self.preempted = 0
        self.launches = 0  # task ids are unique per launch (a preempted task runs again)

    @property
    def waits(self) -> list[float]:
        """Every launch's wait so far, in launch order (a copy)."""
        return self.wait_times.tolist()

    def pending(self) -> int:
        return sum(g.submitted - g.launched + len(g.again or ()) for g in self.groups)

    def demands(self) -> list[Demand]:
        out: list[Demand] = []
        for g in self.groups:
            n = g.submitted - g.launched + len(g.again or ())
            if n <= 0:
                continue
            if out and out[-1].resources == g.resources:
                out[-1] = Demand(g.resources, out[-1].count + n)
            else:
                out.append(Demand(g.resources, n))
        return out

    def fill(self, offer: Offer, now: float) -> tuple[list[TaskSpec], Resources]:
        """Tasks for this offer, as many pending ones as fit, in submission order, and what
        they leave of it."""
        left = offer.resources
        tasks: list[TaskSpec] = []
        for g in self.groups:
            shape = g.resources
            while g.again and left.contains(shape):
                left = left - shape
                tasks.append(self._task(g))
                self.wait_times.append(now - g.again.pop(0))
            n = g.submitted - g.launched
            if n <= 0:
                continue
            n = min(n, _copies(left, shape))
            if n <= 0:
                continue
            first = g.launched
            g.launched += n
            left = _less(left, shape, n)
            for _ in range(n):
                tasks.append(self._task(g))
            if n == 1:
                self.wait_times.append(now - g.submit_time(first))
            else:
                self.wait_times.extend(now - g.submit_time(k) for k in range(first, first + n))
        return tasks, left

    def _task(self, g: _Group) -> TaskSpec:
        """`TaskSpec(TaskId(f"g{g.index}-{n}"), COMMAND, g.resources)`."""
        self.launches += 1
        return _task_spec(
            f"g{g.index}-{self.launches}", COMMAND, g.resources, "", _NO_AGENT, 0.0, {}, None, ""
        )


class Simulation:
    """One run of a workload on a cluster under one allocator.

    Args:
        cluster: agents, roles and timing.
        workload: frameworks and their tasks.
        allocator: an allocator name or `package.module:Class` (as `--allocator`).
        seed: the master's seed for tie breaks.
        sample_interval_s: how often shares are sampled (virtual seconds).
    """

    def __init__(
        self,
        cluster: ClusterSpec,
        workload: WorkloadSpec,
        allocator: str = "drf",
        *,
        seed: int = 0,
        sample_interval_s: float = 1.0,
        allocator_options: dict[str, object] | None = None,
    ) -> None:
        self.cluster = cluster
        self.workload = workload
        self.allocator_name = allocator
        self.clock = VirtualClock(start=0.0)
        self.state = MasterState(
            allocator=load_allocator(allocator, allocator_options),
            offer_timeout_s=cluster.offer_timeout_s,
            agent_reregister_timeout_s=cluster.offer_timeout_s,
            seed=seed,
            run_id="sim",
            preemption_grace_s=cluster.preemption_grace_s,
            # Framework ids in arrival order, not random: DRF breaks ties by id, so random
            # ids made two runs of one seed differ (#16).
            framework_ids=IdSequence("fw", "sim"),
        )
        for role in cluster.roles:
            if role.weight != 1.0:
                self.state.set_role_weight(role.name, role.weight)
            if not role.guarantee.is_empty() or role.limit is not None:
                self.state.set_quota(role.name, role.guarantee, role.limit)
            if role.priority or role.preemptible:
                self.state.set_role_tier(role.name, role.priority, role.preemptible)
        total = Resources.empty()
        for group in cluster.agents:
            for i in range(group.count):
                info = AgentInfo(
                    hostname=f"{group.name}-{i}",
                    resources=group.resources,
                    attributes=dict(group.attributes),
                    reserved=dict(group.reserved),
                )
                self.state.register_agent(info, [], 0.0)
                total = total + group.resources
        self.frameworks = [SimFramework(spec) for spec in workload.frameworks]
        self.by_id: dict[FrameworkId, SimFramework] = {}
        self.recorder = Recorder(total, sample_interval_s)
        self._pass_at: float | None = None
        self.launched = 0
        self.passes = 0
        self.pending = 0  # tasks submitted and not launched, over all frameworks
        self._allocation_wanted = False  # an `AllocateSoon` came since the last pass
        # Running tasks: (framework, task) -> (the batch it ends in, its group).
        self._running: dict[tuple[FrameworkId, TaskId], tuple[_Ending, _Group]] = {}
        # Batches of ends to come by (agent, end time).
        self._endings: dict[tuple[AgentId, float], _Ending] = {}

    # -- the event loop

    @property
    def now(self) -> float:
        return self.clock.now()

    def at(self, when: float, action: Callable[[], None]) -> None:
        self.clock.call_later(when - self.clock.now(), action)

    def run(self, max_events: int = MAX_EVENTS_DEFAULT) -> SimResult:
        # The cyclic GC rescans the ever larger set of live records (running tasks, the
        # event heap) on every collection, which made long runs superlinear; the engine,
        # `MasterState` and the allocator make no reference cycles, so refcounting frees
        # everything (an allocation pass did leave one, #15: `test_issue16_sim` checks).
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            return self._run(max_events)
        finally:
            if was_enabled:
                gc.enable()

    def _run(self, max_events: int) -> SimResult:
        started = time.perf_counter()
        for fw in self.frameworks:
            self.at(fw.spec.arrive_s, partial(self._arrive, fw))
        until = self.workload.until_s
        events = 0
        while (when := self.clock.next_timer_at()) is not None:
            if until is not None and when > until:
                break
            self.recorder.advance(when, self)
            # Every timer due at `when` fires, and those they set for `when` too.
            events += self.clock.advance_to(when)
            if events >= max_events:
                raise RuntimeError(f"simulation did not end within {max_events} events")
        if until is not None and until > self.now:
            # The run covers [start, until_s]: utilization is averaged up to it, not up to
            # the last event (#16). No timer is left at or before it, so none fires.
            self.recorder.advance(until, self)
            self.clock.advance_to(until)
        self.recorder.advance(self.now, self)
        self.recorder.sample(self.now, self, force=True)  # the end state, for the plots
        wall = time.perf_counter() - started
        return replace(self.recorder.result(self, wall), tiers=tier_stats(self))

    def _work_left(self) -> bool:
        return self.pending > 0

    def _schedule_pass(self, when: float) -> None:
        self._pass_at = when
        self.at(when, self._pass)

    def _maybe_allocate(self) -> None:
        """`MasterActor._maybe_allocate`: a pass `ALLOCATION_BATCH_S` after it is wanted."""
        if self._allocation_wanted and self._pass_at is None and self._work_left():
            self._schedule_pass(self.now + ALLOCATION_BATCH_S)

    def _pass(self) -> None:
        # `_pass_at` stays set while the pass runs, so what the pass sets off (declines,
        # launches) is looked at once, after it, as the actor does.
        self._apply(self.state.tick(self.now))
        self.passes += 1
        self._allocation_wanted = False  # this pass allocates what the tick freed
        self._apply(self.state.allocate(self.now))
        self.recorder.sample(self.now, self)
        self._pass_at = None
        self._maybe_allocate()
        if self._pass_at is None and self._work_left() and self._timers_pending():
            # Filters expire and offers time out with nothing else happening: look again.
            self._schedule_pass(self.now + self.cluster.allocation_interval_s)

    def _timers_pending(self) -> bool:
        """Whether waiting alone can change what a pass does (a filter or an offer ends)."""
        if len(self.state.offers):
            return True
        if self.cluster.preemption_grace_s > 0 and self.pending:
            return True  # the tick may preempt for waiting work
        return any(fw.filters for fw in self.state.frameworks.values())

    # -- frameworks

    def _arrive(self, fw: SimFramework) -> None:
        labels = {LOCALITY_LABEL: ",".join(fw.spec.locality)} if fw.spec.locality else {}
        if fw.spec.roles:
            info = FrameworkInfo(name=fw.spec.name, roles=fw.spec.roles, labels=labels)
        else:
            info = FrameworkInfo(name=fw.spec.name, role=fw.spec.role, labels=labels)
        fid, effects = self.state.subscribe_framework(info, self.now)
        fw.id = fid
        self.by_id[fid] = fw
        self._apply(effects)
        for g in fw.groups:
            if g.interval_s > 0 and g.count > 1:
                for k in range(g.count):
                    self.at(g.submit_time(k), partial(self._submit, fw, g, 1))
            else:
                self.at(g.first_submit, partial(self._submit, fw, g, g.count))

    def _submit(self, fw: SimFramework, g: _Group, n: int) -> None:
        g.submitted += n
        self.pending += n
        fw.pending_count += n
        if fw.suppressed:
            fw.suppressed = False
            self._apply(self.state.revive(fw.id))
        self._request(fw)
        self._maybe_allocate()  # a change made while no work was left may want a pass now

    def _request(self, fw: SimFramework) -> None:
        if fw.spec.demands:
            self._apply(self.state.request(fw.id, fw.demands()))

    def _offers(self, fw: SimFramework, offers: tuple[Offer, ...]) -> None:
        now = self.now  # no time passes while a framework answers
        state = self.state
        for offer in offers:
            tasks, left = fw.fill(offer, now) if fw.pending_count else ([], offer.resources)
            if tasks:
                n = len(tasks)
                self.launched += n
                self.pending -= n
                fw.pending_count -= n
                fw.running += n
                refuse = 0.0 if left.is_empty() else fw.spec.refuse_seconds
                self._apply(state.accept(fw.id, [offer.id], tasks, refuse, now))
            else:
                self._apply(state.decline(fw.id, [offer.id], fw.spec.refuse_seconds, now))
        if not fw.pending_count and not fw.suppressed:
            fw.suppressed = True
            self._apply(self.state.suppress(fw.id))

    # -- agents

    def _launch(self, effect: LaunchOnAgent) -> None:
        fw = self.by_id[effect.framework_id]
        agent_id, fid = effect.agent_id, fw.id
        now = self.now
        endings, running, groups = self._endings, self._running, fw.groups
        self.recorder.launched_all([task.resources for task in effect.tasks])
        for task in effect.tasks:
            task_id = task.task_id
            group = groups[int(task_id[1 : task_id.index("-")])]
            key = (agent_id, now + group.duration_s)
            ending = endings.get(key)
            if ending is None:
                ending = endings[key] = _Ending(key)
                ending.cancel = self.clock.call_later(group.duration_s, partial(self._end, ending))
            ending.tasks.append((fw, task))
            running[(fid, task_id)] = (ending, group)

    def _kill(self, effect: KillOnAgent) -> None:
        """A preemption: the task ends at once, and its framework submits it again."""
        running = self._running.pop((effect.framework_id, effect.task_id), None)
        fw = self.by_id.get(effect.framework_id)
        if running is None or fw is None:
            return
        ending, group = running
        task_id = effect.task_id
        ending.tasks = [(f, t) for f, t in ending.tasks if f is not fw or t.task_id != task_id]
        if not ending.tasks:
            ending.cancel()
            del self._endings[ending.key]
        agent_id = ending.key[0]
        status = TaskStatus(
            effect.task_id, fw.id, agent_id, TaskState.KILLED,
            source=StatusSource.AGENT, timestamp=self.now,
        )
        self._apply(self.state.status_updates(agent_id, [status], self.now))
        fw.running -= 1
        fw.preempted += 1
        self.recorder.finished(group.resources, self.now)
        group.again = [*(group.again or []), self.now]
        self.pending += 1
        fw.pending_count += 1
        if fw.suppressed:
            fw.suppressed = False
            self._apply(self.state.revive(fw.id))
        self._request(fw)

    def _end(self, ending: _Ending) -> None:
        """The batch's tasks finished: one update each, sent together."""
        del self._endings[ending.key]
        agent_id = ending.key[0]
        now = self.now
        running = self._running
        statuses = []
        finished_state, source = TaskState.FINISHED, StatusSource.AGENT
        for fw, task in ending.tasks:
            task_id, fid = task.task_id, fw.id
            del running[(fid, task_id)]
            # `TaskStatus(task_id, fid, agent_id, FINISHED, source=AGENT, timestamp=now)`
            statuses.append(
                _task_status(
                    task_id, fid, agent_id, finished_state, "", "", source, b"", now, None, None
                )
            )
        self._apply(self.state.status_updates(agent_id, statuses, now))
        for fw, _ in ending.tasks:
            fw.running -= 1
            fw.finished += 1
        self.recorder.finished_all([task.resources for _, task in ending.tasks], now)

    def _apply(self, effects: list[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, AllocateSoon):
                self._allocation_wanted = True
            elif isinstance(effect, SendToFramework):
                fw = self.by_id.get(effect.framework_id)
                if fw is None:
                    continue
                if isinstance(effect.event, OffersEvent):
                    self._offers(fw, effect.event.offers)
                elif isinstance(effect.event, RescindEvent):
                    pass  # the offer is gone; its resources return to the pool
            elif isinstance(effect, LaunchOnAgent):
                self._launch(effect)
            elif isinstance(effect, KillOnAgent):
                self._kill(effect)
            # Registry writes, acknowledgements and the rest need no simulation.
        self._maybe_allocate()


def simulate(
    cluster: ClusterSpec, workload: WorkloadSpec, allocator: str = "drf", *, seed: int = 0,
    sample_interval_s: float = 1.0,
) -> SimResult:
    """Run `workload` on `cluster` under `allocator` and return its metrics."""
    return Simulation(
        cluster, workload, allocator, seed=seed, sample_interval_s=sample_interval_s
    ).run()
