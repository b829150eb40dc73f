"""`AllocatorHarness`: allocator scenarios from a compact table of agents and frameworks.

Every round it runs is checked with `conformance.check_round` and recorded in `rounds`.

Agents, one a line: `id total [free] [attr=value ...] [reserved.ROLE=RES ...]`; free
defaults to total minus reservations, `-` means nothing free::

    a1  cpus:4;mem:8
    a2  cpus:4;mem:8  cpus:1;mem:2
    a3  cpus:4;mem:8  rack=r1  zone=z1  reserved.ml=cpus:2;mem:4

Frameworks, one a line: `id role allocated [flags]`; allocated `-` is nothing; flags are
`suppressed`, `filter=AGENT@UNTIL`, `demand=RES*COUNT` and `hint=rack:r1` (or `zone:`,
`agent:`)::

    f1  web    cpus:1;mem:2
    f2  batch  -             suppressed
    f3  batch  -             filter=a1@10.5
    f4  ml     -             demand=cpus:1;mem:4096*10  hint=rack:r1

`#` starts a comment.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mesoslite.allocator.base import (
    AgentView,
    AllocationRound,
    Allocator,
    ClusterView,
    Demand,
    FrameworkView,
    Quota,
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
    attributes: dict[str, str] = field(default_factory=dict)
    reserved: dict[str, Resources] = field(default_factory=dict)


@dataclass
class _Framework:
    id: FrameworkId
    role: str
    allocated: Resources
    suppressed: bool = False
    filters: dict[AgentId, float] = field(default_factory=dict)
    demands: list[list[object]] = field(default_factory=list)
    hints: list[str] = field(default_factory=list)


class AllocatorHarness:
    """A mutable little cluster that builds `ClusterView`s and records allocation rounds."""

    def __init__(
        self,
        agents: str,
        frameworks: str,
        *,
        allocator: Allocator | None = None,
        weights: dict[str, float] | None = None,
        quotas: dict[str, Quota] | None = None,
        seed: int = 0,
    ) -> None:
        self.quotas = dict(quotas or {})
        self.allocator = allocator if allocator is not None else load_allocator("drf")
        self.weights = dict(weights or {})
        self.seed = seed
        self.agents: dict[AgentId, _Agent] = {}
        for row in _rows(agents):
            total = _res(row[1])
            plain = [c for c in row[2:] if "=" not in c]
            agent = _Agent(AgentId(row[0]), total, total)
            for cell in row[2:]:
                key, eq, value = cell.partition("=")
                if not eq:
                    continue
                if key.startswith("reserved."):
                    agent.reserved[key.removeprefix("reserved.")] = _res(value)
                else:
                    agent.attributes[key] = value
            reserved = Resources.empty()
            for pool in agent.reserved.values():
                reserved = reserved + pool
            agent.free = _res(plain[0]) if plain else total - reserved
            self.agents[agent.id] = agent
        self.frameworks: dict[FrameworkId, _Framework] = {}
        for row in _rows(frameworks):
            fw = _Framework(FrameworkId(row[0]), row[1], _res(row[2]))
            for flag in row[3:]:
                if flag == "suppressed":
                    fw.suppressed = True
                elif flag.startswith("filter="):
                    agent, _, until = flag.removeprefix("filter=").partition("@")
                    fw.filters[AgentId(agent)] = float(until)
                elif flag.startswith("demand="):
                    shape, _, count = flag.removeprefix("demand=").partition("*")
                    fw.demands.append([parse_resources(shape), int(count)])
                elif flag.startswith("hint="):
                    fw.hints.append(flag.removeprefix("hint="))
                else:
                    raise ValueError(f"unknown framework flag {flag!r}")
            self.frameworks[fw.id] = fw
        self.rounds: list[AllocationRound] = []

    # -- building views

    def view(self) -> ClusterView:
        return ClusterView(
            agents=tuple(
                AgentView(
                    a.id, f"{a.id}.example", a.total, a.free, dict(a.attributes), dict(a.reserved)
                )
                for a in self.agents.values()
            ),
            frameworks=tuple(
                FrameworkView(
                    f.id,
                    f.role,
                    f.allocated,
                    f.suppressed,
                    dict(f.filters),
                    tuple(Demand(d[0], d[1]) for d in f.demands),  # type: ignore[arg-type]
                    tuple(f.hints),
                )
                for f in self.frameworks.values()
            ),
            role_weights=dict(self.weights),
            seed=self.seed,
            quotas=dict(self.quotas),
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
            fw = self.frameworks[grant.framework_id]
            fw.allocated += grant.resources
            agent = self.agents[grant.agent_id]
            unreserved = grant.resources
            for role, part in grant.reserved.items():
                agent.reserved[role] -= part
                unreserved -= part
            agent.free -= unreserved
            left = grant.tasks
            for demand in fw.demands:
                shape = demand[0]
                assert isinstance(shape, Resources) and isinstance(demand[1], int)
                while left and demand[1] > 0 and grant.resources.contains(shape):
                    demand[1] -= 1
                    left -= 1

    def settle(self, now: float = 0.0, max_rounds: int = 1000) -> int:
        """Allocate and accept until a round grants nothing; returns the rounds run."""
        for n in range(max_rounds):
            result = self.allocate(now)
            if not result.grants:
                return n
            self.accept(result)
        raise AssertionError(f"no fixed point after {max_rounds} rounds")

    def tasks(self, framework_id: str, shape: str) -> float:
        """How many tasks of `shape` the framework's allocation holds (by its scarcest part)."""
        held = self.frameworks[FrameworkId(framework_id)].allocated
        want = parse_resources(shape)
        return min(held.scalar(n) / want.scalar(n) for n in want.scalars)

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
