"""The master's kept allocation views (#15): the running sum of agents' totals equals a sum
from scratch, and the kept views equal those `allocation.view` builds from scratch, in the
same order, after agents join, change, leave and come back."""

from __future__ import annotations

import random

from mesoslite.allocator.agents import sum_resources
from mesoslite.allocator.loader import load_allocator
from mesoslite.master import allocation
from mesoslite.master.agent_views import AgentViews, RunningTotal
from mesoslite.master.state import MasterState
from mesoslite.model import AgentInfo, FrameworkInfo
from mesoslite.resources import Resources, parse_resources

BUNDLES = [
    "cpus:4;mem:1024;ports:[31000-31010]",
    "cpus:2;mem:512;ports:[31005-31020,32000-32001]",
    "cpus:1;gpus:1;zones:{a,b}",
    "cpus:8;mem:4096;zones:{b,c}",
    "mem:64",
]


def test_a_running_total_equals_the_sum_of_the_bundles_present() -> None:
    rng = random.Random(3)
    total = RunningTotal()
    present: list[Resources] = []
    for _ in range(400):
        if present and rng.random() < 0.45:
            gone = present.pop(rng.randrange(len(present)))
            total.add(gone, -1)
        else:
            res = parse_resources(rng.choice(BUNDLES))
            present.append(res)
            total.add(res)
        assert total.value() == sum_resources(present)
    for res in present:
        total.add(res, -1)
    assert total.value() == Resources.empty()


def test_kept_agent_views_equal_views_built_from_scratch() -> None:
    rng = random.Random(5)
    # Full passes: the state's own kept views must not take the changed agents from ours.
    state = MasterState(
        allocator=load_allocator("drf"),
        offer_timeout_s=30.0,
        agent_reregister_timeout_s=60.0,
        incremental_allocation=False,
    )
    books = state.books
    state.subscribe_framework(FrameworkInfo(name="f"), 0.0)
    views = AgentViews()
    infos: list[AgentInfo] = []
    for step in range(120):
        roll = rng.random()
        if roll < 0.35 or not infos:
            info = AgentInfo(hostname=f"h{step}", resources=parse_resources(rng.choice(BUNDLES)))
            agent_id, _ = state.register_agent(info, [], float(step))
            infos.append(books.agents[agent_id].info)
        elif roll < 0.55:
            state.agent_disconnected(rng.choice(infos).id, float(step))
        elif roll < 0.7:  # a disconnected agent comes back (its place in the book is kept)
            state.register_agent(rng.choice(infos), [], float(step))
        elif roll < 0.8:
            state.drain_agent(rng.choice(infos).id, float(step))
        else:
            state.allocate(float(step))  # offers change what agents have free
        views.refresh(books)
        scratch = allocation.view(books, float(step), 0, False)
        assert views.agents == scratch.agents
        assert views.free == {a.id: books.agents[a.id].free for a in scratch.agents}
        assert views.total.value() == sum_resources([a.total for a in scratch.agents])
