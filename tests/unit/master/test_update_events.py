"""The framework stream sends the updates queued back to back as one UPDATE event (issue
15): one message, one dispatch and one acknowledgement for all, in order, capped."""

from __future__ import annotations

from mesoslite.ids import AgentId, FrameworkId, OfferId, TaskId
from mesoslite.master import scheduler_service as svc
from mesoslite.master.actor import CLOSE, Connection
from mesoslite.master.events import RescindEvent, UpdateEvent
from mesoslite.model import TaskState, TaskStatus


def ev(*names: str) -> UpdateEvent:
    return UpdateEvent(tuple(TaskStatus(TaskId(n), FrameworkId("f"), AgentId("a"),
                                        TaskState.RUNNING) for n in names))


def ids(e: UpdateEvent) -> list[str]:
    return [s.task_id for s in e.statuses]


def queued(*items: object) -> Connection:
    conn = Connection()
    for item in items:
        conn.queue.put_nowait(item)
    return conn


def test_updates_queued_back_to_back_become_one_event() -> None:
    conn = queued(ev("b"), ev("c", "d"))
    out, held = svc._gather_updates(conn, ev("a"))
    assert ids(out) == ["a", "b", "c", "d"] and held is None
    assert conn.queue.empty()


def test_an_event_of_another_kind_ends_the_run_and_comes_next() -> None:
    rescind = RescindEvent(OfferId("o1"))
    conn = queued(ev("b"), rescind, ev("c"), CLOSE)
    out, held = svc._gather_updates(conn, ev("a"))
    assert ids(out) == ["a", "b"] and held is rescind
    # What follows the held one is left in the queue, in order.
    assert ids(conn.queue.get_nowait()) == ["c"] and conn.queue.get_nowait() is CLOSE


def test_nothing_queued_sends_the_event_as_it_is() -> None:
    first = ev("a")
    assert svc._gather_updates(Connection(), first) == (first, None)


def test_an_event_holds_at_most_the_cap(monkeypatch: object) -> None:
    monkeypatch.setattr(svc, "MAX_UPDATES_PER_EVENT", 3)  # type: ignore[attr-defined]
    conn = queued(ev("b", "c"), ev("d"), ev("e"))
    out, held = svc._gather_updates(conn, ev("a"))
    assert ids(out) == ["a", "b", "c"] and held is None
    assert ids(conn.queue.get_nowait()) == ["d"]
