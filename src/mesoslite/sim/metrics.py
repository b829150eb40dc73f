"""What a simulation measures: tasks, waits, shares over time, utilization, fairness.

- Shares are dominant shares (DRF's measure, whatever the policy) of what a framework's or
  role's tasks use, sampled at most every `sample_interval_s` of virtual time.
- Utilization of a resource is its time-integrated use over (total x makespan).
- Jain's index is over frameworks' mean weighted dominant share while they were active
  (from arrival to their last task's end): 1.0 is perfectly fair, 1/n is one takes all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mesoslite.allocator.drf import dominant_share
from mesoslite.resources import SCALE, Resources

if TYPE_CHECKING:
    from mesoslite.sim.engine import Simulation


def percentile(values: Sequence[float], p: float) -> float:
    """The `p`-th percentile (0-100) by nearest rank; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


@dataclass(frozen=True, slots=True)
class GroupStats:
    """Per framework or per role."""

    name: str
    role: str
    tasks: int
    launched: int
    finished: int
    wait_p50_s: float
    wait_p99_s: float
    mean_share: float


@dataclass(frozen=True, slots=True)
class SimResult:
    allocator: str
    frameworks: tuple[GroupStats, ...]
    roles: tuple[GroupStats, ...]
    utilization: dict[str, float]
    jain_index: float
    makespan_s: float
    launched: int
    finished: int
    passes: int
    wall_s: float
    # (time, {framework name: dominant share}) and the same by role; utilization over time.
    shares: tuple[tuple[float, dict[str, float]], ...] = ()
    role_shares: tuple[tuple[float, dict[str, float]], ...] = ()
    utilization_series: tuple[tuple[float, dict[str, float]], ...] = field(default=())
    # Per priority tier, highest first (`sim.tiers.TierStats`; #16).
    tiers: tuple[Any, ...] = ()

    @property
    def launches_per_s(self) -> float:
        return self.launched / self.wall_s if self.wall_s > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        def group(g: GroupStats) -> dict[str, Any]:
            return {
                "name": g.name, "role": g.role, "tasks": g.tasks, "launched": g.launched,
                "finished": g.finished, "wait_p50_s": g.wait_p50_s, "wait_p99_s": g.wait_p99_s,
                "mean_share": g.mean_share,
            }

        return {
            "allocator": self.allocator,
            "frameworks": [group(g) for g in self.frameworks],
            "roles": [group(g) for g in self.roles],
            "utilization": self.utilization,
            "jain_index": self.jain_index,
            "makespan_s": self.makespan_s,
            "launched": self.launched,
            "finished": self.finished,
            "allocation_passes": self.passes,
            "wall_s": self.wall_s,
            "launches_per_wall_s": self.launches_per_s,
            "shares": [{"t": t, "shares": s} for t, s in self.shares],
            "role_shares": [{"t": t, "shares": s} for t, s in self.role_shares],
            "tiers": [t.to_json() for t in self.tiers],
        }


