"""`RunNow`: the master's side of `mesoslite run`'s fast path (issue 15).

Design:
- One call runs one task: a framework of its own is subscribed in process (as the jobs
  framework is, `jobs_port.py`), the task's shape is its demand, and the allocator is asked
  at once (`place_now`) instead of at the next allocation batch. That pass is the allocator's
  own, over the whole cluster with every other framework suppressed, so roles, weights,
  quota limits, reservations and filters hold as in any pass; it only hands out resources to
  this framework. If nothing fits now, the framework simply waits for the ordinary passes,
  and says why (`framework explain`'s reason) as `mesoslite run` does.
- Its framework is not written to the registry (nor its removal): a run lives only as long
  as its client's connection to this master, whose loss ends the client (exit 69), so a
  new leader has no one to keep it for. An agent that re-registers with the new leader
  reports the task, whose framework the leader does not know: the leader has it killed
  (`ShutdownFrameworkOnAgent`) and acknowledges its last update for it, as it would 10 s
  later (`RUN_FAILOVER_S`) for a framework it knew but that never came back.
- The task's stdout and stderr are relayed from its agent (`FollowRelays`, as
  `Operator.FollowFile` does); its exit status comes with the terminal update.
- What the caller reads is a sequence of frames on `Run.frames`: output, messages for its
  stderr, and last the exit code `mesoslite run` exits with. `Run.close()` tears the
  framework down, which kills the task if it still runs: a caller that goes away (its
  connection drops) leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, replace
from functools import partial

from mesoslite.allocator.base import AllocationRound, Demand
from mesoslite.clock import Clock
from mesoslite.errors import MesosliteError
from mesoslite.ids import FrameworkId, TaskId
from mesoslite.master import allocation
from mesoslite.master.actor import CLOSE, Connection, MasterActor
from mesoslite.master.constants import MAX_READ_LENGTH
from mesoslite.master.events import Effect, ErrorEvent, OffersEvent, PersistRegistry, UpdateEvent
from mesoslite.master.follow import FollowData, FollowEnd
from mesoslite.master.registry.base import AddFramework, RemoveFramework
from mesoslite.master.state import MasterState
from mesoslite.model import FrameworkInfo, Offer, TaskSpec, TaskState, TaskStatus
from mesoslite.resources import format_resources
from mesoslite.run_exit import (
    EXIT_INTERNAL,
    EXIT_REJECTED,
    EXIT_TEMPFAIL,
    EXIT_UNAVAILABLE,
    exit_code_of,
)

logger = logging.getLogger(__name__)

# As the slow path (`cli/run.py`): the same exit codes, the same waits.
RUN_FAILOVER_S = 10.0
PENDING_EXPLAIN_S = 2.0
EXPLAIN_EVERY_S = 0.5
RETRY_S = 0.2
DRAIN_TIMEOUT_S = 10.0
FILES = ("stdout", "stderr")


@dataclass(frozen=True, slots=True)
class Frame:
    """One piece of the answer: `kind` is "stdout", "stderr", "message" or "exit"."""

    kind: str
    data: bytes


def place_now(state: MasterState, fid: FrameworkId, now: float) -> list[Effect]:
    """One allocation pass for `fid` alone: the allocator over the whole cluster, every
    other framework suppressed (still counted in shares and quota), offers made to `fid` only."""
    books = state.books
    # `_locality_aware`: the policy ranks agents (`ssf`); as `MasterState.allocate` passes it.
    full = allocation.view(books, now, int(now * 1000), getattr(state, "_locality_aware", False))
    if not any(f.id == fid for f in full.frameworks) or not full.agents:
        return []
    focused = tuple(f if f.id == fid else replace(f, suppressed=True) for f in full.frameworks)
    result = state.allocator.allocate(replace(full, frameworks=focused), now)
    # Keep every other framework's last reason: this pass says nothing about them.
    reasons = dict(books.last_reasons)
    role_reasons = {f: dict(r) for f, r in books.last_role_reasons.items()}
    if fid in result.reasons:
        reasons[fid] = result.reasons[fid]
    if fid in result.role_reasons:
        role_reasons[fid] = dict(result.role_reasons[fid])
    mine = tuple(g for g in result.grants if g.framework_id == fid)
    return allocation.make_offers(
        books, AllocationRound(mine, reasons, result.seed, role_reasons), now
    )


def unregistered(effects: list[Effect], fid: FrameworkId) -> list[Effect]:
    """`effects` without the registry writes that add or remove the framework `fid`."""

    def framework_only(effect: Effect) -> bool:
        if not isinstance(effect, PersistRegistry):
            return False
        return all(
            isinstance(op, AddFramework) and op.info.id == fid
            or isinstance(op, RemoveFramework) and op.framework_id == fid
            for op in effect.ops
        )

    return [e for e in effects if not framework_only(e)]


async def _sleep(clock: Clock, delay_s: float) -> None:
    """Sleep on the injected clock (virtual in tests)."""
    fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    def wake() -> None:
        if not fut.done():
            fut.set_result(None)

    cancel = clock.call_later(delay_s, wake)
    try:
        await fut
    finally:
        cancel()


def fit_problem(state: MasterState, task: TaskSpec) -> tuple[str, int] | None:
    """Why no agent could ever hold the task (message, exit code), or None."""
    agents = [a for a in state.agents.values() if a.status in ("active", "disconnected")]
    if not agents:
        return (
            "no agents are registered with the master: start one with mesoslite-agent "
            "(or use mesoslite local)", EXIT_UNAVAILABLE,
        )
    wanted = task.resources
    if any(a.info.resources.contains(wanted) for a in agents):
        return None
    largest = max(
        agents, key=lambda a: (a.info.resources.scalar("cpus"), a.info.resources.scalar("mem"))
    )
    total = largest.info.resources
    return (
        f"no agent can ever fit {format_resources(wanted)}: "
        f"{'; '.join(total.shortfall(wanted))} "
        f"(largest agent {largest.info.hostname}: {format_resources(total)})", EXIT_REJECTED,
    )


class Run:
    """One task run by `RunNow.start`: read `frames` until an "exit" frame; `kill()` on the
    user's Ctrl-C; `close()` always (it tears the framework down)."""

    def __init__(self, actor: MasterActor, task: TaskSpec, role: str, timeout_s: float) -> None:
        self.actor, self.task, self.role, self.timeout_s = actor, task, role, timeout_s
        self.frames: asyncio.Queue[Frame] = asyncio.Queue()
        self.fid = FrameworkId("")
        self.conn = Connection()
        self.killed = False
        loop = asyncio.get_running_loop()
        self.offered = asyncio.Event()  # an offer that fits came: the task is being launched
        self.accepted = asyncio.Event()
        # The terminal status; None if the run ended without one (killed before it launched).
        self.terminal: asyncio.Future[TaskStatus | None] = loop.create_future()
        self._tasks: list[asyncio.Task[None]] = []
        self.offsets = dict.fromkeys(FILES, 0)  # bytes of each file passed on

    def say(self, text: str) -> None:
        self.frames.put_nowait(Frame("message", f"mesoslite run: {text}\n".encode()))

    def _exit(self, code: int) -> None:
        self.frames.put_nowait(Frame("exit", str(code).encode()))

    async def start(self) -> None:
        """Subscribe and ask for a place now; the rest goes on in the background."""
        state = self.actor.state
        problem = fit_problem(state, self.task)
        if problem is not None:
            self.say(problem[0])
            self._exit(problem[1])
            return
        info = FrameworkInfo(
            name=f"mesoslite-run {self.task.name}"[:200], role=self.role,
            failover_timeout_s=RUN_FAILOVER_S,
        )
        await self.actor.run(partial(self._subscribe, info))
        self._tasks.append(asyncio.create_task(self._events(), name="run-events"))
        fid, demand = self.fid, [Demand(self.task.resources, 1)]
        await self.actor.run(lambda now: state.request(fid, demand))
        await self.actor.run(lambda now: place_now(state, fid, now))
        self._tasks.append(asyncio.create_task(self._drive(), name="run-drive"))

    def _subscribe(self, info: FrameworkInfo, now: float) -> list[Effect]:
        """`MasterActor.subscribe` without the registry write (see the module docstring)."""
        self.fid, effects = self.actor.state.subscribe_framework(info, now)
        self.actor.frameworks[self.fid] = self.conn
        return unregistered(effects, self.fid)

    async def kill(self) -> None:
        if self.killed or not self.fid:
            return
        self.killed = True
        self.say(f"killing task {self.task.task_id}")
        if not self.offered.is_set():
            if not self.terminal.done():
                self.terminal.set_result(None)
            return
        fid, task_id = self.fid, self.task.task_id
        await self.actor.run(lambda now: self.actor.state.kill_task(fid, task_id, 0.0))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.fid and self.fid in self.actor.state.frameworks:
            fid = self.fid
            with contextlib.suppress(MesosliteError):
                await self.actor.run(
                    lambda now: unregistered(self.actor.state.teardown(fid, now), fid)
                )

    # ------------------------------------------------------------------ the framework's side

    async def _events(self) -> None:
        while True:
            item = await self.conn.queue.get()
            if item is CLOSE:
                return
            if isinstance(item, OffersEvent):
                await self._answer(list(item.offers))
            elif isinstance(item, UpdateEvent):
                await self._updates(item.statuses)
            elif isinstance(item, ErrorEvent) and not self.terminal.done():
                self.say(f"the master ended the run: {item.message}")
                self.terminal.set_result(None)

    async def _answer(self, offers: list[Offer]) -> None:
        state, fid = self.actor.state, self.fid
        for offer in offers:
            if not self.offered.is_set() and offer.resources.contains(self.task.resources):
                self.offered.set()
                try:
                    accept = partial(state.accept, fid, [offer.id], [self.task], 3600.0)
                    await self.actor.run(accept)
                except MesosliteError as e:
                    # E.g. the offer was rescinded meanwhile: wait for the next one.
                    logger.info("run accept failed task_id=%s: %s", self.task.task_id, e)
                    self.offered.clear()
                    continue
                self.accepted.set()
                await self.actor.run(lambda now: state.suppress(fid))
            else:
                refuse_s = 3600.0 if self.offered.is_set() else 1.0
                await self.actor.run(partial(state.decline, fid, [offer.id], refuse_s))

    async def _updates(self, statuses: tuple[TaskStatus, ...]) -> None:
        acks = [(s.agent_id, s.task_id, s.uuid) for s in statuses if s.uuid]
        if acks:
            fid = self.fid
            await self.actor.run(lambda now: self.actor.state.acknowledge(fid, acks))
        for status in statuses:
            if status.task_id == self.task.task_id and status.state.terminal:
                if not self.terminal.done():
                    self.terminal.set_result(status)

    async def _drive(self) -> None:
        try:
            if not await self._placed():
                return
            copying = [asyncio.create_task(self._copy(name)) for name in FILES]
            status = await self.terminal
            if status is not None:
                copying = await self._read_rest(copying)
            await asyncio.gather(*copying)
        except MesosliteError as e:
            self.say(e.message)
            self._exit(EXIT_UNAVAILABLE)
            return
        except Exception:
            # The client must always get an exit code, never wait for one forever.
            logger.exception("run failed task_id=%s", self.task.task_id)
            self.say("the master failed running the task (see its log)")
            self._exit(EXIT_INTERNAL)
            return
        if status is None:
            self._exit(130 if self.killed else EXIT_REJECTED)
            return
        self._report(status)

    def _report(self, status: TaskStatus) -> None:
        signalled = status.exit_code is not None and status.exit_code < 0
        if status.state != TaskState.FINISHED and (
            status.state != TaskState.FAILED or status.exit_code is None or self.killed
            or signalled
        ):
            why = f": {status.message}" if status.message else ""
            self.say(f"task {self.task.task_id} {status.state.label}{why}")
        self._exit(exit_code_of(status, self.killed))

    async def _placed(self) -> bool:
        """Wait until the task is launched, saying why while it waits; False if it never was
        (an "exit" frame is queued then)."""
        clock = self.actor.clock
        timed_out = asyncio.Event()
        cancel = clock.call_later(self.timeout_s, timed_out.set)
        explaining = asyncio.create_task(self._say_why_pending())
        try:
            waits: list[asyncio.Future[object]] = [
                asyncio.ensure_future(e.wait()) for e in (self.accepted, timed_out)
            ]
            waits.append(asyncio.ensure_future(asyncio.shield(self.terminal)))
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for w in waits:
                w.cancel()
        finally:
            cancel()
            explaining.cancel()
        if self.accepted.is_set():
            return True
        if self.killed:
            self._exit(130)
        elif timed_out.is_set():
            self.say(
                f"no offer could fit the task within {self.timeout_s:g}s: the agents that "
                "could hold it are busy (see mesoslite agent list)"
            )
            self._exit(EXIT_TEMPFAIL)
        else:
            self._exit(EXIT_REJECTED)
        return False

    async def _say_why_pending(self) -> None:
        """As the slow path: after `PENDING_EXPLAIN_S`, the allocator's reason, again when it
        changes."""
        clock, said = self.actor.clock, ""
        await _sleep(clock, PENDING_EXPLAIN_S)
        while not self.offered.is_set():
            with contextlib.suppress(MesosliteError):
                reason = self.actor.state.explain(self.fid, clock.now()).last_reason
                if reason and reason != said:
                    self.say(f"task {self.task.task_id} is pending: {reason}")
                    said = reason
            await _sleep(clock, EXPLAIN_EVERY_S)

    async def _read_rest(self, copying: list[asyncio.Task[None]]) -> list[asyncio.Task[None]]:
        """The task has ended: a follow that has not ended with it yet is stopped and the rest
        of its file read now, both files at once, rather than wait for the agent to end the
        follow. (The agent sends a follow's eof ahead of the terminal update when it had
        sent the whole file, `agent/follow.py: tasks_ended`, so for most runs there is nothing
        to read here.) If a read fails, the file is followed again instead. Returns the copies
        still to wait for."""
        still = [copy for copy in copying if copy.done()]
        names = [name for name, copy in zip(FILES, copying, strict=True) if not copy.done()]
        for copy in copying:
            copy.cancel()
        await asyncio.gather(*copying, return_exceptions=True)
        read = await asyncio.gather(*(self._read_to_end(name) for name in names))
        for name, done in zip(names, read, strict=True):
            if not done:
                still.append(asyncio.create_task(self._copy(name)))
        return still

    async def _read_to_end(self, name: str) -> bool:
        """Read the ended task's file `name` from where its copy got to; False on failure."""
        try:
            while True:
                chunk = await self.actor.read_file(
                    self.task.task_id, self.fid, name, self.offsets[name], MAX_READ_LENGTH
                )
                if chunk.data:
                    self.frames.put_nowait(Frame(name, chunk.data))
                    self.offsets[name] += len(chunk.data)
                if not chunk.data or self.offsets[name] >= chunk.size:
                    return True
        except MesosliteError:
            return False

    async def _copy(self, name: str) -> None:
        """Relay one file to its end; a broken follow is followed again from where it got to,
        until `DRAIN_TIMEOUT_S` after the task ended."""
        deadline = None
        clock = self.actor.clock
        while True:
            follows, task_id = self.actor.follows, self.task.task_id
            follow = follows.follow(self.actor, task_id, self.fid, name, self.offsets[name])
            try:
                async with contextlib.aclosing(follow):
                    async for item in follow:
                        if isinstance(item, FollowData):
                            data = item.data[max(0, self.offsets[name] - item.offset):]
                            if data:
                                self.frames.put_nowait(Frame(name, data))
                                self.offsets[name] += len(data)
                        elif isinstance(item, FollowEnd):
                            return
                error = f"the stream of {name} ended early"
            except MesosliteError as e:
                error = e.message
            if self.terminal.done():
                deadline = deadline or clock.now() + DRAIN_TIMEOUT_S
                if clock.now() >= deadline:
                    self.say(f"could not read the rest of the output: {error}")
                    return
            await _sleep(clock, RETRY_S)


class RunNow:
    """The runs under way on this master, by task id (so that a kill finds its run)."""

    def __init__(self, actor: MasterActor) -> None:
        self.actor = actor
        self.runs: dict[TaskId, Run] = {}

    async def start(self, task: TaskSpec, role: str, timeout_s: float) -> Run:
        run = Run(self.actor, task, role, timeout_s)
        self.runs[task.task_id] = run
        try:
            await run.start()
        except BaseException:
            await self.finish(run)
            raise
        return run

    async def finish(self, run: Run) -> None:
        self.runs.pop(run.task.task_id, None)
        await run.close()

    async def kill(self, task_id: TaskId) -> bool:
        run = self.runs.get(task_id)
        if run is None:
            return False
        await run.kill()
        return True
