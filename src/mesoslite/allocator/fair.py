"""`FairPolicy`: weighted max-min fairness on one resource (`cpus` unless configured).

The role, then the framework, holding the smallest weighted share of that one resource is
offered next; other resources do not count (compare `drf`, which takes the largest share).
"""

from __future__ import annotations

from collections.abc import Mapping

from mesoslite.allocator.drf import DEFAULT_WEIGHT, weighted_share
from mesoslite.errors import ConfigError
from mesoslite.ids import FrameworkId
from mesoslite.resources import NAME_RE, Resources


class FairPolicy:
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

    def role_key(
        self, role: str, allocated: Resources, weight: float, total: Resources
    ) -> tuple[float, str]:
        return (weighted_share(self.share(allocated, total), weight), role)

    def framework_key(
        self, framework_id: FrameworkId, allocated: Resources, total: Resources
    ) -> tuple[float, str]:
        return (self.share(allocated, total), framework_id)

    def explain(self, allocated: Resources, total: Resources) -> str:
        return f"{self.resource} share {self.share(allocated, total):.2f}"

    def share(self, allocated: Resources, total: Resources) -> float:
        whole = total.quantity(self.resource)
        return allocated.quantity(self.resource) / whole if whole > 0 else 0.0
