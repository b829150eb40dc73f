"""`MasterActor`: the one owner of `MasterState` on the daemon's event loop.

Design:
- Only the actor changes the state, one synchronous call at a time (so no other coroutine
  can interleave between reading and writing it): `run(fn)` for the servicers' commands
  (`fn(now)`), its stream methods (`subscribe`, `register_agent`, `agent_message`, the
  `*_stream_closed`), and its timers. Then the effects are carried out: events are queued
  on the framework's or agent's stream, registry writes are handed to the group-commit
  writer. `run` returns only after the registry writes of that change are durable, so a
  reply that promises durability is sent after it.
- Streams are identified by their connection object: a stream that closes late (after its
  framework or agent reconnected on a new one) does not disconnect the new one.
- Allocation is driven by events: any change that frees or adds resources returns an
  `AllocateSoon` effect, and a pass runs `ALLOCATION_BATCH_S` later, coalescing bursts.
  A periodic pass every `allocation_interval_s` catches expired filters.
- The tick expires offers, failover timeouts and agent re-registration windows.
- Every timer (tick, periodic allocation, heartbeats, pings, allocation batching) goes
  through the injected `Clock`, so that unit tests drive the actor in virtual time.
- `pause()` (the master lost contact with ZooKeeper, see `leadership.py`) closes every
  stream and stops the timers' work until `resume()`, which gives disconnected agents and
  frameworks a fresh window: the time without ZooKeeper is not counted against them.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mesoslite.clock import Clock
from mesoslite.errors import (
    ConflictError,
    DeadlineExceededError,
    MesosliteError,
    NotFoundError,
    UnavailableError,
)
from mesoslite.ids import AgentId, FrameworkId, TaskId
from mesoslite.master.constants import ALLOCATION_BATCH_S, READ_FILE_TIMEOUT_S, TICK_INTERVAL_S
from mesoslite.master.events import (
    AllocateSoon,
    CloseFramework,
    DisconnectAgent,
    Effect,
    FrameworkEvent,
    PersistRegistry,
    SendToFramework,
)
from mesoslite.master.follow import FollowRelays
from mesoslite.master.registry.base import Registry, RegistryOp, RegistrySnapshot
from mesoslite.master.state import MasterState
from mesoslite.model import AgentInfo, FrameworkInfo, TaskSpec, TaskState

logger = logging.getLogger(__name__)

CLOSE = object()  # queued to end a stream
HEARTBEAT = object()  # queued to send a framework a heartbeat
PING = object()  # queued to ping an agent


@dataclass(slots=True)
class Connection:
    """One open stream to a framework or an agent; the servicer drains `queue`."""

    queue: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)
    closed: bool = False

    def send(self, item: Any) -> None:
        if not self.closed:
            self.queue.put_nowait(item)

    def close(self) -> None:
        if not self.closed:
            self.queue.put_nowait(CLOSE)
            self.closed = True


@dataclass(frozen=True, slots=True)
class _Write:
    """A `PersistRegistry` waiting in the group commit, and who waits for it."""

    effect: PersistRegistry
    future: asyncio.Future[None]


def _retryable(error: Exception) -> bool:
    """A store's error is worth retrying unless it says the request itself is wrong."""
    return not isinstance(error, MesosliteError) or error.status in ("UNAVAILABLE", "INTERNAL")


def _failure(error: Exception) -> MesosliteError:
    """What the caller of a failed write gets: the store's own error when it is about the
    request (e.g. INVALID_ARGUMENT for an object too big), else a retryable UNAVAILABLE."""
    if isinstance(error, MesosliteError) and not _retryable(error):
        return error
    return UnavailableError(f"registry write failed: {error}")


def _consume_exception(fut: asyncio.Future[None]) -> None:
    if not fut.cancelled():
        fut.exception()


@dataclass(frozen=True, slots=True)
class ReadFileRequest:
    request_id: int
    framework_id: FrameworkId
    task_id: TaskId
    name: str
    offset: int
    length: int


@dataclass(frozen=True, slots=True)
class FileChunk:
    data: bytes
    size: int
    state: TaskState


