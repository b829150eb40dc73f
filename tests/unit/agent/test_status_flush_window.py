"""The agent's status-update flush window (issue 15): it gathers a burst of updates into one
message, but a lone update after a quiet spell (`mesoslite run`'s task ending) does not wait
for it."""

from __future__ import annotations

from mesoslite.agent import constants as k
from mesoslite.agent import effects as fx
from mesoslite.model import TaskState

from .harness import AgentHarness, spec


def _flush_delays(effects: list[fx.Effect]) -> list[float]:
    return [e.delay_s for e in effects if isinstance(e, fx.StartTimer)
            and isinstance(e.timer, fx.FlushTimer)]


def test_a_lone_update_leaves_without_the_window_and_a_burst_still_gathers() -> None:
    h = AgentHarness()
    h.launch(spec("t1"), spec("t2"), spec("t3"))
    assert _flush_delays(h.spawn("t1")) == [0.0]  # quiet till now: no window
    h.spawn("t2")  # same instant, before the flush: gathered with it
    h.advance(0)
    assert [[s.task_id for s in m] for m in h.messages()] == [["t1", "t2"]]
    # Right after a flush: the window gathers what follows.
    assert _flush_delays(h.spawn("t3")) == [k.STATUS_FLUSH_DELAY_S]
    assert _flush_delays(h.exit("t1", 0)) == []
    h.advance(k.STATUS_FLUSH_DELAY_S)
    assert [[s.state for s in m] for m in h.messages()][1] == [
        TaskState.RUNNING, TaskState.FINISHED]
    # A quiet spell later, a lone end goes at once again.
    h.advance(1.0)
    assert _flush_delays(h.exit("t2", 0)) == [0.0]
