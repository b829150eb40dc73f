"""What the master's Jobs gRPC service asks of the jobs framework (in the same process)."""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator
from typing import Protocol

from mesoslite.jobs.model import AttemptView, JobPlan, JobView
from mesoslite.jobs.summary import JobSummary


class JobsApi(Protocol):
    """Every method raises a `mesoslite.errors` class on bad input and changes nothing then:
    `ValidationError` (a bad spec; its `field` is the path), `AlreadyExistsError` (submit of
    a name in use by a job that has not ended), `NotFoundError` (an unknown name),
    `ConflictError` (update of a job whose type differs, kill of an ended job is a no-op)."""

    async def submit(self, spec_yaml: str) -> JobView: ...

    async def update(self, spec_yaml: str) -> JobView: ...

    async def kill(self, name: str) -> JobView: ...

    async def remove(self, name: str) -> None:
        """Forget an ended job, in the registry before returning; `ConflictError` for a job
        that has not ended (or whose tasks are still being killed)."""
        ...

    def list(self) -> builtins.list[JobView]: ...

    def status(self, name: str) -> JobView: ...

    def history(self, name: str) -> builtins.list[AttemptView]: ...

    def plan(self, spec_yaml: str) -> JobPlan:
        """What submitting (or updating) the spec would do now; changes nothing."""
        ...

    async def suspend(self, name: str) -> JobView:
        """Cron only (`ConflictError` otherwise): start no run until `resume`."""
        ...

    async def resume(self, name: str) -> JobView: ...

    async def run_now(self, name: str) -> JobView:
        """Cron only: one run now, under its concurrency policy (`ConflictError` if it
        forbids one while a run is active)."""
        ...

    def watch(self, name: str, min_interval_s: float) -> AsyncIterator[JobSummary]:
        """The job's summaries as they change, ending after a terminal state
        (`jobs.watch`); `NotFoundError` at once for an unknown name. Optional: the Jobs
        service answers UNIMPLEMENTED for an api without it, and the CLI polls `status`."""
        ...
