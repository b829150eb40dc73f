"""Placement stops trying a job without constraints once one of its instances found no room
(issue 15): later instances of that job need the same resources and room only shrinks, so
trying them again against every offer is wasted work. The result is the same."""

from __future__ import annotations

from typing import Any

import pytest

from mesoslite.jobs import placement
from mesoslite.jobs.core import JobsCore

from .test_core import T0, launch_all, offer, submit

JOB = """
name: many
type: batch
command: "true"
instances: 50
resources: {cpus: 1, mem: 64}
"""


def test_a_job_without_constraints_is_tried_once_after_it_found_no_room(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = 0
    choose = placement._choose

    def counted(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        return choose(*args, **kwargs)

    monkeypatch.setattr(placement, "_choose", counted)
    core = JobsCore()
    submit(core, JOB)
    tasks = launch_all(core, [offer(1), offer(2)], T0)  # 4 cpus each: room for 8
    assert len(tasks) == 8
    # 8 placed, then one instance finds no room; the other 41 are not tried.
    assert calls == 9
    waiting = [i for i in core.jobs["many"].runs[0].instances if i.current is None]
    assert len(waiting) == 42
