"""What the jobs framework tells the master about its work for priority tiers (#16): the
instances waiting for room, by role and shape (so that a higher tier's waiting work can
preempt a lower tier's), and the check of a spec's `priority:` against its role's tier."""

from __future__ import annotations

from collections.abc import Mapping

from mesoslite.allocator.base import Demand
from mesoslite.errors import ValidationError
from mesoslite.jobs.book import JobBook
from mesoslite.jobs.model import JobSpec
from mesoslite.jobs.placement import waiting
from mesoslite.resources import Resources

WaitingByRole = Mapping[str, tuple[Demand, ...]]


def waiting_by_role(book: JobBook, now: float) -> dict[str, tuple[Demand, ...]]:
    """Waiting instances as demands: role -> (shape, count), shapes in first-seen order."""
    counts: dict[str, dict[str, tuple[Resources, int]]] = {}
    for job, _run, _inst in waiting(book, now):
        shapes = counts.setdefault(job.spec.role, {})
        key = str(job.spec.resources)  # `Resources` holds dicts: not hashable
        _, n = shapes.get(key, (job.spec.resources, 0))
        shapes[key] = (job.spec.resources, n + 1)
    return {
        role: tuple(Demand(shape, n) for shape, n in shapes.values())
        for role, shapes in counts.items()
    }


def check_priority(spec: JobSpec, role_priority: int) -> None:
    """A spec's `priority:` must be its role's tier: jobs are served by their role's tier,
    so a mismatch would promise what the allocator does not do. Raises `ValidationError`."""
    if spec.priority is None or spec.priority == role_priority:
        return
    raise ValidationError(
        "priority",
        f"is {spec.priority} but role {spec.role!r} has priority {role_priority}; run"
        f" 'mesoslite role set-priority {spec.role} {spec.priority}' or use a role of that tier",
    )