class Recorder:
    def __init__(self, total: Resources, sample_interval_s: float) -> None:
        self.total = total
        self.names = sorted(n for n in total.scalars if total.scalar(n) > 0)
        self.interval = sample_interval_s
        self.used: dict[str, float] = {n: 0.0 for n in self.names}
        self.integral: dict[str, float] = {n: 0.0 for n in self.names}
        self.last_t = 0.0
        self.last_sample: float | None = None
        self.last_finish = 0.0
        self.shares: list[tuple[float, dict[str, float]]] = []
        self.role_shares: list[tuple[float, dict[str, float]]] = []
        self.util_series: list[tuple[float, dict[str, float]]] = []

    def advance(self, when: float, sim: Simulation) -> None:
        dt = when - self.last_t
        if dt > 0:
            for n in self.names:
                self.integral[n] += self.used[n] * dt
            self.last_t = when

    # `res.scalar(n)` written out: twice per task (#15).
    def launched(self, res: Resources) -> None:
        used, get = self.used, res.scalars.get
        for n in self.names:
            used[n] += get(n, 0) / SCALE

    def finished(self, res: Resources, now: float) -> None:
        used, get = self.used, res.scalars.get
        for n in self.names:
            used[n] -= get(n, 0) / SCALE
        self.last_finish = now

    # A batch as `launched`/`finished` of each, in order: each name's sum sees the same
    # additions in the same order, so the same floats (one call per batch, #15).
    def launched_all(self, bundles: list[Resources]) -> None:
        used = self.used
        for n in self.names:
            total = used[n]
            for res in bundles:
                total += res.scalars.get(n, 0) / SCALE
            used[n] = total

    def finished_all(self, bundles: list[Resources], now: float) -> None:
        used = self.used
        for n in self.names:
            total = used[n]
            for res in bundles:
                total -= res.scalars.get(n, 0) / SCALE
            used[n] = total
        if bundles:
            self.last_finish = now

    def sample(self, now: float, sim: Simulation, *, force: bool = False) -> None:
        if self.last_sample is not None and now - self.last_sample < self.interval:
            if not force or now == self.last_sample:
                return
        self.last_sample = now
        shares: dict[str, float] = {}
        by_role: dict[str, Resources] = {}
        for fid, fw in sim.by_id.items():
            record = sim.state.frameworks.get(fid)
            used = record.used if record is not None else Resources.empty()
            shares[fw.spec.name] = dominant_share(used, self.total)
            # What it uses in each of its roles (several with `roles: [a, b]`).
            for role in fw.spec.all_roles:
                in_role = (
                    record.used_by_role.get(role, Resources.empty())
                    if record is not None
                    else Resources.empty()
                )
                by_role[role] = by_role.get(role, Resources.empty()) + in_role
        self.shares.append((now, shares))
        self.role_shares.append(
            (now, {r: dominant_share(u, self.total) for r, u in by_role.items()})
        )
        self.util_series.append(
            (now, {n: self.used[n] / self.total.scalar(n) for n in self.names})
        )

    def result(self, sim: Simulation, wall_s: float) -> SimResult:
        start = min((fw.spec.arrive_s for fw in sim.frameworks), default=0.0)
        makespan = max(0.0, self.last_finish - start)
        span = self.last_t - start
        utilization = {
            n: (self.integral[n] / (self.total.scalar(n) * span) if span > 0 else 0.0)
            for n in self.names
        }
        weights = sim.state.roles.weights
        frameworks = []
        fair_points = []
        for fw in sim.frameworks:
            active = [
                s.get(fw.spec.name, 0.0)
                for t, s in self.shares
                if fw.spec.name in s and (fw.finished < fw.total_tasks or t <= self.last_finish)
            ]
            mean = sum(active) / len(active) if active else 0.0
            # A framework in several roles is entitled to their weights together.
            fair_points.append(mean / sum(weights.get(r, 1.0) for r in fw.spec.all_roles))
            frameworks.append(
                GroupStats(
                    fw.spec.name, fw.spec.role, fw.total_tasks,
                    sum(g.launched for g in fw.groups), fw.finished,
                    percentile(fw.wait_times, 50), percentile(fw.wait_times, 99), mean,
                )
            )
        roles = self._role_stats(sim)
        total = sum(fair_points)
        squares = sum(x * x for x in fair_points)
        jain = (total * total) / (len(fair_points) * squares) if squares > 0 else 1.0
        return SimResult(
            allocator=sim.allocator_name,
            frameworks=tuple(frameworks),
            roles=tuple(roles),
            utilization=utilization,
            jain_index=jain,
            makespan_s=makespan,
            launched=sim.launched,
            finished=sum(fw.finished for fw in sim.frameworks),
            passes=sim.passes,
            wall_s=wall_s,
            shares=tuple(self.shares),
            role_shares=tuple(self.role_shares),
            utilization_series=tuple(self.util_series),
        )

    def _role_stats(self, sim: Simulation) -> list[GroupStats]:
        roles = []
        # Task counts and waits of a framework in several roles count in each of its roles;
        # shares are split by role exactly.
        for role in sorted({r for fw in sim.frameworks for r in fw.spec.all_roles}):
            members = [fw for fw in sim.frameworks if role in fw.spec.all_roles]
            waits = [w for fw in members for w in fw.wait_times]
            series = [s.get(role, 0.0) for _, s in self.role_shares if role in s]
            roles.append(
                GroupStats(
                    role, role, sum(fw.total_tasks for fw in members),
                    sum(g.launched for fw in members for g in fw.groups),
                    sum(fw.finished for fw in members),
                    percentile(waits, 50), percentile(waits, 99),
                    sum(series) / len(series) if series else 0.0,
                )
            )
        return roles
