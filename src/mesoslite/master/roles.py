"""Roles as the master keeps them: weights, quota and tiers set at run time, and demands'
arithmetic.

Pure, like `state.py`: `MasterState` calls these and returns their registry ops as effects.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from mesoslite import explain as _explain
from mesoslite.allocator.base import Demand, Quota
from mesoslite.allocator.tiers import MAX_PRIORITY, MIN_PRIORITY, RoleTier
from mesoslite.errors import ValidationError
from mesoslite.master.registry.base import (
    RegistrySnapshot,
    SetQuota,
    SetRoleTier,
    SetRoleWeight,
)
from mesoslite.master.validation import ROLE_RE
from mesoslite.resources import Resources

T = TypeVar("T")

MAX_WEIGHT = 1e6
MAX_DEMANDS = 100
MAX_DEMAND_COUNT = 10_000_000


@dataclass(frozen=True, slots=True)
class RoleStatus:
    """A role as `mesoslite role list` shows it."""

    role: str
    weight: float
    quota: Quota | None
    allocated: Resources
    frameworks: int
    tier: RoleTier = RoleTier()


# The shapes are shared with the CLI (`mesoslite.explain`); the master holds values. (Not
# aliases: a subscripted generic cannot build a frozen slots dataclass.)
@dataclass(frozen=True, slots=True)
class RoleExplanation(_explain.RoleExplanation[Quota | None]):
    """A framework in one of its roles, with its role's quota."""


@dataclass(frozen=True, slots=True)
class Explanation(_explain.Explanation[Quota | None, tuple[Demand, ...] | None]):
    """Why a framework is or is not getting offers (`mesoslite framework explain`)."""


def check_role(field: str, role: str) -> None:
    if not ROLE_RE.match(role) or role == "*":
        raise ValidationError(
            field, f"must be path segments of [a-z0-9_-] like 'eng/ml', got {role!r}"
        )


class RoleBook:
    """Operators' weights, quotas and tiers, by role."""

    def __init__(self) -> None:
        self.weights: dict[str, float] = {}
        self.quotas: dict[str, Quota] = {}
        self.tiers: dict[str, RoleTier] = {}
        # role -> priority, for the allocator's view (kept beside `tiers`, rebuilt on change).
        self.priorities: dict[str, int] = {}

    def recover(self, snap: RegistrySnapshot) -> None:
        self.weights = dict(snap.role_weights)
        self.quotas = dict(snap.quotas)
        self.tiers = dict(snap.role_tiers)
        self._index_tiers()

    def set_tier(self, role: str, priority: int, preemptible: bool | None) -> SetRoleTier:
        """Validate, change, and return the registry op; `preemptible` None keeps the
        role's current setting. Raises `ValidationError`."""
        check_role("role", role)
        if isinstance(priority, bool) or not MIN_PRIORITY <= priority <= MAX_PRIORITY:
            allowed = f"an integer in [{MIN_PRIORITY}, {MAX_PRIORITY}]"
            raise ValidationError("priority", f"must be {allowed}, got {priority}")
        if preemptible is None:
            preemptible = self.tiers.get(role, RoleTier()).preemptible
        op = SetRoleTier(role, RoleTier(int(priority), bool(preemptible)))
        _put(self.tiers, role, None if op.tier.is_default else op.tier)
        self._index_tiers()
        return op

    def undo_tier(self, op: SetRoleTier, before: RoleTier | None) -> None:
        """Put back the tier `op` replaced (its write failed), unless changed again since."""
        if self.tiers.get(op.role, RoleTier()) == op.tier:
            _put(self.tiers, op.role, before)
            self._index_tiers()

    def _index_tiers(self) -> None:
        # Zeros too: a sub-role at 0 does not inherit its parent's tier.
        self.priorities = {r: t.priority for r, t in self.tiers.items()}

    def set_weight(self, role: str, weight: float) -> SetRoleWeight:
        """Validate, change, and return the registry op. Raises `ValidationError`."""
        check_role("role", role)
        if not (math.isfinite(weight) and 0 < weight <= MAX_WEIGHT):
            raise ValidationError("weight", f"must be > 0 and <= {MAX_WEIGHT:g}, got {weight:g}")
        op = SetRoleWeight(role, float(weight))
        if op.weight == 1.0:
            self.weights.pop(role, None)
        else:
            self.weights[role] = op.weight
        return op

    def set_quota(self, role: str, guarantee: Resources, limit: Resources | None) -> SetQuota:
        """Validate, change, and return the registry op. Raises `ValidationError`."""
        check_role("role", role)
        for field, res in (("guarantee", guarantee), ("limit", limit)):
            if res is not None and (res.ranges or res.sets):
                raise ValidationError(field, f"quota covers scalars only, got {res}")
        if limit is not None and not limit.contains(guarantee):
            raise ValidationError(
                "guarantee",
                f"must be within the limit: {'; '.join(limit.shortfall(guarantee))}",
            )
        op = SetQuota(role, Quota(guarantee, limit))
        if guarantee.is_empty() and limit is None:
            self.quotas.pop(role, None)
        else:
            self.quotas[role] = op.quota
        return op

    def undo_weight(self, op: SetRoleWeight, before: float | None) -> None:
        """Put back the weight `op` replaced (its write failed), unless a later change
        replaced it again."""
        if self.weights.get(op.role, 1.0) == op.weight:
            _put(self.weights, op.role, before)

    def undo_quota(self, op: SetQuota, before: Quota | None) -> None:
        """Put back the quota `op` replaced (its write failed), unless changed again since."""
        now = self.quotas.get(op.role)
        if now == op.quota or (
            now is None and op.quota.limit is None and op.quota.guarantee.is_empty()
        ):
            _put(self.quotas, op.role, before)

    def describe(self, held: Mapping[str, tuple[Resources, int]]) -> list[RoleStatus]:
        """Every role that has frameworks, a weight or a quota; `held` maps a role to what
        its frameworks hold and how many there are."""
        names = sorted(set(held) | set(self.weights) | set(self.quotas) | set(self.tiers))
        return [
            RoleStatus(
                role,
                self.weights.get(role, 1.0),
                self.quotas.get(role),
                held.get(role, (Resources.empty(), 0))[0],
                held.get(role, (Resources.empty(), 0))[1],
                self.tiers.get(role, RoleTier()),
            )
            for role in names
        ]


