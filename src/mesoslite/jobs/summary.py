"""`JobSummary`: a job's progress in a few numbers (what `job submit --wait` shows), built
without a view of every instance (issue 15: a 1,000-instance job's full status cost the
master 13-25 ms per poll). Built by `jobs.watch.summarise`; the CLI imports only this."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from mesoslite.jobs.model import InstanceState, JobState, JobType


@dataclass(frozen=True, slots=True)
class JobSummary:
    name: str
    type: JobType
    state: JobState
    message: str = ""
    instances_wanted: int = 0
    next_run_at: float | None = None
    # The shown run's instances by state (the current run, else the last): states with
    # none left out.
    counts: Mapping[InstanceState, int] = field(default_factory=dict)
    unhealthy: int = 0  # running instances whose health check fails
    durable: bool = True  # `state` is in the registry

    def count(self, state: InstanceState) -> int:
        return self.counts.get(state, 0)

