"""`mesoslite simulate`'s progress line: one line on stderr, redrawn in place, only when
stderr is a terminal (a pipe or a file gets nothing, so that output stays clean)."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

# Redraw at most this often (wall seconds): a run makes millions of events.
REDRAW_S = 0.1


class SimProgress:
    """Wraps a `Simulation`'s recorder, which the engine calls at every virtual instant,
    and redraws `simulate NAME [i/n]: t=…s launched … of …` from there. No engine change:
    the simulator's code is another's, and this only reads what it exposes."""

    def __init__(self, sim: Any, label: str, total_tasks: int, out: TextIO) -> None:
        self._sim = sim
        self._recorder = sim.recorder
        self._label = label
        self._total = total_tasks
        self._out = out
        self._last = 0.0
        sim.recorder = self

    def __getattr__(self, name: str) -> Any:
        return getattr(self._recorder, name)

    def advance(self, when: float, sim: Any) -> None:
        self._recorder.advance(when, sim)
        now = time.monotonic()
        if now - self._last >= REDRAW_S:
            self._last = now
            self._out.write(
                f"\r{self._label}: t={when:,.1f}s launched {sim.launched:,} of "
                f"{self._total:,} tasks\x1b[K"
            )
            self._out.flush()

    def done(self) -> None:
        self._out.write("\r\x1b[K")
        self._out.flush()


def total_tasks(workload: Any) -> int:
    return sum(g.count for fw in workload.frameworks for g in fw.tasks)


def run_with_progress(sim: Any, label: str, workload: Any, out: TextIO | None = None) -> Any:
    """`sim.run()`, with a progress line on `out` (stderr) if it is a terminal."""
    stream = sys.stderr if out is None else out
    if not stream.isatty():
        return sim.run()
    progress = SimProgress(sim, label, total_tasks(workload), stream)
    try:
        return sim.run()
    finally:
        progress.done()
