"""The registry's contents, its write commands, and the `Registry` protocol its stores follow.

Writes are command objects with `apply(snapshot) -> snapshot`, so every store (SQLite now,
ZooKeeper later) and the simulator share one mutation path.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Protocol

from mesoslite.ids import AgentId, FrameworkId
from mesoslite.model import AgentInfo, FrameworkInfo


@dataclass(frozen=True, slots=True)
class RegistrySnapshot:
    agents: Mapping[AgentId, AgentInfo] = field(default_factory=dict)
    frameworks: Mapping[FrameworkId, FrameworkInfo] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AdmitAgent:
    info: AgentInfo

    def apply(self, snap: RegistrySnapshot) -> RegistrySnapshot:
        return replace(snap, agents={**snap.agents, self.info.id: self.info})


@dataclass(frozen=True, slots=True)
class RemoveAgent:
    agent_id: AgentId

    def apply(self, snap: RegistrySnapshot) -> RegistrySnapshot:
        return replace(snap, agents={k: v for k, v in snap.agents.items() if k != self.agent_id})


@dataclass(frozen=True, slots=True)
class AddFramework:
    info: FrameworkInfo

    def apply(self, snap: RegistrySnapshot) -> RegistrySnapshot:
        return replace(snap, frameworks={**snap.frameworks, self.info.id: self.info})


@dataclass(frozen=True, slots=True)
class RemoveFramework:
    framework_id: FrameworkId

    def apply(self, snap: RegistrySnapshot) -> RegistrySnapshot:
        frameworks = {k: v for k, v in snap.frameworks.items() if k != self.framework_id}
        return replace(snap, frameworks=frameworks)


RegistryOp = AdmitAgent | RemoveAgent | AddFramework | RemoveFramework


class Registry(Protocol):
    """A durable store of the snapshot. `apply` returns once the ops are durable."""

    async def load(self) -> RegistrySnapshot: ...

    async def apply(self, ops: list[RegistryOp]) -> None: ...

    async def close(self) -> None: ...
