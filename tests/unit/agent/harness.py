"""`AgentHarness`: drives `AgentState` on a `VirtualClock` and records its effects, no I/O.

It plays the shell's part: timers run on the virtual clock and fire back into the state;
every other effect is recorded with the virtual time it was asked for. Processes, exits and
health results are whatever the test says they are.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mesoslite.agent import effects as fx
from mesoslite.agent.effects import Effect, TaskKey
from mesoslite.agent.recovered import RecoveredTask
from mesoslite.agent.state import AgentState
from mesoslite.clock import VirtualClock
from mesoslite.ids import AgentId, FrameworkId, TaskId
from mesoslite.model import CommandSpec, TaskSpec, TaskState, TaskStatus
from mesoslite.resources import parse_resources

FW = FrameworkId("fw-1")
START = 1_000_000.0


def key(task_id: str, fw: FrameworkId = FW) -> TaskKey:
    return (fw, TaskId(task_id))


def spec(task_id: str, resources: str = "cpus:0.1;mem:16", **kw: Any) -> TaskSpec:
    return TaskSpec(TaskId(task_id), CommandSpec.of_shell("true"), parse_resources(resources), **kw)


class AgentHarness:
    def __init__(self, *, connect: bool = True, **options: Any) -> None:
        self.clock = VirtualClock(START)
        defaults: dict[str, Any] = dict(
            agent_id=AgentId(""),
            hostname="h1",
            resources=parse_resources("cpus:2;mem:256"),
            attributes={"rack": "r1"},
            kill_grace_period_s=3.0,
            status_update_retry_s=5.0,
            recover="reconnect",
        )
        self.state = AgentState(**{**defaults, **options})
        self.log: list[tuple[float, Effect]] = []
        self._timers: dict[fx.Timer, Callable[[], None]] = {}
        if connect:
            self.connect()
        self.run(self.state.start())

    # ------------------------------------------------------------------ the shell's part

    def run(self, effects: list[Effect]) -> list[Effect]:
        for e in effects:
            if isinstance(e, fx.StartTimer):
                self._cancel(e.timer)
                self._timers[e.timer] = self.clock.call_later(e.delay_s, self._firing(e.timer))
            elif isinstance(e, fx.CancelTimer):
                self._cancel(e.timer)
            else:
                self.log.append((self.clock.now(), e))
        return effects

    def _cancel(self, timer: fx.Timer) -> None:
        cancel = self._timers.pop(timer, None)
        if cancel is not None:
            cancel()

    def _firing(self, timer: fx.Timer) -> Callable[[], None]:
        return lambda: self._fire(timer)

    def _fire(self, timer: fx.Timer) -> None:
        del self._timers[timer]
        self.run(self.state.timer_fired(timer, self.clock.now()))

    def timers(self) -> set[fx.Timer]:
        return set(self._timers)

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @property
    def now(self) -> float:
        return self.clock.now()

    # ------------------------------------------------------------------ commands

    def connect(self) -> None:
        self.run(self.state.registered(AgentId("ag-1"), self.now))

    def launch(self, *specs: TaskSpec, fw: FrameworkId = FW) -> list[Effect]:
        return self.run(self.state.launch_tasks(fw, list(specs), self.now))

    def spawn(self, task_id: str, fw: FrameworkId = FW) -> list[Effect]:
        """The shell spawned the queued task's process."""
        assert self.state.wants_start(key(task_id, fw)) is not None
        return self.run(self.state.process_started(key(task_id, fw), self.now))

    def start(self, *specs: TaskSpec, fw: FrameworkId = FW) -> None:
        """Launch and spawn, then let the flush window pass."""
        self.launch(*specs, fw=fw)
        for s in specs:
            self.spawn(s.task_id, fw)
        self.advance(0.01)

    def exit(self, task_id: str, code: int, **kw: Any) -> list[Effect]:
        return self.run(self.state.exited(key(task_id), code, self.now, **kw))

    def kill(self, task_id: str, grace_s: float = 0.0) -> list[Effect]:
        return self.run(self.state.kill_task(FW, TaskId(task_id), grace_s, self.now))

    def ack(self, *statuses: TaskStatus) -> list[Effect]:
        return self.run(
            self.state.acknowledge([(s.framework_id, s.task_id, s.uuid) for s in statuses])
        )

    def health(self, task_id: str, ok: bool, detail: str = "detail") -> list[Effect]:
        return self.run(self.state.health_result(key(task_id), ok, detail, self.now))

    def recover(self, found: list[RecoveredTask]) -> list[Effect]:
        return self.run(self.state.recover(found, self.now))

    # ------------------------------------------------------------------ what it asked for

    def effects(self, kind: type, since: float = 0.0) -> list[Any]:
        return [e for t, e in self.log if isinstance(e, kind) and t >= since]

    def when(self, effect: Effect) -> float:
        return next(t for t, e in self.log if e == effect)

    def messages(self) -> list[tuple[TaskStatus, ...]]:
        return [e.statuses for e in self.effects(fx.SendUpdates)]

    def sent(self, task_id: str | None = None) -> list[TaskStatus]:
        return [s for m in self.messages() for s in m if task_id in (None, s.task_id)]

    def states(self, task_id: str) -> list[TaskState]:
        return [s.state for s in self.sent(task_id)]

    def terminal(self, task_id: str) -> TaskStatus:
        return next(s for s in self.sent(task_id) if s.state.terminal)

    def signals(self, task_id: str) -> list[tuple[float, bool]]:
        """(when, SIGKILL?) of each signal sent to the task."""
        return [
            (t, e.force)
            for t, e in self.log
            if isinstance(e, fx.SignalTask) and e.key == key(task_id)
        ]
