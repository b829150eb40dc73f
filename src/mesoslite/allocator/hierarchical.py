"""`HierarchicalAllocator`: applies the shared offer rules around a `Policy` (drf, fair, ...).

Design (after Mesos's `HierarchicalAllocatorProcess<RoleSorter, FrameworkSorter>`):

Stages of one pass, `allocate(view, now)`:
  1. Totals: the cluster total is the sum of the agents' totals; a role's allocation is the
     sum of its frameworks' (suppressed ones included: what they hold still counts).
  2. Candidates: frameworks that may receive anything this pass: not suppressed, and not
     filtered on every agent that has free resources. The others get their reason now.
  3. Sorters: one for roles, one per role for its candidate frameworks (`sorter.py`).
  4. Agents with free resources are visited in an order shuffled by `view.seed`, so that no
     agent is always offered first. Each agent's whole free resources (as in Mesos) go to
     the first role in role order, then the first framework in that role's order, that is
     not filtered for the agent. The grant is added to the framework's and the role's
     allocation before the next agent, so the order is recomputed (progressive filling).
  5. Reasons: every framework in the view gets one ("offered 2 agents", "suppressed", ...).

Invariants (checked by `conformance.check_round`): a grant is never empty, never more than
the agent's free resources, never to a suppressed framework, never for an agent filtered for
that framework at `now` (a filter ending exactly at `now` no longer applies). The same view
(seed included) always gives the same round.

Failure cases: a policy whose order omits or invents clients is repaired (`OrderedSorter`);
an empty view gives an empty round. Duplicate agent or framework ids in a view are the
caller's error; the first of each is used.

TODO(allocator): quota (guarantee, then limit), reservations, demands sized offers, and
hierarchical role weights (`eng/ml`) are stages of the next issue; they slot in between
stages 2 and 4 (quota headroom, reservation owners) and in the grant size of stage 4.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping

from mesoslite.allocator.base import (
    AgentView,
    AllocationRound,
    ClusterView,
    FrameworkView,
    OfferGrant,
    Policy,
)
from mesoslite.allocator.filters import filtered_until, is_filtered
from mesoslite.allocator.sorter import KeyedPolicy, KeyedSorter, OrderedSorter, Sorter
from mesoslite.ids import AgentId, FrameworkId
from mesoslite.resources import Range, Resources

logger = logging.getLogger(__name__)

DEFAULT_ROLE_WEIGHT = 1.0


# Mesos's MIN_CPUS and MIN_MEM: free resources with less than both are not offered, so that
# nobody is offered (and then declines, filtering the agent) a leftover no task can use.
MIN_ALLOCATABLE_CPUS = 0.01
MIN_ALLOCATABLE_MEM = 32.0


def allocatable(free: Resources) -> bool:
    """True if `free` is worth offering: at least `MIN_ALLOCATABLE_CPUS` cpus or
    `MIN_ALLOCATABLE_MEM` MB of memory."""
    return free.scalar("cpus") >= MIN_ALLOCATABLE_CPUS or free.scalar("mem") >= MIN_ALLOCATABLE_MEM


def agent_order(agents: list[AgentView], seed: int) -> list[AgentView]:
    """`agents` in a pseudo-random order that depends only on `seed` and the agents' ids.

    A keyed hash rather than `random.Random(seed).shuffle`: `allocator/` must not import
    `random` (STYLE rule 6), and this order does not depend on the order of `view.agents`.
    """
    prefix = f"{seed}\0".encode()

    def key(agent: AgentView) -> tuple[bytes, str]:
        digest = hashlib.blake2b(prefix + agent.id.encode(), digest_size=8).digest()
        return (digest, agent.id)

    return sorted(agents, key=key)


def sum_resources(bundles: list[Resources]) -> Resources:
    """The sum of many bundles; equal to folding `+`, but merges each range list once."""
    scalars: dict[str, int] = {}
    ranges: dict[str, list[Range]] = {}
    sets: dict[str, set[str]] = {}
    for res in bundles:
        for name, milli in res.scalars.items():
            scalars[name] = scalars.get(name, 0) + milli
        for name, rs in res.ranges.items():
            ranges.setdefault(name, []).extend(rs)
        for name, items in res.sets.items():
            sets.setdefault(name, set()).update(items)
    # `Resources.of` merges the ranges (once per name); scalars are already in thousandths.
    merged = Resources.of(ranges=ranges)
    return Resources(
        {name: milli for name, milli in scalars.items() if milli},
        dict(merged.ranges),
        {name: frozenset(items) for name, items in sets.items() if items},
    )


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


class HierarchicalAllocator:
    """Whole-agent offers to roles, then frameworks, in the order a `Policy` gives.

    Args:
        policy: orders roles and frameworks. If it also has `role_key` and `framework_key`
            (`sorter.KeyedPolicy`), its order is maintained incrementally; otherwise
            `order_roles`/`order_frameworks` are called again after each grant.
    """

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.name: str = getattr(policy, "name", type(policy).__name__)
        self._keyed: KeyedPolicy | None = policy if isinstance(policy, KeyedPolicy) else None

    def __repr__(self) -> str:
        return f"HierarchicalAllocator({self.policy!r})"

    def allocate(self, view: ClusterView, now: float) -> AllocationRound:
        frameworks: dict[FrameworkId, FrameworkView] = {}
        for fw in view.frameworks:
            frameworks.setdefault(fw.id, fw)
        agents: dict[AgentId, AgentView] = {}
        for agent in view.agents:
            agents.setdefault(agent.id, agent)

        # Stage 1: totals.
        total = sum_resources([agent.total for agent in agents.values()])
        role_allocated: dict[str, Resources] = {}
        for fw in frameworks.values():
            role_allocated[fw.role] = role_allocated.get(fw.role, Resources.empty()) + fw.allocated

        # Stage 2: candidates.
        free_agents = [a for a in agents.values() if allocatable(a.free)]
        free_ids = [a.id for a in free_agents]
        reasons: dict[FrameworkId, str] = {}
        candidates: dict[str, list[FrameworkView]] = {}
        for fw in frameworks.values():
            if fw.suppressed:
                reasons[fw.id] = "suppressed"
                continue
            if not free_agents:
                reasons[fw.id] = "no free resources"
                continue
            until = filtered_until(fw, free_ids, now)
            if until is not None:
                reasons[fw.id] = (
                    f"filtered on all agents with free resources until {until:.3f}"
                    f" ({until - now:.3f}s from now)"
                )
                continue
            candidates.setdefault(fw.role, []).append(fw)

        # Stage 3: sorters.
        role_sorter = self._role_sorter(view.role_weights, total)
        framework_sorters: dict[str, Sorter] = {}
        for role, members in candidates.items():
            role_sorter.add(role, role_allocated[role])
            sorter = self._framework_sorter(total)
            for fw in members:
                sorter.add(fw.id, fw.allocated)
            framework_sorters[role] = sorter

        # Stage 4: offer each agent's free resources to the first eligible framework.
        grants: list[OfferGrant] = []
        offered: dict[FrameworkId, int] = {}
        if framework_sorters:
            for agent in agent_order(free_agents, view.seed):
                chosen = self._first_eligible(
                    agent.id, role_sorter, framework_sorters, frameworks, now
                )
                if chosen is None:
                    continue
                role, fid = chosen
                resources = agent.free  # whole-agent offer; never more than free, never empty
                grants.append(OfferGrant(FrameworkId(fid), agent.id, resources))
                offered[FrameworkId(fid)] = offered.get(FrameworkId(fid), 0) + 1
                framework_sorters[role].allocate(fid, resources)
                role_sorter.allocate(role, resources)

        # Stage 5: reasons for the candidates.
        for sorter in framework_sorters.values():
            for fid in sorter:
                framework_id = FrameworkId(fid)
                if framework_id in offered:
                    reasons[framework_id] = f"offered {_plural(offered[framework_id], 'agent')}"
                else:
                    reasons[framework_id] = self._explain(sorter.allocation(fid), total)

        logger.debug(
            "allocation round allocator=%s seed=%s agents=%d frameworks=%d grants=%d",
            self.name,
            view.seed,
            len(agents),
            len(frameworks),
            len(grants),
        )
        return AllocationRound(grants=tuple(grants), reasons=reasons, seed=view.seed)

    # -- helpers

    def _role_sorter(self, weights: Mapping[str, float], total: Resources) -> Sorter:
        policy, keyed = self.policy, self._keyed
        if keyed is not None:

            def role_key(role: str, allocated: Resources) -> tuple[float, str]:
                return keyed.role_key(
                    role, allocated, weights.get(role, DEFAULT_ROLE_WEIGHT), total
                )

            return KeyedSorter(role_key)
        return OrderedSorter(lambda allocations: policy.order_roles(allocations, weights, total))

    def _framework_sorter(self, total: Resources) -> Sorter:
        policy, keyed = self.policy, self._keyed
        if keyed is not None:

            def framework_key(fid: str, allocated: Resources) -> tuple[float, str]:
                return keyed.framework_key(FrameworkId(fid), allocated, total)

            return KeyedSorter(framework_key)

        def order(allocations: Mapping[str, Resources]) -> list[str]:
            typed = {FrameworkId(f): r for f, r in allocations.items()}
            return list(policy.order_frameworks(typed, total))

        return OrderedSorter(order)

    @staticmethod
    def _first_eligible(
        agent_id: AgentId,
        role_sorter: Sorter,
        framework_sorters: Mapping[str, Sorter],
        frameworks: Mapping[FrameworkId, FrameworkView],
        now: float,
    ) -> tuple[str, str] | None:
        for role in role_sorter:
            for fid in framework_sorters[role]:
                if not is_filtered(frameworks[FrameworkId(fid)], agent_id, now):
                    return role, fid
        return None

    def _explain(self, allocated: Resources, total: Resources) -> str:
        explain = getattr(self.policy, "explain", None)
        if callable(explain):
            return f"lower share than others: {explain(allocated, total)}"
        return f"lower share than others in {self.name} order"
