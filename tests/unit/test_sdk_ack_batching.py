"""The driver's implicit acknowledgements (issue 15): the updates handled while an
acknowledgement is in flight go together in the next call, none is lost, and each call
holds at most `MAX_ACKS_PER_CALL`. No sockets: the call itself is recorded."""

from __future__ import annotations

import asyncio

from mesoslite.ids import AgentId, FrameworkId, TaskId
from mesoslite.model import TaskState, TaskStatus
from mesoslite.scheduler_api import FrameworkInfo, SchedulerDriver
from mesoslite.scheduler_api import driver as driver_module


class Quiet:
    def on_update(self, driver: object, status: object) -> None:
        pass


class Recording(SchedulerDriver):
    """Records each acknowledgement call; a call ends when the test says so."""

    def __init__(self) -> None:
        super().__init__(Quiet(), FrameworkInfo(name="t"))
        self.calls: list[list[str]] = []
        self.release = asyncio.Event()

    async def acknowledge(self, *statuses: TaskStatus) -> None:
        self.calls.append([s.task_id for s in statuses])
        await self.release.wait()


def updates(*names: str) -> list[TaskStatus]:
    return [TaskStatus(TaskId(n), FrameworkId("f"), AgentId("a"), TaskState.FINISHED,
                       uuid=n.encode()) for n in names]


def test_updates_handled_during_a_call_go_together_in_the_next_one() -> None:
    async def main() -> list[list[str]]:
        d = Recording()
        d._acknowledge_soon(updates("a", "b"))
        await asyncio.sleep(0)  # the first call is in flight
        d._acknowledge_soon(updates("c"))
        d._acknowledge_soon(updates("d", "e"))
        await asyncio.sleep(0)
        assert d.calls == [["a", "b"]]  # the others wait for it
        d.release.set()
        await asyncio.wait(set(d._background), timeout=5)
        return d.calls

    assert asyncio.run(main()) == [["a", "b"], ["c", "d", "e"]]


def test_a_call_holds_at_most_the_cap_and_none_is_left(monkeypatch: object) -> None:
    monkeypatch.setattr(driver_module, "MAX_ACKS_PER_CALL", 2)  # type: ignore[attr-defined]

    async def main() -> list[list[str]]:
        d = Recording()
        d.release.set()
        d._acknowledge_soon(updates("a", "b", "c", "d", "e"))
        await asyncio.wait(set(d._background), timeout=5)
        return d.calls

    assert asyncio.run(main()) == [["a", "b"], ["c", "d"], ["e"]]


def test_stop_waits_for_the_queued_acknowledgements() -> None:
    async def main() -> list[list[str]]:
        d = Recording()
        d._acknowledge_soon(updates("a"))
        await asyncio.sleep(0)
        d._acknowledge_soon(updates("b"))
        asyncio.get_running_loop().call_later(0.05, d.release.set)
        await d.stop(failover=True)  # not subscribed: no teardown call, only the acks
        return d.calls

    assert asyncio.run(main()) == [["a"], ["b"]]
