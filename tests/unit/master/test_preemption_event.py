"""The PREEMPTION event on the wire (#16): the master's `PreemptionEvent` becomes a protobuf
event that the SDK decodes into its `on_preemption(driver, task_ids, deadline)` callback."""

from __future__ import annotations

from mesoslite.ids import TaskId
from mesoslite.master.convert import event_to_pb
from mesoslite.master.events import PreemptionEvent
from mesoslite.scheduler_api.dispatch import Callback, plain_callback


def test_a_preemption_notice_reaches_the_sdk_callback_with_its_tasks_and_deadline() -> None:
    event = PreemptionEvent((TaskId("t1"), TaskId("t2")), 1234.5, "for role urgent")
    wire = event_to_pb(event)
    assert wire.preemption.message == "for role urgent"
    assert plain_callback(wire) == Callback("on_preemption", (["t1", "t2"], 1234.5))