def _put(into: dict[str, T], key: str, value: T | None) -> None:
    if value is None:
        into.pop(key, None)
    else:
        into[key] = value


def check_demands(demands: Sequence[Demand]) -> list[Demand]:
    """Validate a REQUEST's demands. Raises `ValidationError`."""
    if len(demands) > MAX_DEMANDS:
        raise ValidationError("demands", f"at most {MAX_DEMANDS} shapes, got {len(demands)}")
    out = []
    for i, d in enumerate(demands):
        if d.resources.is_empty() or not any(v > 0 for v in d.resources.scalars.values()):
            raise ValidationError(f"demands[{i}].resources", "must name some scalar resource")
        if not 0 <= d.count <= MAX_DEMAND_COUNT:
            raise ValidationError(
                f"demands[{i}].count", f"must be in [0, {MAX_DEMAND_COUNT}], got {d.count}"
            )
        out.append(d)
    return out


def times_fits(shape: Resources, bundle: Resources) -> int:
    """How many whole copies of `shape` (by its scalars) `bundle` holds."""
    n: int | None = None
    for name, milli in shape.scalars.items():
        if milli > 0:
            k = bundle.scalars.get(name, 0) // milli
            n = k if n is None else min(n, k)
    return n or 0


def outstanding(demands: Sequence[Demand], offered: Resources) -> tuple[Demand, ...]:
    """The demands less the tasks' worth already sitting in outstanding offers."""
    out = []
    left = offered
    for d in demands:
        n = min(d.count, times_fits(d.resources, left))
        if n:
            left = left - Resources({k: v * n for k, v in d.resources.scalars.items()}, {}, {})
        out.append(Demand(d.resources, d.count - n))
    return tuple(out)


def consume(demands: Sequence[Demand], launched: Iterable[Resources]) -> list[Demand]:
    """The demands after launching tasks of these shapes: each task counts against the
    first demand (with tasks left) of the same scalars, or else the first it fits in.
    Demands down to 0 are kept: the framework still wants offers sized to demands (none)."""
    if len(demands) == 1:
        # The common case: one shape. Tasks of other shapes that fit it count too.
        only = demands[0]
        n = only.count
        for res in launched:
            if n and (res.scalars == only.resources.scalars or only.resources.contains(res)):
                n -= 1
        return [only if n == only.count else Demand(only.resources, n)]
    counts = [d.count for d in demands]
    for res in launched:
        scalars = res.scalars
        index = -1
        for i, d in enumerate(demands):
            if counts[i] and d.resources.scalars == scalars:
                index = i
                break
        if index < 0:
            for i, d in enumerate(demands):
                if counts[i] and d.resources.contains(res):
                    index = i
                    break
        if index >= 0:
            counts[index] -= 1
    return [
        d if d.count == n else Demand(d.resources, n) for d, n in zip(demands, counts, strict=True)
    ]
