"""Incremental allocation passes in the master (#15): `MasterState.allocate` offers only the
agents changed since the last pass when nothing else changed, and makes exactly the offers
a full pass would. Two real `MasterState`s, one with incremental passes and one without,
are driven through the same seeded sequence of events (agents joining, leaving, draining;
frameworks subscribing, requesting, suppressing, reviving; accepts, declines with filters,
tasks ending, offers expiring, weights changing) and must make the same offers."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Collection
from typing import Any

import pytest

from mesoslite.allocator.base import AllocationRound, ClusterView, Demand
from mesoslite.allocator.hierarchical import HierarchicalAllocator
from mesoslite.allocator.loader import load_allocator
from mesoslite.errors import MesosliteError
from mesoslite.ids import AgentId, TaskId
from mesoslite.master.events import Effect, OffersEvent, SendToFramework
from mesoslite.master.state import MasterState
from mesoslite.model import (
    AgentInfo,
    FrameworkInfo,
    Offer,
    StatusSource,
    TaskState,
    TaskStatus,
)
from mesoslite.resources import parse_resources

from .conftest import task

R = parse_resources
ROLES = ["web", "batch", "eng/ml"]
SHAPES = ["cpus:4;mem:4096;ports:[31000-31010]", "cpus:8;mem:8192", "cpus:2;mem:1024"]


class CountingAllocator:
    """The real allocator, counting full and incremental passes (to show both ran)."""

    def __init__(self, name: str) -> None:
        inner = load_allocator(name)
        assert isinstance(inner, HierarchicalAllocator)
        self.inner = inner
        self.policy = inner.policy
        self.full = 0
        self.incremental = 0
        self.during_pass: Callable[[], None] | None = None

    def allocate(self, view: ClusterView, now: float) -> AllocationRound:
        self.full += 1
        self._during()
        return self.inner.allocate(view, now)

    def allocate_agents(
        self, view: ClusterView, now: float, agent_ids: Collection[AgentId]
    ) -> AllocationRound:
        self.incremental += 1
        self._during()
        return self.inner.allocate_agents(view, now, agent_ids)

    def _during(self) -> None:
        if self.during_pass is not None:
            hook, self.during_pass = self.during_pass, None
            hook()


def _state(allocator: Any, incremental: bool) -> MasterState:
    ids = itertools.count(1)
    return MasterState(
        allocator=allocator,
        offer_timeout_s=20.0,
        agent_reregister_timeout_s=30.0,
        seed=7,
        run_id="t",
        framework_ids=lambda: f"fw-{next(ids)}",
        incremental_allocation=incremental,
    )


def _offers(effects: list[Effect]) -> list[tuple[str, ...]]:
    out = []
    for e in effects:
        if isinstance(e, SendToFramework) and isinstance(e.event, OffersEvent):
            for o in e.event.offers:
                out.append((o.id, o.framework_id, o.agent_id, str(o.resources), o.allocation_role))
    return out


class Twins:
    """The same events applied to a state with incremental passes and one without."""

    def __init__(self, policy: str, seed: int) -> None:
        self.rng = random.Random(seed)
        self.allocator = CountingAllocator(policy)
        self.incr = _state(self.allocator, incremental=True)
        self.full = _state(load_allocator(policy), incremental=False)
        self.now = 0.0
        self.tasks = itertools.count(1)
        self.offers: dict[str, Offer] = {}  # outstanding, as the incremental state made them
        self.passes = 0

    def both(self, event: Callable[[MasterState], Any]) -> Any:
        """Apply `event` to both; they must make the same offers (and fail alike)."""
        results = []
        for state in (self.incr, self.full):
            try:
                out = event(state)
            except MesosliteError as e:
                results.append(("error", type(e).__name__, str(e)))
                continue
            effects = out[1] if isinstance(out, tuple) else out
            results.append(("ok", _offers(effects)))
            if state is self.incr:
                self._remember(effects)
        assert results[0] == results[1], f"incremental and full passes differ: {results}"
        return out if results[0][0] == "ok" else None

    def _remember(self, effects: list[Effect]) -> None:
        for e in effects:
            if isinstance(e, SendToFramework) and isinstance(e.event, OffersEvent):
                for o in e.event.offers:
                    self.offers[o.id] = o

    def allocate(self) -> None:
        self.passes += 1
        self.both(lambda s: s.allocate(self.now))
        self.offers = {k: o for k, o in self.offers.items() if k in self.incr.offers}

    def step(self) -> None:
        rng, s = self.rng, self.incr
        kind = rng.choices(
            [
                "agent",
                "framework",
                "request",
                "accept",
                "decline",
                "finish",
                "suppress",
                "revive",
                "bounce",
                "drain",
                "time",
                "weight",
            ],
            weights=[4, 2, 2, 8, 5, 8, 1, 2, 1, 1, 3, 1],
        )[0]
        if kind == "agent" or not s.agents:
            info = AgentInfo(hostname=f"h{len(s.agents)}", resources=R(rng.choice(SHAPES)))
            self.both(lambda st: st.register_agent(info, [], self.now))
        elif kind == "framework" or not s.frameworks:
            roles = tuple(rng.sample(ROLES, rng.choice([1, 1, 2])))
            info = FrameworkInfo(name="f", roles=roles)
            self.both(lambda st: st.subscribe_framework(info, self.now))
        elif kind == "request":
            fid = rng.choice(sorted(s.frameworks))
            shape = R(rng.choice(["cpus:1;mem:512", "cpus:2;mem:1024"]))
            demands = [Demand(shape, rng.randint(0, 6))]
            self.both(lambda st: st.request(fid, demands))
        elif kind in ("accept", "decline") and self.offers:
            offer = self.offers.pop(rng.choice(sorted(self.offers)))
            if kind == "decline":
                refuse = rng.choice([0.0, 3.0, 8.0])
                self.both(lambda st: st.decline(offer.framework_id, [offer.id], refuse, self.now))
            else:
                n = rng.randint(0, 2)
                tasks = [task(f"t{next(self.tasks)}", "cpus:1;mem:256") for _ in range(n)]
                refuse = rng.choice([0.0, 5.0])
                self.both(
                    lambda st: st.accept(offer.framework_id, [offer.id], tasks, refuse, self.now)
                )
        elif kind == "finish":
            running = sorted(
                (t.agent_id, t.framework_id, t.spec.task_id)
                for fw in s.frameworks.values()
                for t in fw.tasks.values()
            )
            if running:
                agent_id, fid, task_id = rng.choice(running)
                update = TaskStatus(
                    TaskId(task_id),
                    fid,
                    agent_id,
                    TaskState.FINISHED,
                    source=StatusSource.AGENT,
                    uuid=b"u" + task_id.encode(),
                )
                self.both(lambda st: st.status_updates(agent_id, [update], self.now))
        elif kind in ("suppress", "revive"):
            fid = rng.choice(sorted(s.frameworks))
            self.both(lambda st: getattr(st, kind)(fid))
        elif kind == "bounce":  # an agent's stream breaks; it comes back with its tasks
            agent_id = rng.choice(sorted(s.agents))
            self.both(lambda st: st.agent_disconnected(agent_id, self.now))
            if rng.random() < 0.7:
                agent = s.agents[agent_id]
                reported = [
                    (t.framework_id, t.spec, TaskState.RUNNING)
                    for fw in s.frameworks.values()
                    for t in fw.tasks.values()
                    if t.agent_id == agent_id
                ]
                info = agent.info
                self.both(lambda st: st.register_agent(info, reported, self.now))
        elif kind == "drain":
            agent_id = rng.choice(sorted(s.agents))
            self.both(lambda st: st.drain_agent(agent_id, self.now))
        elif kind == "time":
            self.now += rng.choice([1.0, 2.5, 6.0])
            self.both(lambda st: st.tick(self.now))
        elif kind == "weight":
            role, weight = rng.choice(ROLES), rng.choice([1.0, 2.0, 3.0])
            self.both(lambda st: st.set_role_weight(role, weight))
        if rng.random() < 0.7:
            self.allocate()


@pytest.mark.parametrize("policy", ["drf", "fair", "ssf"])
@pytest.mark.parametrize("seed", range(4))
def test_incremental_passes_make_the_offers_full_passes_make(policy: str, seed: int) -> None:
    twins = Twins(policy, seed)
    for _ in range(250):
        twins.step()
    twins.allocate()
    counted = twins.allocator
    # Both kinds ran, so the equality above covered the incremental pass.
    assert counted.incremental > 20 and counted.full > 5, (counted.incremental, counted.full)


def test_an_agent_changed_while_a_pass_runs_is_offered_by_the_next_pass() -> None:
    allocator = CountingAllocator("drf")
    state = _state(allocator, incremental=True)
    a1, _ = state.register_agent(AgentInfo(hostname="h1", resources=R("cpus:4;mem:4096")), [], 0)
    fid, _ = state.subscribe_framework(FrameworkInfo(name="f"), 0.0)
    first = _offers(state.allocate(0.0))
    assert [o[2] for o in first] == [a1]
    # A task launched on a1 with part of the offer; the rest goes back to the pool.
    offer_id = first[0][0]
    state.accept(fid, [offer_id], [task("t1", "cpus:1;mem:256")], 0.0, 1.0)
    # During the next pass, another agent joins and the task on a1 ends.
    joined: list[AgentId] = []

    def meanwhile() -> None:
        info = AgentInfo(hostname="h2", resources=R("cpus:2;mem:2048"))
        joined.append(state.register_agent(info, [], 1.0)[0])
        done = TaskStatus(TaskId("t1"), fid, a1, TaskState.FINISHED, source=StatusSource.AGENT)
        state.status_updates(a1, [done], 1.0)

    allocator.during_pass = meanwhile
    second = _offers(state.allocate(1.0))
    assert allocator.incremental == 1, "the pass after an accept is incremental"
    assert [(o[2], o[3]) for o in second] == [(a1, "cpus:3;mem:3840")]
    third = _offers(state.allocate(2.0))
    assert allocator.incremental == 2
    # What the pass did not see (the new agent, the task's cpus) is offered now.
    assert sorted((o[2], o[3]) for o in third) == sorted(
        [(a1, "cpus:1;mem:256"), (joined[0], "cpus:2;mem:2048")]
    )


def test_a_failed_pass_forgets_no_change_the_next_pass_is_full() -> None:
    allocator = CountingAllocator("drf")
    state = _state(allocator, incremental=True)
    state.subscribe_framework(FrameworkInfo(name="f"), 0.0)
    state.register_agent(AgentInfo(hostname="h1", resources=R("cpus:1;mem:512")), [], 0.0)
    state.allocate(0.0)
    a2, _ = state.register_agent(AgentInfo(hostname="h2", resources=R("cpus:2;mem:512")), [], 1)

    def fail() -> None:
        raise RuntimeError("allocator bug")

    allocator.during_pass = fail
    with pytest.raises(RuntimeError):
        state.allocate(1.0)
    full_before = allocator.full
    offers = _offers(state.allocate(2.0))
    assert allocator.full == full_before + 1
    assert [o[2] for o in offers] == [a2]


def test_an_expired_filter_makes_the_next_pass_full_and_reoffers_the_agent() -> None:
    allocator = CountingAllocator("drf")
    state = _state(allocator, incremental=True)
    a1, _ = state.register_agent(AgentInfo(hostname="h1", resources=R("cpus:4;mem:4096")), [], 0)
    fid, _ = state.subscribe_framework(FrameworkInfo(name="f"), 0.0)
    offer = _offers(state.allocate(0.0))[0]
    state.decline(fid, [offer[0]], 5.0, 0.0)
    assert _offers(state.allocate(1.0)) == [], "filtered for 5 s"
    # Nothing about the agent changes; only time passes. The filter's end is a change of
    # the framework's, which a pass over the changed agents alone would miss.
    full_before = allocator.full
    again = _offers(state.allocate(5.0))
    assert allocator.full == full_before + 1
    assert [o[2] for o in again] == [a1]


def test_the_periodic_pass_is_full() -> None:
    allocator = CountingAllocator("drf")
    state = _state(allocator, incremental=True)
    state.register_agent(AgentInfo(hostname="h1", resources=R("cpus:4;mem:4096")), [], 0)
    state.subscribe_framework(FrameworkInfo(name="f"), 0.0)
    state.allocate(0.0)
    state.register_agent(AgentInfo(hostname="h2", resources=R("cpus:4;mem:4096")), [], 0)
    state.allocate(1.0)
    assert (allocator.full, allocator.incremental) == (1, 1)
    state.want_full_pass()
    state.allocate(2.0)
    assert (allocator.full, allocator.incremental) == (2, 1)
