"""`PreemptionBook`: what the master keeps for preemption (#16): waiting work declared per
role, since when each waits, the tasks it preempted, and agents held for a waiting tier.
Data only; the decisions are in `preemption.py`."""

from __future__ import annotations

from dataclasses import dataclass, field

from mesoslite.allocator.base import Demand
from mesoslite.ids import AgentId, FrameworkId, TaskId


@dataclass(slots=True)
class Hold:
    """An agent being emptied for `priority`'s waiting work: lower tiers are not offered it
    until `until` (or until that work no longer waits)."""

    framework_id: FrameworkId
    role: str
    priority: int
    until: float


@dataclass(slots=True)
class PreemptionBook:
    # 0 turns preemption off (`--preemption-grace-s 0`).
    grace_s: float = 0.0
    # Waiting work by role, as declared by frameworks that hold several roles (the jobs
    # framework, `declare_waiting`); others' waiting work is their REQUEST demands.
    declared: dict[FrameworkId, dict[str, tuple[Demand, ...]]] = field(default_factory=dict)
    # (framework, role) -> since when it has waited (reset after each preemption for it).
    since: dict[tuple[FrameworkId, str], float] = field(default_factory=dict)
    # Tasks told and killed, until their end is seen: their TASK_KILLED says PREEMPTED.
    preempted: dict[tuple[FrameworkId, TaskId], float] = field(default_factory=dict)
    holds: dict[AgentId, Hold] = field(default_factory=dict)
