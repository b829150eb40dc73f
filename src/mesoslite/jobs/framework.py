"""`JobsFramework`: the jobs framework's I/O shell, run inside the leading master.

It registers like any framework and keeps every job in the registry through the master's
group commit, both through its port (`port.MasterPort`, implemented by the master in
process: no protobuf, no loopback gRPC).
The rule that makes it survive restarts and failovers: persist first, act after. A launch
is written (task id, agent) before the ACCEPT, a cron time is written as handled before its
run starts, and a status update is acknowledged only once the change it caused is durable.
After a restart it reconciles every task it had launched, and kills tasks of its framework
it does not know.

Its timers (the tick that fires cron times, ends retry backoffs and expires jobs, and the
reconciliation that also subscribes again) run on the injected `Clock`, so tests drive them
in virtual time. Each runs its interval after the previous run ended, never two at once.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from mesoslite.clock import Clock
from mesoslite.errors import MesosliteError, UnavailableError, ValidationError
from mesoslite.ids import FrameworkId, OfferId
from mesoslite.jobs.core import JobsCore, Kill, Placement
from mesoslite.jobs.documents import job_to_doc
from mesoslite.jobs.model import AttemptView, JobPlan, JobState, JobView
from mesoslite.jobs.plan import pending_reasons, plan_job, with_pending_reasons
from mesoslite.jobs.port import ClusterRoom, MasterPort
from mesoslite.jobs.records import Job
from mesoslite.jobs.spec import parse_job_spec
from mesoslite.jobs.summary import JobSummary
from mesoslite.jobs.waiting import WaitingByRole, check_priority, waiting_by_role
from mesoslite.jobs.watch import DEFAULT_MIN_INTERVAL_S, WriteSignal, watch_job
from mesoslite.model import FrameworkInfo, Offer, TaskStatus
from mesoslite.resources import format_resources

logger = logging.getLogger(__name__)

FRAMEWORK_NAME = "mesoslite-jobs"
# Long: a master restart or failover must never time the jobs framework out.
FAILOVER_TIMEOUT_S = 7 * 24 * 3600.0
TICK_S = 0.2
# How often the waiting instances are counted for the master's preemption (#16).
DECLARE_WAITING_EVERY_S = 1.0
RECONCILE_EVERY_S = 2.0
DECLINE_BUSY_S = 1.0  # refuse_seconds while instances wait (a retry may want the offer soon)
DECLINE_IDLE_S = 30.0
# Ended jobs are removed this long after they ended (`--job-retention-s`; 0 keeps them).
DEFAULT_JOB_RETENTION_S = 7 * 24 * 3600.0


class JobsFramework:
    def __init__(
        self, port: MasterPort, clock: Clock,
        roles: tuple[str, ...] = ("*",), job_retention_s: float = DEFAULT_JOB_RETENTION_S,
    ) -> None:
        self.port = port
        self.clock = clock
        self.job_retention_s = job_retention_s
        self.core = JobsCore()
        loaded = port.load()
        bad = self.core.load(loaded.docs)
        if bad:
            logger.error("jobs not loaded (kept in the registry as they are): %s", bad)
        self.core.unconfirmed = {t for t, _ in self.core.active_attempts()}
        # The roles it holds: `roles` (--jobs-roles) and every role a job of the registry
        # names, ended ones included (never dropped: tasks of an ended job may still run).
        self.roles = tuple(sorted(set(roles) | {j.spec.role for j in self.core.jobs.values()}))
        self.framework_id = FrameworkId(loaded.framework_id)
        self.subscribed = False
        self._roles_lock = asyncio.Lock()
        self._suppressed = False
        self._waiting: WaitingByRole = {}
        self._declared_at = float("-inf")
        self._running = False
        self._cancel_timers: dict[str, Callable[[], None]] = {}
        self._timer_runs: set[asyncio.Task[None]] = set()
        # Batched persistence: changes made while one write runs go in the next one.
        self._flush_waiters: builtins.list[asyncio.Future[None]] = []
        self._flusher: asyncio.Task[None] | None = None
        # Updates to acknowledge, all in one call, once the write holding their changes is
        # durable (one write per batch of transitions; a failed one acknowledges nothing).
        self._acks: builtins.list[TaskStatus] = []
        self._background: set[asyncio.Task[None]] = set()
        # Each job's state as last written, and a signal after each write (for `watch`).
        self._durable_states: dict[str, JobState] = {
            name: job.state for name, job in self.core.jobs.items()}
        self._writing: set[str] = set()
        self.written = WriteSignal()

    async def _hold_role(self, role: str) -> None:
        """Take `role` on (subscribing again with it) before a job in it is accepted."""
        async with self._roles_lock:
            if role in self.roles:
                return
            roles, self.roles = self.roles, tuple(sorted({*self.roles, role}))
            try:
                await self._subscribe()
            except MesosliteError:
                self.roles = roles
                raise
            logger.info("jobs framework holds roles %s", ",".join(self.roles))

    async def _subscribe(self) -> None:
        info = FrameworkInfo(
            name=FRAMEWORK_NAME, role="", roles=self.roles,
            failover_timeout_s=FAILOVER_TIMEOUT_S, id=self.framework_id,
        )
        framework_id = await self.port.subscribe(info, self)
        self.subscribed = True
        await self.on_subscribed(framework_id)

    async def start(self) -> None:
        try:
            await self._subscribe()
        except MesosliteError as e:
            logger.warning("jobs framework cannot subscribe yet (tried again): %s", e)
        self._running = True
        self._every("jobs-tick", TICK_S, TICK_S, self._tick)
        # Sooner if it could not subscribe: that is retried by this timer.
        first = RECONCILE_EVERY_S if self.subscribed else TICK_S
        self._every("jobs-reconcile", first, RECONCILE_EVERY_S, self._reconcile_or_subscribe)
        logger.info("jobs framework started jobs=%d", len(self.core.jobs))

    async def stop(self) -> None:
        self._running = False
        self.written.fire()  # watches end: this master no longer answers for the jobs
        for cancel in self._cancel_timers.values():
            cancel()
        self._cancel_timers.clear()
        pending = [t for t in (self._flusher, *self._timer_runs, *self._background)
                   if t is not None]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        # Failover stop: the framework stays registered, its tasks keep running.
        self.subscribed = False
        await self.port.unsubscribe()

    # ------------------------------------------------------------------ the JobsApi

    async def submit(self, spec_yaml: str) -> JobView:
        spec = parse_job_spec(spec_yaml)
        self._check_fits(spec.resources)
        check_priority(spec, self.port.role_priority(spec.role))
        self.core.check_submit(spec)
        await self._hold_role(spec.role)
        old = self.core.jobs.get(spec.name)
        job = self.core.submit(spec, spec_yaml, self.clock.now())
        try:
            await self._persist()
        except MesosliteError:
            # Not acknowledged, so it must not happen: the job goes (an ended one it
            # replaced comes back, as the registry still has it).
            self.core.withdraw(spec.name, old)
            raise
        await self._want_offers()
        return job.view()

    async def update(self, spec_yaml: str) -> JobView:
        spec = parse_job_spec(spec_yaml)
        self._check_fits(spec.resources)
        check_priority(spec, self.port.role_priority(spec.role))
        self.core.check_update(spec)
        await self._hold_role(spec.role)
        job, kills = self.core.update(spec, spec_yaml, self.clock.now())
        await self._persist()
        await self._kill(kills)
        await self._want_offers()
        return job.view()

    async def kill(self, name: str) -> JobView:
        job, kills = self.core.kill(name, self.clock.now())
        await self._persist()
        await self._kill(kills)
        return job.view()

    async def remove(self, name: str) -> None:
        """Forget an ended job, in the registry first: a failed write leaves it as it was."""
        job = self.core.remove(name)
        try:
            await self._persist()
        except MesosliteError:
            self.core.restore(job)
            raise
        logger.info("job removed job=%s", name)

    async def _expire(self, now: float) -> None:
        jobs = [self.core.remove(name) for name in self.core.expired(now, self.job_retention_s)]
        if not jobs:
            return
        try:
            await self._persist()
        except MesosliteError:
            for job in jobs:  # tried again at the next tick
                self.core.restore(job)
            raise
        names = [j.name for j in jobs]
        logger.info("jobs removed after --job-retention-s=%g: %s",
                    self.job_retention_s, ",".join(names))

    def list(self) -> builtins.list[JobView]:
        self.core.refresh()
        jobs = sorted(self.core.jobs.values(), key=lambda j: j.submitted_at)
        room = self.port.cluster_room()
        return [with_pending_reasons(j.view(), pending_reasons(j, room)) for j in jobs]

    def status(self, name: str) -> JobView:
        job = self.core.get(name)
        return with_pending_reasons(job.view(), pending_reasons(job, self.port.cluster_room()))

    def plan(self, spec_yaml: str) -> JobPlan:
        """What `submit` (or `update`, for a job that has not ended) would do now; raises
        what they would raise, and changes nothing."""
        spec = parse_job_spec(spec_yaml)
        self._check_fits(spec.resources)
        old = self.core.jobs.get(spec.name)
        if old is not None and not old.state.terminal:
            self.core.check_update(spec)
        return plan_job(spec, old, self.port.cluster_room(), self.clock.now())

    async def suspend(self, name: str) -> JobView:
        job = self.core.suspend(name, self.clock.now())
        await self._persist()
        return job.view()

    async def resume(self, name: str) -> JobView:
        job = self.core.resume(name, self.clock.now())
        await self._persist()
        return job.view()

    async def run_now(self, name: str) -> JobView:
        job, kills = self.core.run_now(name, self.clock.now())
        await self._persist()
        await self._kill(kills)
        await self._want_offers()
        return job.view()

    def history(self, name: str) -> builtins.list[AttemptView]:
        return self.core.get(name).attempt_history()

    def watch(
        self, name: str, min_interval_s: float = DEFAULT_MIN_INTERVAL_S
    ) -> AsyncIterator[JobSummary]:
        """The job's summaries as they change, ending after a terminal state (`jobs.watch`)."""
        self.core.get(name)  # NotFoundError now, before the stream starts
        return watch_job(self, name, min_interval_s)

    @property
    def running(self) -> bool:
        return self._running

    def job(self, name: str) -> Job:
        return self.core.get(name)

    def durable_state(self, job: Job) -> tuple[JobState, bool]:
        """The job's state as written, and whether that is its state now: its state if no
        change is left to write (RUNNING, HEALTHY follow from what was), else its last
        write's."""
        if job.name not in self.core.dirty and job.name not in self._writing:
            return job.state, True
        written = self._durable_states.get(job.name)
        return (job.state, False) if written is None else (written, written == job.state)

    def cluster_room(self) -> ClusterRoom:
        return self.port.cluster_room()

    def _check_fits(self, resources: Any) -> None:
        """Refuse a spec no agent could ever run (there must be agents to judge by)."""
        agents = self.port.agent_totals()
        if agents and not any(a.contains(resources) for a in agents):
            largest = max(agents, key=lambda r: r.scalar("cpus"))
            raise ValidationError(
                "resources",
                f"no agent has {format_resources(resources)} in all "
                f"(largest: {format_resources(largest)})",
            )

    # ------------------------------------------------------------------ the master's events

    async def on_subscribed(self, framework_id: FrameworkId) -> None:
        if framework_id != self.framework_id:
            await self.port.set_framework_id(framework_id)
            self.framework_id = framework_id
        # Ask for everything: our attempts by id, and (implicitly) every task the master has
        # for us, so that tasks we do not know are found and killed.
        self.core.unconfirmed = {t for t, _ in self.core.active_attempts()}
        self._waiting = {}  # a new master knows nothing of what we declared
        await self._reconcile()
        await self.port.reconcile()
        # Idle: say so at once, so that offers go to frameworks that have work.
        self._suppressed = not self.core.wants_offers(self.clock.now())
        await self._quietly(self.port.suppress() if self._suppressed else self.port.revive())

    async def on_offers(self, offers: builtins.list[Offer]) -> None:
        # Decided now; launched once recorded. The event stream goes on meanwhile, so that
        # the changes of many events are written together.
        placement = self.core.place(offers, self.clock.now())
        self._spawn(self._launch(offers, placement))

    async def _launch(self, offers: builtins.list[Offer], placement: Placement) -> None:
        try:
            await self._persist()
        except MesosliteError as e:
            logger.error("cannot record launches, declining the offers: %s", e)
            placement.declined = list(offers)
            placement.launches = []
        for offer, tasks in placement.launches:
            try:
                await self.port.accept(offer.id, tasks)
            except MesosliteError as e:
                # The tasks are recorded: reconciliation finds them lost and they start again.
                logger.warning("accept failed offer=%s: %s", offer.id, e)
                self.core.unconfirmed.update(t.task_id for t in tasks)
        if placement.declined:
            busy = self.core.wants_offers(self.clock.now())
            await self._decline([o.id for o in placement.declined],
                                DECLINE_BUSY_S if busy else DECLINE_IDLE_S)
            if not busy and not self._suppressed:
                self._suppressed = True
                await self._quietly(self.port.suppress())

    async def on_updates(self, statuses: builtins.list[TaskStatus]) -> None:
        kills = self.core.on_updates(statuses, self.clock.now())
        self._acks += [s for s in statuses if s.uuid]
        self._spawn(self._after_updates(statuses, kills))

    async def _after_updates(
        self, statuses: builtins.list[TaskStatus], kills: builtins.list[Kill]
    ) -> None:
        try:
            await self._persist()  # the flush acknowledges them once written
        except MesosliteError as e:
            # Not acknowledged: the agents send the updates again.
            logger.warning("cannot record %d updates (first task_id=%s): %s",
                           len(statuses), statuses[0].task_id if statuses else "-", e)
            return
        await self._kill(kills)
        await self._want_offers()

    async def on_error(self, message: str) -> None:
        logger.error("jobs framework stopped by the master: %s", message)
        self.subscribed = False

    # ------------------------------------------------------------------ internals

    @property
    def timer_running(self) -> bool:
        """Whether a run of a timer (tick, reconcile) is under way (tests that drive the
        clock move it only between runs, as real time would rarely outrun them)."""
        return bool(self._timer_runs)

    def _every(
        self, name: str, first_s: float, interval_s: float,
        step: Callable[[], Awaitable[None]],
    ) -> None:
        """Run `step` `first_s` from now, then `interval_s` after each run ended."""

        def fire() -> None:
            self._cancel_timers.pop(name, None)
            if self._running:
                run = asyncio.create_task(self._run_step(name, interval_s, step), name=name)
                self._timer_runs.add(run)
                run.add_done_callback(self._timer_runs.discard)

        self._cancel_timers[name] = self.clock.call_later(first_s, fire)

    async def _run_step(
        self, name: str, interval_s: float, step: Callable[[], Awaitable[None]],
    ) -> None:
        try:
            await step()
        except MesosliteError as e:
            logger.warning("%s: %s", name, e)
        except Exception:
            logger.exception("%s failed", name)
        if self._running:
            self._every(name, interval_s, interval_s, step)

    async def _tick(self) -> None:
        now = self.clock.now()
        kills = self.core.tick(now)
        await self._persist()
        await self._expire(now)
        await self._kill(kills)
        await self._want_offers(look=True)
        await self._declare_waiting(now)

    async def _declare_waiting(self, now: float) -> None:
        """Tell the master what waits, by role, when it changed (preemption, #16); looked
        at every `DECLARE_WAITING_EVERY_S` (a walk over the jobs), not every tick."""
        if now - self._declared_at < DECLARE_WAITING_EVERY_S:
            return
        self._declared_at = now
        by_role = waiting_by_role(self.core.book, now) if self.subscribed else {}
        if by_role != self._waiting:
            self._waiting = by_role
            await self._quietly(self.port.declare_waiting(by_role))

    async def _reconcile_or_subscribe(self) -> None:
        if not self.subscribed:
            await self._subscribe()
        elif self.core.unconfirmed:
            await self._reconcile()

    async def _persist(self) -> None:
        """Return once every change made to the core before this call is in the registry."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._flush_waiters.append(fut)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="jobs-flush")
        await fut

    async def _flush(self) -> None:
        while self._flush_waiters:
            await asyncio.sleep(0)  # let the rest of this loop turn's changes join
            waiters, self._flush_waiters = self._flush_waiters, []
            # Taken with the changes: what an update changed is in this write or in one
            # before it (this loop writes one at a time), so it is durable when this is.
            acks, self._acks = self._acks, []
            removed, jobs = self.core.take_removed(), self.core.take_dirty()
            states = {j.name: j.state for j in jobs}
            self._writing = {*states, *removed}
            try:
                await self.port.persist({j.name: job_to_doc(j) for j in jobs}, removed)
            except Exception as e:
                self._writing = set()
                self.written.fire()
                # Written again with the next change; the waiters' callers do not act, and
                # nothing is acknowledged (the agents send those updates again).
                self.core.dirty.update(j.name for j in jobs)
                self.core.removed.update(n for n in removed if n not in self.core.jobs)
                if not isinstance(e, MesosliteError):
                    e = UnavailableError(f"registry write failed: {e}")
                for w in waiters:
                    if not w.done():
                        w.set_exception(e)
                continue
            self._writing = set()
            for name in removed:
                self._durable_states.pop(name, None)
            self._durable_states.update(states)
            self.written.fire()
            for w in waiters:
                if not w.done():
                    w.set_result(None)
            if acks:
                await self._quietly(self.port.acknowledge(newest_per_task(acks)))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _kill(self, kills: builtins.list[Kill]) -> None:
        if not self.subscribed:
            return  # resent by the tick while they stay KILLING
        for k in kills:
            await self._quietly(self.port.kill(k.task_id, k.agent_id))

    async def _decline(self, offer_ids: builtins.list[OfferId], refuse_s: float) -> None:
        await self._quietly(self.port.decline(offer_ids, refuse_s))

    async def _want_offers(self, *, look: bool = False) -> None:
        """Revive if suppressed and an instance waits; `look`: check even if the core added
        no work since the last check (backoffs that ended, a new job)."""
        if not (self._suppressed and self.subscribed):
            return
        if not (look or self.core.work_added):
            return
        self.core.work_added = False
        if self.core.wants_offers(self.clock.now()):
            self._suppressed = False
            await self._quietly(self.port.revive())

    async def _reconcile(self) -> None:
        wanted = [(t, a) for t, a in self.core.active_attempts() if t in self.core.unconfirmed]
        if wanted:
            await self._quietly(self.port.reconcile(wanted))

    async def _quietly(self, call: Any) -> None:
        try:
            await call
        except MesosliteError as e:
            logger.warning("jobs framework call failed: %s", e)


def newest_per_task(statuses: builtins.list[TaskStatus]) -> builtins.list[TaskStatus]:
    """Each task's newest update of a batch: acknowledgements are cumulative per task (the
    agent drops the older updates of a task with the one acknowledged), so RUNNING and
    FINISHED of a short task cost the agent one acknowledgement, not two."""
    newest: dict[tuple[str, str], TaskStatus] = {}
    for status in statuses:  # in the order the agent sent them, oldest first
        newest.pop((status.agent_id, status.task_id), None)
        newest[(status.agent_id, status.task_id)] = status
    return builtins.list(newest.values())
