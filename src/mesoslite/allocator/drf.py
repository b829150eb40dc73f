"""`DRFPolicy`: Dominant Resource Fairness, the default allocation policy.

# DRF, Ghodsi et al. NSDI'11: a client's dominant share is its largest share of any one
# resource; the client (role, then framework) with the lowest dominant share is offered next.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from mesoslite.allocator.share_sorter import ShareMeter
from mesoslite.ids import FrameworkId
from mesoslite.resources import SCALE, Range, Resources

_MAX_COUNTS = 4096  # range and set maps whose shares `DRFPolicy` keeps
# (the range map, the set map, and their (name, share)s), see `DRFPolicy._counted_shares`.
_Counted = tuple[
    Mapping[str, tuple[Range, ...]], Mapping[str, frozenset[str]], tuple[tuple[str, float], ...]
]

DEFAULT_WEIGHT = 1.0


def dominant_share(allocated: Resources, total: Resources) -> float:
    """The largest `allocated / total` over the resources present in `total`.

    Resources with a zero total are skipped, and so is anything `allocated` holds that
    `total` does not have (it cannot be shared out, so it says nothing about fairness).
    """
    best = 0.0
    for name in total.names():
        whole = total.quantity(name)
        if whole > 0:
            share = allocated.quantity(name) / whole
            if share > best:
                best = share
    return best


def weighted_share(share: float, weight: float) -> float:
    """`share / weight`; a weight that is not a positive finite number sorts last."""
    if not (weight > 0 and math.isfinite(weight)):
        return math.inf
    return share / weight


class ShareOrdering:
    """The `Policy` protocol and the incremental sort keys for a policy that orders roles by
    weighted share (ties by name) and frameworks by share (ties by id); the subclass says
    what a share is (`share(allocated, total)`)."""

    def share(self, allocated: Resources, total: Resources) -> float:
        raise NotImplementedError

    # -- the `Policy` protocol

    def order_roles(
        self, roles: Mapping[str, Resources], weights: Mapping[str, float], total: Resources
    ) -> list[str]:
        return sorted(
            roles, key=lambda r: self.role_key(r, roles[r], weights.get(r, DEFAULT_WEIGHT), total)
        )

    def order_frameworks(
        self, frameworks: Mapping[FrameworkId, Resources], total: Resources
    ) -> list[FrameworkId]:
        return sorted(frameworks, key=lambda f: self.framework_key(f, frameworks[f], total))

    # -- incremental sort keys (see `mesoslite.allocator.sorter.KeyedPolicy`)

    def role_key(
        self, role: str, allocated: Resources, weight: float, total: Resources
    ) -> tuple[float, str]:
        return (weighted_share(self.share(allocated, total), weight), role)

    def framework_key(
        self, framework_id: FrameworkId, allocated: Resources, total: Resources
    ) -> tuple[float, str]:
        return (self.share(allocated, total), framework_id)


class DRFPolicy(ShareOrdering):
    """Order roles by weighted dominant share (ties by name), frameworks by dominant share
    (ties by id).

    Besides the `Policy` protocol it offers sort keys (`role_key`, `framework_key`), which let
    `HierarchicalAllocator` keep its order up to date incrementally instead of re-sorting
    after every grant, and `explain`, used in a round's reasons.
    """

    name = "drf"

    def __init__(self) -> None:
        # The cluster total is the same for every key of one pass; cache its quantities.
        self._total: Resources | None = None
        self._total_quantities: tuple[tuple[str, float], ...] = ()
        self._counts: dict[tuple[int, int], _Counted] = {}

    def explain(self, allocated: Resources, total: Resources) -> str:
        return f"dominant share {self.share(allocated, total):.2f}"

    def share_meter(self, total: Resources) -> ShareMeter | None:
        """`share` as a `ShareMeter` (the largest share over every resource of `total`),
        for the float-keyed sorters; None if a subclass changed `share`."""
        if type(self).share is not DRFPolicy.share:
            return None
        return ShareMeter(tuple((n, total.quantity(n)) for n in sorted(total.names())))

    # -- arithmetic

    def share(self, allocated: Resources, total: Resources) -> float:
        """`dominant_share(allocated, total)`, with `total`'s quantities cached."""
        if total is not self._total:
            self._total = total
            self._total_quantities = tuple(
                (n, q) for n in sorted(total.names()) if (q := total.quantity(n)) > 0
            )
            self._counts.clear()
        # Called twice per grant (framework and role sorters): scalars are read directly;
        # the shares of ranges and sets are worked out once per range and set map (#15).
        best = 0.0
        scalars = allocated.scalars
        for name, whole in self._total_quantities:
            milli = scalars.get(name)
            if milli is not None:
                share = milli / SCALE / whole
                if share > best:
                    best = share
        if allocated.ranges or allocated.sets:
            # `quantity` of a name without a scalar: its range count, else its set size.
            for name, share in self._counted_shares(allocated):
                if share > best and name not in scalars:
                    best = share
        return best

    def _counted_shares(self, allocated: Resources) -> tuple[tuple[str, float], ...]:
        """(name, share) of `allocated`'s ranges and sets. A grant's `plus` keeps the maps
        a bundle already had, so most calls are for maps seen before (kept with their
        result: an id alone could be reused)."""
        ranges, sets = allocated.ranges, allocated.sets
        key = (id(ranges), id(sets))
        hit = self._counts.get(key)
        if hit is not None and hit[0] is ranges and hit[1] is sets:
            return hit[2]
        if len(self._counts) >= _MAX_COUNTS:
            self._counts.clear()
        out = []
        for name, whole in self._total_quantities:
            rs = ranges.get(name)
            if rs is not None:
                out.append((name, sum(end - begin + 1 for begin, end in rs) / whole))
            elif name in sets:
                out.append((name, len(sets[name]) / whole))
        shares = tuple(out)
        self._counts[key] = (ranges, sets, shares)
        return shares
