"""Time the master's side of an allocation pass in steady state (a script, not a test).

    python bench/bench_master_allocation.py [--agents 10000] [--frameworks 1000]
                                            [--changed 1,100] [--repeat 9] [--full]

A real `MasterState` (drf) with N agents and M frameworks in 5 roles; a first pass offers
every agent. Then, per timed round, `--changed` offers are declined (their agents' resources
recovered: the event; not timed) and `MasterState.allocate` runs (timed: the view, the
pass and `make_offers`), which offers those agents again. `--full`: the state makes only
full passes (`incremental_allocation=False`, what the master did before #15); on code
without that option (an older tree on `PYTHONPATH`) it is what runs anyway. Prints the
median and fewest CPU ms (this process's own time) and wall ms per pass; on code with
incremental passes, also the periodic pass (full, over every agent) after the same event.
"""

from __future__ import annotations

import argparse
import inspect
import itertools
import random
import statistics
import time

from mesoslite.allocator.loader import load_allocator
from mesoslite.master.events import OffersEvent, SendToFramework
from mesoslite.master.state import MasterState
from mesoslite.model import AgentInfo, FrameworkInfo, Offer
from mesoslite.resources import parse_resources

AGENT = "cpus:16;mem:65536;disk:512000;ports:[31000-32000]"


def build(n_agents: int, n_frameworks: int, full: bool) -> tuple[MasterState, list[Offer]]:
    ids = itertools.count(1)
    options = {}
    if "incremental_allocation" in inspect.signature(MasterState).parameters:
        options["incremental_allocation"] = not full
    state = MasterState(
        allocator=load_allocator("drf"),
        offer_timeout_s=3600.0,
        agent_reregister_timeout_s=60.0,
        seed=1,
        run_id="b",
        framework_ids=lambda: f"fw-{next(ids):04}",
        **options,  # type: ignore[arg-type]
    )
    for i in range(n_agents):
        info = AgentInfo(
            hostname=f"host{i}",
            resources=parse_resources(AGENT),
            attributes={"rack": f"r{i % 20}", "zone": f"z{i % 4}"},
        )
        state.register_agent(info, [], 0.0)
    for i in range(n_frameworks):
        state.subscribe_framework(FrameworkInfo(name=f"f{i}", role=f"role{i % 5}"), 0.0)
    return state, offers_of(state.allocate(0.0))


def offers_of(effects: list[object]) -> list[Offer]:
    return [
        o
        for e in effects
        if isinstance(e, SendToFramework) and isinstance(e.event, OffersEvent)
        for o in e.event.offers
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=10000)
    parser.add_argument("--frameworks", type=int, default=1000)
    parser.add_argument("--changed", default="1,100")
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--full", action="store_true", help="full passes only (as before #15)")
    args = parser.parse_args()
    started = time.process_time()
    state, offers = build(args.agents, args.frameworks, args.full)
    print(
        f"setup: {args.agents} agents, {args.frameworks} frameworks, {len(offers)} offers,"
        f" {time.process_time() - started:.1f} cpu s"
    )
    rng = random.Random(1)
    outstanding = {o.id: o for o in offers}
    now = 1.0
    rounds = [(int(x), False) for x in args.changed.split(",")]
    if hasattr(state, "want_full_pass") and not args.full:
        rounds.append((rounds[-1][0], True))  # the periodic pass: full, over every agent
    for changed, periodic in rounds:
        cpus, walls, made = [], [], []
        for _ in range(args.repeat + 1):  # the first round warms up
            for offer_id in rng.sample(sorted(outstanding), changed):
                offer = outstanding.pop(offer_id)
                state.decline(offer.framework_id, [offer.id], 0.0, now)
            if periodic:
                state.want_full_pass()
            cpu, wall = time.process_time(), time.perf_counter()
            new = offers_of(state.allocate(now))
            cpus.append((time.process_time() - cpu) * 1000)
            walls.append((time.perf_counter() - wall) * 1000)
            made.append(len(new))
            outstanding.update((o.id, o) for o in new)
            now += 1.0
        cpus, walls = cpus[1:], walls[1:]
        kind = "full" if args.full else "periodic (full)" if periodic else "default"
        print(
            f"{kind} changed={changed}: offers/pass"
            f" {statistics.median(made[1:]):.0f}, cpu ms median {statistics.median(cpus):.2f}"
            f" min {min(cpus):.2f}, wall ms median {statistics.median(walls):.2f}"
        )


if __name__ == "__main__":
    main()
