"""A `MasterState` on a virtual clock, with helpers to drive it like agents and frameworks do."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mesoslite.allocator.loader import load_allocator
from mesoslite.clock import VirtualClock
from mesoslite.ids import AgentId, FrameworkId, OfferId, TaskId
from mesoslite.master.events import Effect, OffersEvent, SendToFramework
from mesoslite.master.state import MasterState
from mesoslite.model import AgentInfo, CommandSpec, FrameworkInfo, Offer, TaskSpec
from mesoslite.resources import parse_resources


class Harness:
    def __init__(self) -> None:
        self.clock = VirtualClock()
        self.state = MasterState(
            allocator=load_allocator("drf"),
            offer_timeout_s=30.0,
            agent_reregister_timeout_s=10.0,
            seed=1,
        )

    @property
    def now(self) -> float:
        return self.clock.now()

    def agent(self, resources: str = "cpus:4;mem:1024", hostname: str = "h1") -> AgentId:
        info = AgentInfo(hostname=hostname, resources=parse_resources(resources))
        agent_id, _ = self.state.register_agent(info, [], self.now)
        return agent_id

    def framework(
        self, name: str = "fw", failover_timeout_s: float = 0.0, *, partition_aware: bool = False
    ) -> FrameworkId:
        info = FrameworkInfo(
            name=name, failover_timeout_s=failover_timeout_s, partition_aware=partition_aware
        )
        fid, _ = self.state.subscribe_framework(info, self.now)
        return fid

    def allocate(self) -> dict[FrameworkId, list[Offer]]:
        return offers_in(self.state.allocate(self.now))

    def offer_for(self, fid: FrameworkId) -> Offer:
        offers = self.allocate().get(fid, [])
        assert offers, f"no offer for {fid}: {self.state.last_reasons}"
        return offers[0]

    def launch(
        self, fid: FrameworkId, offer: Offer, *task_ids: str, resources: str = "cpus:1;mem:128"
    ) -> list[Effect]:
        tasks = [task(t, resources) for t in task_ids]
        return self.state.accept(fid, [offer.id], tasks, 0.0, self.now)

    def fingerprint(self) -> object:
        """Everything a rejected request must leave unchanged."""
        s = self.state
        return (
            sorted((o.id, o.framework_id, str(o.resources)) for o in s.offers),
            sorted(
                (a.id, a.status, str(a.used), str(a.offered), sorted(a.tasks))
                for a in s.agents.values()
            ),
            sorted(
                (f.id, f.status, str(f.used), str(f.offered), sorted(f.tasks),
                 sorted(f.filters.items()), f.suppressed)
                for f in s.frameworks.values()
            ),
            sorted(s.completed_tasks),
        )


def task(task_id: str, resources: str = "cpus:1;mem:128", command: str = "true") -> TaskSpec:
    return TaskSpec(TaskId(task_id), CommandSpec.of_shell(command), parse_resources(resources))


def offers_in(effects: list[Effect]) -> dict[FrameworkId, list[Offer]]:
    out: dict[FrameworkId, list[Offer]] = {}
    for e in effects:
        if isinstance(e, SendToFramework) and isinstance(e.event, OffersEvent):
            out.setdefault(e.framework_id, []).extend(e.event.offers)
    return out


def offer_ids(*offers: Offer) -> list[OfferId]:
    return [o.id for o in offers]


@pytest.fixture
def h() -> Iterator[Harness]:
    yield Harness()
