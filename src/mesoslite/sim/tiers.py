"""Per-tier figures of a simulation (#16): how long each priority tier's tasks waited for
an offer, and how many of its tasks were preempted for higher tiers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mesoslite.allocator.tiers import priority_of
from mesoslite.sim.metrics import percentile

if TYPE_CHECKING:
    from mesoslite.sim.engine import Simulation


@dataclass(frozen=True, slots=True)
class TierStats:
    """One priority tier: the frameworks whose (first) role has this priority."""

    priority: int
    roles: tuple[str, ...]
    tasks: int
    launched: int
    wait_p50_s: float
    wait_p99_s: float
    wait_max_s: float
    preempted: int

    def to_json(self) -> dict[str, Any]:
        return {
            "priority": self.priority,
            "roles": list(self.roles),
            "tasks": self.tasks,
            "launched": self.launched,
            "wait_p50_s": self.wait_p50_s,
            "wait_p99_s": self.wait_p99_s,
            "wait_max_s": self.wait_max_s,
            "preempted": self.preempted,
        }


def tier_stats(sim: Simulation) -> tuple[TierStats, ...]:
    """Tiers, highest first. Launches count every launch (a preempted task launches again)."""
    priorities = sim.state.roles.priorities
    by_tier: dict[int, list[Any]] = {}
    for fw in sim.frameworks:
        by_tier.setdefault(priority_of(fw.spec.all_roles[0], priorities), []).append(fw)
    out = []
    for priority in sorted(by_tier, reverse=True):
        members = by_tier[priority]
        waits = [w for fw in members for w in fw.wait_times]
        out.append(
            TierStats(
                priority,
                tuple(sorted({r for fw in members for r in fw.spec.all_roles})),
                sum(fw.total_tasks for fw in members),
                len(waits),
                percentile(waits, 50),
                percentile(waits, 99),
                max(waits, default=0.0),
                sum(fw.preempted for fw in members),
            )
        )
    return tuple(out)
