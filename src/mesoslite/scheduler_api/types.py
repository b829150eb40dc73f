"""Values a framework builds and receives: tasks, commands, offers, statuses, demands."""

from __future__ import annotations

from dataclasses import dataclass

from mesoslite.resources import Resources


@dataclass(frozen=True, slots=True)
class Demand:
    """What a framework still needs: `count` tasks shaped like `resources` (a REQUEST call)."""

    resources: Resources
    count: int
