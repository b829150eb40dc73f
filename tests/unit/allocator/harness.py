"""`AllocatorHarness`: allocator scenarios from a compact table of agents and frameworks.

Every round it runs is checked with `conformance.check_round` and recorded in `rounds`.

Agents, one a line: `id total [free]`; free defaults to total, `-` means nothing free::

    a1  cpus:4;mem:8
    a2  cpus:4;mem:8  cpus:1;mem:2

Frameworks, one a line: `id role allocated [flags]`; allocated `-` is nothing; flags are
`suppressed` and `filter=AGENT@UNTIL`::

    f1  web    cpus:1;mem:2
    f2  batch  -             suppressed
    f3  batch  -             filter=a1@10.5

`#` starts a comment.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mesoslite.allocator.base import (
    AgentView,
    AllocationRound,
    Allocator,
    ClusterView,
    FrameworkView,
)
from mesoslite.allocator.conformance import check_round
from mesoslite.allocator.drf import dominant_share
from mesoslite.allocator.loader import load_allocator
from mesoslite.ids import AgentId, FrameworkId
from mesoslite.resources import Resources, parse_resources


def _rows(table: str) -> list[list[str]]:
    rows = []
    for line in table.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            rows.append(line.split())
    return rows


def _res(text: str) -> Resources:
    return Resources.empty() if text == "-" else parse_resources(text)


@dataclass
class _Agent:
    id: AgentId
    total: Resources
    free: Resources


@dataclass
class _Framework:
    id: FrameworkId
    role: str
    allocated: Resources
    suppressed: bool = False
    filters: dict[AgentId, float] = field(default_factory=dict)


class AllocatorHarness:
    """A mutable little cluster that builds `ClusterView`s and records allocation rounds."""

    def __init__(
        self,
        agents: str,
        frameworks: str,
        *,
        allocator: Allocator | None = None,
        weights: dict[str, float] | None = None,
        seed: int = 0,
    ) -> None:
        self.allocator = allocator if allocator is not None else load_allocator("drf")
        self.weights = dict(weights or {})
        self.seed = seed
        self.agents: dict[AgentId, _Agent] = {}
        for row in _rows(agents):
            total = _res(row[1])
            free = _res(row[2]) if len(row) > 2 else total
            self.agents[AgentId(row[0])] = _Agent(AgentId(row[0]), total, free)
        self.frameworks: dict[FrameworkId, _Framework] = {}
        for row in _rows(frameworks):
            fw = _Framework(FrameworkId(row[0]), row[1], _res(row[2]))
            for flag in row[3:]:
                if flag == "suppressed":
                    fw.suppressed = True
                elif flag.startswith("filter="):
                    agent, _, until = flag.removeprefix("filter=").partition("@")
                    fw.filters[AgentId(agent)] = float(until)
                else:
                    raise ValueError(f"unknown framework flag {flag!r}")
            self.frameworks[fw.id] = fw
        self.rounds: list[AllocationRound] = []

    # -- building views

    def view(self) -> ClusterView:
        return ClusterView(
            agents=tuple(
                AgentView(a.id, f"{a.id}.example", a.total, a.free) for a in self.agents.values()
            ),
            frameworks=tuple(
                FrameworkView(f.id, f.role, f.allocated, f.suppressed, dict(f.filters))
                for f in self.frameworks.values()
            ),
            role_weights=dict(self.weights),
            seed=self.seed,
        )

    def total(self) -> Resources:
        total = Resources.empty()
        for agent in self.agents.values():
            total = total + agent.total
        return total

    # -- running

    def allocate(self, now: float = 0.0) -> AllocationRound:
        """One pass; checked against the conformance invariants and recorded."""
        view = self.view()
        result = self.allocator.allocate(view, now)
        check_round(view, result, now)
        self.rounds.append(result)
        return result

    def accept(self, result: AllocationRound | None = None) -> None:
        """Frameworks keep what they were granted (the last round by default)."""
        result = result if result is not None else self.rounds[-1]
        for grant in result.grants:
            self.frameworks[grant.framework_id].allocated += grant.resources
            self.agents[grant.agent_id].free -= grant.resources

    def offers(self, result: AllocationRound | None = None) -> dict[str, list[str]]:
        """`{framework: [agents]}` of a round (the last by default), agents sorted."""
        result = result if result is not None else self.rounds[-1]
        out: dict[str, list[str]] = {}
        for grant in result.grants:
            out.setdefault(grant.framework_id, []).append(grant.agent_id)
        return {f: sorted(a) for f, a in sorted(out.items())}

    def reason(self, framework_id: str) -> str:
        return self.rounds[-1].reasons[FrameworkId(framework_id)]

    def share(self, framework_id: str) -> float:
        """The framework's dominant share of the cluster now."""
        return dominant_share(self.frameworks[FrameworkId(framework_id)].allocated, self.total())