class MasterActor:
    def __init__(
        self,
        state: MasterState,
        registry: Registry,
        clock: Clock,
        *,
        allocation_interval_s: float,
        heartbeat_interval_s: float,
        agent_ping_interval_s: float,
        tick_interval_s: float = TICK_INTERVAL_S,
    ) -> None:
        self.state = state
        self.registry = registry
        self.clock = clock
        self.allocation_interval_s = allocation_interval_s
        self.heartbeat_interval_s = heartbeat_interval_s
        self.agent_ping_interval_s = agent_ping_interval_s
        self.tick_interval_s = tick_interval_s
        self.frameworks: dict[FrameworkId, Connection] = {}
        self.agents: dict[AgentId, Connection] = {}
        self._pending: list[_Write] = []
        self._writer: asyncio.Task[None] | None = None
        self._allocation_wanted = False
        self._cancel_allocation: Callable[[], None] | None = None
        # The periodic timers' current cancellers, by name (each re-arms itself).
        self._timers: dict[str, Callable[[], None]] = {}
        self._reads: dict[int, asyncio.Future[tuple[bytes, int, str]]] = {}
        self._read_ids = itertools.count(1)
        self.follows = FollowRelays()  # `Operator.FollowFile` streams (master/follow.py)
        self.paused = False
        # What the registry held when this master started leading (the jobs framework reads
        # its own part from it).
        self.snapshot = RegistrySnapshot()
        # Metrics and the web UI's live view (`master/http/metrics.py: MetricsObserver`):
        # told of each effect carried out, each allocation pass and each registry write.
        self.observer: Any = None
        # The HTTP server's host:port once it listens ('' without HTTP): `GetMaster` tells
        # it, for `mesoslite run`'s fast path (`master/http/run.py`).
        self.http_address = ""

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        snapshot = await self.registry.load()
        self.snapshot = snapshot
        self.state.recover(snapshot, self.clock.now())
        logger.info(
            "registry recovered agents=%d frameworks=%d",
            len(snapshot.agents),
            len(snapshot.frameworks),
        )
        self._every("tick", self.tick_interval_s, self._tick)
        self._every("alloc", self.allocation_interval_s, self._periodic_allocation)
        self._every("hb", self.heartbeat_interval_s, self._heartbeat)
        self._every("ping", self.agent_ping_interval_s, self._ping)

    async def stop(self) -> None:
        for cancel in self._timers.values():
            cancel()
        self._timers.clear()
        if self._cancel_allocation is not None:
            self._cancel_allocation()
            self._cancel_allocation = None
        for conn in [*self.frameworks.values(), *self.agents.values()]:
            conn.close()
        if self._writer is not None:
            await asyncio.gather(self._writer, return_exceptions=True)
        await self.registry.close()

    def pause(self) -> None:
        """Stop acting as leader until `resume()`: close every stream, idle the timers."""
        self.paused = True
        for conn in [*self.frameworks.values(), *self.agents.values()]:
            conn.close()

    async def writes_settled(self, timeout_s: float) -> None:
        """Wait (at most `timeout_s`) until the registry writes queued or in flight end."""
        if self._writer is not None and not self._writer.done():
            await asyncio.wait({self._writer}, timeout=timeout_s)

    def resume(self) -> None:
        """Act as leader again; disconnected agents and frameworks get a fresh window."""
        self.state.fresh_windows(self.clock.now())
        self.paused = False

    def _every(self, name: str, interval_s: float, fn: Callable[[], None]) -> None:
        """Call `fn` every `interval_s` on the clock (skipped while paused) until `stop`."""

        def fire() -> None:
            self._timers[name] = self.clock.call_later(interval_s, fire)
            if self.paused:
                return
            try:
                fn()
            except Exception:
                logger.exception("periodic %s failed", name)

        self._timers[name] = self.clock.call_later(interval_s, fire)

    # ------------------------------------------------------------------ running commands

    async def run(self, fn: Callable[[float], list[Effect]]) -> None:
        """Apply one change to the state and carry out its effects (see module docstring)."""
        effects = fn(self.clock.now())
        await self._carry_out(effects)

    async def _carry_out(self, effects: list[Effect]) -> None:
        futures = self._execute(effects)
        self._maybe_allocate()
        if futures:
            await asyncio.gather(*futures)

    def _execute(self, effects: list[Effect]) -> list[asyncio.Future[None]]:
        """Carry out `effects` in order; those after a `PersistRegistry` with an `undo` wait
        for its write (see `events.PersistRegistry`). Returns what to await for durability."""
        futures: list[asyncio.Future[None]] = []
        # "Allocate soon" never waits for a write: a pass may offer what is already free
        # (as the subscribing framework's stream is attached before its write, see
        # `subscribe`); what an undone change took back is rescinded by its undo.
        if any(isinstance(e, AllocateSoon) for e in effects):
            self._allocation_wanted = True
        for i, effect in enumerate(effects):
            if isinstance(effect, PersistRegistry):
                write = self._persist_effect(effect)
                if effect.undo is not None:
                    rest = effects[i + 1 :]
                    futures.append(asyncio.ensure_future(self._after(write, rest)))
                    break
                futures.append(write)
            else:
                self._execute_one(effect)
        for fut in futures:
            # Callers on timers drop the futures: the writer already logged any failure.
            fut.add_done_callback(_consume_exception)
        return futures

    async def _after(self, write: asyncio.Future[None], rest: list[Effect]) -> None:
        await write
        futures = self._execute(rest)
        self._maybe_allocate()
        if futures:
            await asyncio.gather(*futures)

    def _execute_one(self, effect: Effect) -> None:
        if self.observer is not None:
            self.observer.effect(effect)
        if isinstance(effect, SendToFramework):
            conn = self.frameworks.get(effect.framework_id)
            if conn is not None:
                conn.send(effect.event)
        elif isinstance(effect, CloseFramework):
            conn = self.frameworks.pop(effect.framework_id, None)
            if conn is not None:
                conn.close()
        elif isinstance(effect, DisconnectAgent):
            closing = self.agents.pop(effect.agent_id, None)
            if closing is not None:
                closing.close()
        elif not isinstance(effect, PersistRegistry | AllocateSoon):
            agent_conn = self.agents.get(effect.agent_id)
            if agent_conn is not None:
                agent_conn.send(effect)
            else:
                logger.debug(
                    "dropped %s: agent %s not connected", type(effect).__name__, effect.agent_id
                )

    async def persist(self, ops: list[RegistryOp]) -> None:
        """Write registry ops (of a part of the master outside `MasterState`, the jobs
        framework) in the group commit; returns once they are durable."""
        if ops:
            await self._persist_effect(PersistRegistry(tuple(ops)))

    def _persist_effect(self, effect: PersistRegistry) -> asyncio.Future[None]:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append(_Write(effect, fut))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_registry())
        return fut

    async def _write_registry(self) -> None:
        # Group commit: everything queued while one write runs goes in the next one.
        while self._pending:
            batch, self._pending = self._pending, []
            error = await self._try_apply(batch)
            if error is not None and len(batch) > 1 and not _retryable(error):
                # One command's ops are refused for what they are (too big): write the
                # others on their own, so that only that command fails.
                for write in batch:
                    self._settle([write], await self._try_apply([write]))
                continue
            self._settle(batch, error)

    async def _try_apply(self, batch: list[_Write]) -> Exception | None:
        started = time.perf_counter()
        try:
            await self.registry.apply([op for w in batch for op in w.effect.ops])
        except Exception as e:
            logger.error("registry write failed ops=%d: %s", len(batch), e)
            return e
        if self.observer is not None:
            self.observer.registry_written(time.perf_counter() - started)
        return None

    def _settle(self, batch: list[_Write], error: Exception | None) -> None:
        if error is None:
            for w in batch:
                if not w.future.done():
                    w.future.set_result(None)
            return
        # Undo the newest change first: each undo sees memory as its command left it.
        for w in reversed(batch):
            if w.effect.undo is not None:
                self._execute(w.effect.undo())
        self._maybe_allocate()
        failure = _failure(error)
        for w in batch:
            if not w.future.done():
                w.future.set_exception(failure)

    # ------------------------------------------------------------------ allocation and time

    def _maybe_allocate(self) -> None:
        if self._allocation_wanted and self._cancel_allocation is None:
            self._cancel_allocation = self.clock.call_later(ALLOCATION_BATCH_S, self._allocate)

    def _allocate(self) -> None:
        self._cancel_allocation = None
        if self.paused:
            return
        self._allocation_wanted = False
        started = time.perf_counter()
        effects = self.state.allocate(self.clock.now())
        if self.observer is not None:
            self.observer.allocation_pass(time.perf_counter() - started)
        self._execute(effects)

    def _periodic_allocation(self) -> None:
        # Full: it catches what no event told of (a filter that expired, #15).
        self.state.want_full_pass()
        self._allocation_wanted = True
        self._maybe_allocate()

    def _tick(self) -> None:
        self._execute(self.state.tick(self.clock.now()))
        self._maybe_allocate()

    def _heartbeat(self) -> None:
        for conn in self.frameworks.values():
            conn.send(HEARTBEAT)

    def _ping(self) -> None:
        for conn in self.agents.values():
            conn.send(PING)

    # ------------------------------------------------------------------ streams

    async def subscribe(self, info: FrameworkInfo, conn: Connection) -> FrameworkId:
        fid, effects = self.state.subscribe_framework(info, self.clock.now())
        old = self.frameworks.get(fid)
        if old is not None and old is not conn:
            old.send(_superseded())
            old.close()
        # Attach the stream before awaiting the registry write: an allocation pass may run
        # meanwhile, and its offers must reach this framework, not be dropped (they would sit
        # unseen until the offer timeout). The stream sends them after SUBSCRIBED.
        self.frameworks[fid] = conn
        try:
            await self._carry_out(effects)
        except BaseException:
            self.framework_stream_closed(fid, conn)
            raise
        return fid

    def framework_stream_closed(self, fid: FrameworkId, conn: Connection) -> None:
        conn.closed = True
        if self.frameworks.get(fid) is conn:
            del self.frameworks[fid]
            self._execute(self.state.framework_disconnected(fid, self.clock.now()))
            self._maybe_allocate()

    async def register_agent(
        self,
        info: AgentInfo,
        reported: list[tuple[FrameworkId, TaskSpec, TaskState]],
        conn: Connection,
    ) -> AgentId:
        now = self.clock.now()
        agent_id, effects = self.state.register_agent(info, reported, now)
        old = self.agents.get(agent_id)
        if old is not None and old is not conn:
            old.close()
        self.agents[agent_id] = conn
        try:
            await self._carry_out(effects)
        except BaseException:
            # Not admitted (the registry write failed): the caller closes the stream.
            if self.agents.get(agent_id) is conn:
                del self.agents[agent_id]
            raise
        return agent_id

    def agent_stream_closed(self, agent_id: AgentId, conn: Connection) -> None:
        conn.closed = True
        if self.agents.get(agent_id) is conn:
            del self.agents[agent_id]
            self._execute(self.state.agent_disconnected(agent_id, self.clock.now()))
            self._maybe_allocate()

    def agent_message(self, agent_id: AgentId, pending_updates: int | None = None) -> None:
        """A message came on the agent's stream: it is alive; a pong says how many
        updates it holds unacknowledged (`pending_updates`)."""
        now = self.clock.now()
        if pending_updates is None:
            self.state.agent_seen(agent_id, now)
        else:
            self.state.agent_pong(agent_id, pending_updates, now)

    # ------------------------------------------------------------------ sandbox files

    async def read_file(
        self, task_id: TaskId, fid: FrameworkId | None, name: str, offset: int, length: int
    ) -> FileChunk:
        record = self.state.locate_task(task_id, fid)
        conn = self.agents.get(record.agent_id)
        if conn is None:
            raise ConflictError(f"agent {record.agent_id} of task {task_id!r} is not connected")
        request_id = next(self._read_ids)
        fut: asyncio.Future[tuple[bytes, int, str]] = asyncio.get_running_loop().create_future()
        self._reads[request_id] = fut
        conn.send(ReadFileRequest(request_id, record.framework_id, task_id, name, offset, length))

        def time_out() -> None:
            if not fut.done():
                fut.set_exception(TimeoutError())

        cancel = self.clock.call_later(READ_FILE_TIMEOUT_S, time_out)
        try:
            data, size, error = await fut
        except TimeoutError:
            raise DeadlineExceededError(
                f"agent {record.agent_id} did not answer a file read in {READ_FILE_TIMEOUT_S:g}s"
            ) from None
        finally:
            cancel()
            self._reads.pop(request_id, None)
        if error:
            raise NotFoundError(error)
        # Look again: the task may have ended while the read was in flight.
        latest = self.state.locate_task(task_id, record.framework_id)
        return FileChunk(data, size, latest.state)

    def file_chunk(self, request_id: int, data: bytes, size: int, error: str) -> None:
        fut = self._reads.get(request_id)
        if fut is not None and not fut.done():
            fut.set_result((data, size, error))


def _superseded() -> FrameworkEvent:
    from mesoslite.master.events import ErrorEvent

    return ErrorEvent("framework re-subscribed on another connection")
