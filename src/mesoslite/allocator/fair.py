"""`FairPolicy`: weighted max-min fairness on one resource (`cpus` unless configured).

The role, then the framework, holding the smallest weighted share of that one resource is
offered next; other resources do not count (compare `drf`, which takes the largest share).
"""

from __future__ import annotations

from mesoslite.allocator.drf import ShareOrdering
from mesoslite.allocator.share_sorter import ShareMeter
from mesoslite.errors import ConfigError
from mesoslite.resources import NAME_RE, Resources


class FairPolicy(ShareOrdering):
    """Order roles by weighted share of `resource` (ties by name), frameworks by share.

    Args:
        resource: the resource shared fairly (default `cpus`).
    """

    name = "fair"

    def __init__(self, resource: str = "cpus") -> None:
        if not isinstance(resource, str) or not NAME_RE.match(resource):
            raise ConfigError(f"fair: resource must be a resource name, got {resource!r}")
        self.resource = resource

    def __repr__(self) -> str:
        return f"FairPolicy(resource={self.resource!r})"

    def explain(self, allocated: Resources, total: Resources) -> str:
        return f"{self.resource} share {self.share(allocated, total):.2f}"

    def share_meter(self, total: Resources) -> ShareMeter | None:
        """`share` as a `ShareMeter` (one resource), for the float-keyed sorters; None if a
        subclass changed `share`."""
        if type(self).share is not FairPolicy.share:
            return None
        return ShareMeter(((self.resource, total.quantity(self.resource)),))

    def share(self, allocated: Resources, total: Resources) -> float:
        whole = total.quantity(self.resource)
        return allocated.quantity(self.resource) / whole if whole > 0 else 0.0
