"""`FollowRelays`: the master's side of `Operator.FollowFile`, relaying an agent's follow.

Design:
- `follow()` is one `FollowFile` stream. It asks the task's agent, on the agent's stream, to
  follow the file (`FollowOnAgent`); the agent pushes chunks (`file_data`), which are passed
  on to the reader. Each chunk passed on is credited back (`CreditOnAgent`): the agent keeps
  at most a window of uncredited bytes, so a slow reader holds back its own follow and
  costs the master at most a window per stream.
- The end: the agent says `eof` once the task ended on its side and the file is sent; the
  stream then ends with the task's terminal status as the master knows it. The agent's
  terminal update travels ahead of `eof` on the same stream, so it is normally applied
  already; if it is not, the stream waits for the agent's next updates, at most
  `END_WAIT_S` on the master's clock, and then ends with the status it has.
- The reader going away (the call is cancelled) sends `StopFollowOnAgent`; the agent's stream
  closing fails the follow with UNAVAILABLE, and the reader may follow again from where it
  got to (after an agent reconnects, or with the next leading master).
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from mesoslite.clock import Clock
from mesoslite.errors import ConflictError, UnavailableError
from mesoslite.ids import AgentId, FrameworkId, TaskId
from mesoslite.master.records import TaskRecord
from mesoslite.model import TaskStatus


class _TaskLocator(Protocol):
    def locate_task(self, task_id: TaskId, fid: FrameworkId | None) -> TaskRecord: ...


class FollowHost(Protocol):
    """What a follow needs of `MasterActor` (a Protocol: the actor imports this module)."""

    @property
    def state(self) -> _TaskLocator: ...

    @property
    def agents(self) -> Mapping[AgentId, Any]: ...

    @property
    def clock(self) -> Clock: ...

# How long an ended follow waits for the task's terminal update before it ends anyway.
END_WAIT_S = 5.0


@dataclass(frozen=True, slots=True)
class FollowOnAgent:
    """Queued on an agent's stream: follow this file (see `agent/follow.py`)."""

    follow_id: int
    framework_id: FrameworkId
    task_id: TaskId
    name: str
    offset: int


@dataclass(frozen=True, slots=True)
class CreditOnAgent:
    """Queued on an agent's stream: the follow's bytes before `offset` were passed on."""

    follow_id: int
    offset: int


@dataclass(frozen=True, slots=True)
class StopFollowOnAgent:
    follow_id: int


@dataclass(frozen=True, slots=True)
class FollowData:
    offset: int
    data: bytes


@dataclass(frozen=True, slots=True)
class FollowEnd:
    offset: int
    status: TaskStatus


@dataclass(slots=True, eq=False)
class _Relay:
    follow_id: int
    conn: Any  # the agent's `Connection`
    agent_id: AgentId
    chunks: deque[FollowData] = field(default_factory=deque)
    eof: bool = False
    lost: bool = False
    waited: bool = False  # END_WAIT_S passed after eof
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    def set_waited(self) -> None:
        self.waited = True
        self.wake.set()


class FollowRelays:
    """Every `FollowFile` stream the master serves, by follow id. See the module docstring."""

    def __init__(self) -> None:
        self._relays: dict[int, _Relay] = {}
        self._ids = itertools.count(1)

    def __len__(self) -> int:
        return len(self._relays)

    # -- from the agents' streams

    def file_data(self, follow_id: int, offset: int, data: bytes, eof: bool) -> None:
        relay = self._relays.get(follow_id)
        if relay is None:
            return  # its reader went away; the agent was told to stop
        if data:
            relay.chunks.append(FollowData(offset, data))
        relay.eof = relay.eof or eof
        relay.wake.set()

    def tasks_updated(self, agent_id: AgentId) -> None:
        """Status updates from `agent_id` were applied: an ended follow may end now."""
        for relay in self._relays.values():
            if relay.agent_id == agent_id and relay.eof:
                relay.wake.set()

    def connection_closed(self, conn: Any) -> None:
        for relay in self._relays.values():
            if relay.conn is conn:
                relay.lost = True
                relay.wake.set()

    # -- one FollowFile stream

    async def follow(
        self, actor: FollowHost, task_id: TaskId, fid: FrameworkId | None, name: str, offset: int
    ) -> AsyncGenerator[FollowData | FollowEnd, None]:
        """The file's chunks from `offset`, then a `FollowEnd`.

        Raises:
            NotFoundError: the task is not known.
            ConflictError: the task has ended and its agent is not connected.
            UnavailableError: its agent is not connected, or its stream closed meanwhile.
        """
        record = actor.state.locate_task(task_id, fid)
        conn = actor.agents.get(record.agent_id)
        if conn is None or conn.closed:
            text = f"agent {record.agent_id} of task {task_id!r} is not connected"
            # An ended task's output comes back only with its agent: no point trying again soon.
            raise ConflictError(text) if record.state.terminal else UnavailableError(text)
        relay = _Relay(next(self._ids), conn, record.agent_id)
        self._relays[relay.follow_id] = relay
        conn.send(FollowOnAgent(relay.follow_id, record.framework_id, task_id, name, offset))
        cancel_wait = None
        try:
            while True:
                while relay.chunks:
                    chunk = relay.chunks.popleft()
                    yield chunk
                    offset = chunk.offset + len(chunk.data)
                    conn.send(CreditOnAgent(relay.follow_id, offset))
                if relay.lost:
                    raise UnavailableError(
                        f"lost agent {record.agent_id} while following {name} of task {task_id!r}"
                    )
                if relay.eof:
                    latest = actor.state.locate_task(task_id, record.framework_id)
                    if latest.state.terminal or relay.waited:
                        yield FollowEnd(offset, latest.status)
                        return
                    if cancel_wait is None:
                        cancel_wait = actor.clock.call_later(END_WAIT_S, relay.set_waited)
                await relay.wake.wait()
                relay.wake.clear()
        finally:
            if cancel_wait is not None:
                cancel_wait()
            del self._relays[relay.follow_id]
            if not relay.eof and not relay.lost:
                conn.send(StopFollowOnAgent(relay.follow_id))
