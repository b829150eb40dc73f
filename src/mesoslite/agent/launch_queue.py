"""`LaunchQueue`: the agent's tasks waiting to be spawned, started a chunk per loop iteration.

Design:
- `AgentState` asks for a spawn (`StartProcess`); the key waits here. Each loop iteration
  takes up to `LAUNCH_CHUNK` of them, so one huge `LaunchTasks` does not keep pings,
  acknowledgements and exits waiting, writes their launch intents in one checkpoint write
  before any spawn, and hands the chunk to the launcher in one exchange.
- With the task supervisor one chunk is in flight (issue 15): chunk k+1 is sent before
  chunk k's pids are collected, so the supervisor's vforks overlap the agent's own work.
  Until its pids are in, a chunk's tasks are STAGING with no process. Whatever is about to
  touch one of them (a kill, the framework's shutdown, the agent stopping) first collects
  the chunk (`settle`, `finish`): `AgentState` only ever sees a task with its process or
  without one, so a task killed then ends KILLED once, through its process's exit.
- Without the supervisor the launcher starts a chunk at once: it is collected at once.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mesoslite.agent import constants as k
from mesoslite.agent.effects import TaskKey
from mesoslite.agent.exit_log import ExitSink
from mesoslite.model import TaskSpec

if TYPE_CHECKING:
    from mesoslite.agent.actor import AgentActor
    from mesoslite.agent.launcher import LaunchedTask, LaunchError


@dataclass(slots=True)
class Inflight:
    """A chunk sent: its tasks, their cgroups, and its results or what collects them."""

    chunk: list[tuple[TaskKey, TaskSpec, ExitSink | None]]
    cgroups: list[tuple[str, ...]]
    results: list[LaunchedTask | LaunchError] | Callable[[], list[LaunchedTask | LaunchError]]


class LaunchQueue:
    """See the module docstring; `actor` carries out each task's result (`launched`)."""

    def __init__(self, actor: AgentActor) -> None:
        self.actor = actor
        self.keys: deque[TaskKey] = deque()
        self.handle: asyncio.Handle | None = None
        self.inflight: Inflight | None = None

    def add(self, key: TaskKey) -> None:
        self.keys.append(key)
        if self.handle is None:
            self.handle = asyncio.get_running_loop().call_soon(self.launch_some)

    def clear(self) -> None:
        """Stop: nothing more is started (collect the chunk out first: `finish`)."""
        self.keys.clear()
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None

    def launch_some(self) -> None:
        a = self.actor
        self.handle = None
        chunk: list[tuple[TaskKey, TaskSpec, ExitSink | None]] = []
        for _ in range(min(k.LAUNCH_CHUNK, len(self.keys))):
            key = self.keys.popleft()
            spec = a.state.wants_start(key)
            if spec is not None:  # else killed while it waited
                chunk.append((key, spec, a.store.prepare_launch(*key)))
        sent = None
        if chunk:
            a.store.flush()  # the chunk's launch intents, in one write, before any spawn
            # The whole chunk in one exchange with the task supervisor, if there is one.
            cgroups = [a.isolator.prepare(*key, spec.resources) for key, spec, _ in chunk]
            items = [
                (key[0], spec, sink, cg)
                for (key, spec, sink), cg in zip(chunk, cgroups, strict=True)
            ]
            sent = Inflight(chunk, cgroups, a.launcher.start_many(items))
        self.finish()  # the chunk before: its pids, while the supervisor starts this one
        self.inflight = sent
        if sent is not None and not callable(sent.results):
            self.finish()  # started at once (no supervisor): nothing to overlap
        if self.keys or self.inflight is not None:
            self.handle = asyncio.get_running_loop().call_soon(self.launch_some)

    def settle(self, touches: Callable[[TaskKey], bool]) -> None:
        """Collect the chunk in flight if a command is about to touch one of its tasks."""
        if self.inflight is not None and any(touches(key) for key, _, _ in self.inflight.chunk):
            self.finish()

    def finish(self) -> None:
        """The chunk in flight's results: each task RUNNING with its pid, or failed."""
        sent, self.inflight = self.inflight, None
        if sent is None:
            return
        results = sent.results() if callable(sent.results) else sent.results
        for (key, spec, _), cg, result in zip(sent.chunk, sent.cgroups, results, strict=True):
            self.actor.launched(key, spec, cg, result)
        self.actor.store.flush()  # and their pids
