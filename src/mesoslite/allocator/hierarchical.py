"""`HierarchicalAllocator`: applies the shared offer rules around a `Policy` (drf, fair, ssf).

Design (after Mesos's `HierarchicalAllocatorProcess<RoleSorter, FrameworkSorter>`):

Stages of one pass, `allocate(view, now)`:
  1. Totals: the cluster total is the sum of the agents' totals (reservations included); a
     role's allocation is the sum of its frameworks' (suppressed ones included: what they
     hold still counts), and an internal role's (`eng` above `eng/ml`) the sum of its subtree.
  2. Candidates: frameworks that may receive anything this pass: not suppressed, not
     filtered on every agent with free resources, and with an outstanding demand if they
     declared demands. The others get their reason now.
  3. Quota guarantees: roles (or roles below a role) whose guarantee is not met are served
     first, each grant capped to what the guarantee still lacks, in policy order. What
     guarantees still lack after that (roles with nobody asking) is held back: the next
     stage grants other roles only what is unallocated beyond it.
  4. Fair share: all candidate roles, in policy order level by level (`roles.RoleTree`), then
     frameworks in policy order within the role (`sorter.py`; for drf, fair and ssf the
     float-keyed `share_sorter.py`, the same order). The first framework is given
     one grant on its best agent: the first in a seeded order (`agent_order`), or the policy's
     own ranking (`Policy.agent_ranker`, `ssf`). A framework with demands is given one task of
     its first outstanding shape that fits (progressive filling, as in the DRF paper);
     one without, the agent's whole free resources. The grant is added to the framework's and
     its roles' allocations, which moves them in their sorters, and the next grant is chosen.
     A framework that fits nowhere leaves its sorter; a role with none left leaves the tree.
     A role's quota limit (and its ancestors') caps every grant; a role at its limit leaves.
  5. Reservations: an agent's resources reserved for a role are offered only to frameworks of
     that role or below it, together with the agent's unreserved free resources.
  6. Reasons: every framework in the view gets one ("offered 2 agents", "suppressed", ...).

Incremental passes (#15): `allocate_agents(view, now, agent_ids)` runs the same stages with
only those agents on offer (Mesos allocates so on agent-added and resources-recovered
events); totals, shares and quota headroom are still the whole view's. A full pass passes
over agents with nothing free at the cost of one check each, so the two agree whenever the
agents left out have nothing to offer (`tests/unit/allocator/test_incremental.py`). The
master runs it over the agents changed since its last pass (`master/pass_scope.py` says when
a pass must be full instead), and may pass the agents' total and index in the view
(`ClusterView.total`, `agents_by_id`) so that such a pass does not walk every agent.

Several roles (Mesos's MULTI_ROLE): a framework with roles [a, b] is in the view once per
role (`FrameworkView`s with the same id). Each is a separate client: in a's sorter with what
the framework holds in a, in b's with what it holds in b; suppression, filters, reservations
and quota apply per role, and every grant carries its role (`OfferGrant.role`). Demands are
the framework's, shared by its roles: a task's worth granted in one role is not granted again
in the other.

Invariants (checked by `conformance.check_round`): a grant is never empty, never more than
the agent's free resources plus the reservations it may use, never to a suppressed framework,
never for an agent filtered for that framework at `now` (a filter ending exactly at `now` no
longer applies), never lifts a role above its quota limit. The same view (seed included)
always gives the same round.

Failure cases: a policy whose order omits or invents clients is repaired (`OrderedSorter`);
an empty view gives an empty round. Duplicate agent or framework ids in a view are the
caller's error; the first of each is used. A role's unallocated reservations count
towards its guarantee when the headroom is held back (as in Mesos); the held-back headroom
is counted over unreserved free resources.

Where the stages live: `allocation_pass` (one pass: stages 1, 2, 4 and the grants),
`quota_stage` (3, and the room of each grant), `reservations` (5), `reasons` (6), `agents`
(which agents have something to offer, and their seeded order).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping

from mesoslite.allocator.agent_setup import AgentSetup
from mesoslite.allocator.agents import (
    MIN_ALLOCATABLE_CPUS,
    MIN_ALLOCATABLE_MEM,
    agent_order,
    allocatable,
    sum_resources,
)
from mesoslite.allocator.allocation_pass import AllocationPass
from mesoslite.allocator.base import AllocationRound, ClusterView, Policy
from mesoslite.allocator.drf import ShareOrdering, weighted_share
from mesoslite.allocator.share_sorter import ShareMeter, ShareSorter, role_weights
from mesoslite.allocator.sorter import KeyedPolicy, KeyedSorter, OrderedSorter, Sorter
from mesoslite.ids import AgentId, FrameworkId
from mesoslite.resources import Resources

# `agents`' helpers were defined here first; they are still importable from here.
__all__ = [
    "DEFAULT_ROLE_WEIGHT",
    "MIN_ALLOCATABLE_CPUS",
    "MIN_ALLOCATABLE_MEM",
    "HierarchicalAllocator",
    "agent_order",
    "allocatable",
    "sum_resources",
]

logger = logging.getLogger(__name__)

DEFAULT_ROLE_WEIGHT = 1.0


class HierarchicalAllocator:
    """Offers to roles, then frameworks, in the order a `Policy` gives; see the module doc.

    Args:
        policy: orders roles and frameworks. If it also has `role_key` and `framework_key`
            (`sorter.KeyedPolicy`), its order is maintained incrementally; otherwise
            `order_roles`/`order_frameworks` are called again after each grant. If it has
            `agent_ranker` (`base.AgentRanker`), that ranks the agents for each framework.
    """

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.name: str = getattr(policy, "name", type(policy).__name__)
        self._keyed: KeyedPolicy | None = policy if isinstance(policy, KeyedPolicy) else None
        # The last full pass's view of the agents, for the next over the same (#15).
        self.agent_setup: AgentSetup | None = None
        # The last pass's total and its `ShareMeter` (`_share_meter`).
        self._meter_total: Resources | None = None
        self._meter: ShareMeter | None = None

    def __repr__(self) -> str:
        return f"HierarchicalAllocator({self.policy!r})"

    def allocate(self, view: ClusterView, now: float) -> AllocationRound:
        return self._round(AllocationPass(self, view, now))

    def allocate_agents(
        self, view: ClusterView, now: float, agent_ids: Collection[AgentId]
    ) -> AllocationRound:
        """An incremental pass: offer only `agent_ids`' free resources (the agents added or
        whose resources were recovered since the last pass), as Mesos's
        `allocate(agentIds)` does. Shares, totals and quota headroom are the whole view's,
        so it makes the same round as `allocate` when every other agent has nothing to
        offer; ids not in the view are ignored."""
        return self._round(AllocationPass(self, view, now, only=agent_ids))

    def _round(self, run: AllocationPass) -> AllocationRound:
        view = run.view
        run.run()
        logger.debug(
            "allocation round allocator=%s seed=%s agents=%d frameworks=%d grants=%d",
            self.name,
            view.seed,
            len(run.agents),
            len(run.frameworks),
            len(run.grants),
        )
        reasons, role_reasons = run.reasons_by_framework()
        return AllocationRound(
            grants=run.grant_list(), reasons=reasons, seed=view.seed, role_reasons=role_reasons
        )

    # -- sorters

    def _share_meter(self, total: Resources) -> ShareMeter | None:
        """The policy's `ShareMeter` for `total` when its keys are `ShareOrdering`'s (the
        same one for every sorter of a pass), else None."""
        keyed = self._keyed
        if keyed is None or not isinstance(keyed, ShareOrdering):
            return None
        kind = type(keyed)
        if kind.role_key is not ShareOrdering.role_key:
            return None
        if kind.framework_key is not ShareOrdering.framework_key:
            return None
        if total is not self._meter_total:
            make = getattr(keyed, "share_meter", None)
            self._meter = make(total) if callable(make) else None
            self._meter_total = total
        return self._meter

    def role_sorter(self, weights: Mapping[str, float], total: Resources) -> Sorter:
        policy, keyed = self.policy, self._keyed
        meter = self._share_meter(total)
        if meter is not None:
            # Keyed on floats, a grant's scalars added in place (#15).
            return ShareSorter(meter, role_weights(weights, DEFAULT_ROLE_WEIGHT))
        if keyed is not None:
            if type(keyed).role_key is ShareOrdering.role_key:
                # `ShareOrdering`'s key, without two calls per grant and level (#15).
                share = keyed.share  # type: ignore[attr-defined]

                def share_key(role: str, allocated: Resources) -> tuple[float, str]:
                    weight = weights.get(role, DEFAULT_ROLE_WEIGHT)
                    return (weighted_share(share(allocated, total), weight), role)

                return KeyedSorter(share_key)

            def role_key(role: str, allocated: Resources) -> tuple[float, str]:
                return keyed.role_key(
                    role, allocated, weights.get(role, DEFAULT_ROLE_WEIGHT), total
                )

            return KeyedSorter(role_key)
        return OrderedSorter(lambda allocations: policy.order_roles(allocations, weights, total))

    def framework_sorter(self, total: Resources) -> Sorter:
        policy, keyed = self.policy, self._keyed
        meter = self._share_meter(total)
        if meter is not None:
            return ShareSorter(meter)
        if keyed is not None:
            if type(keyed).framework_key is ShareOrdering.framework_key:
                # `ShareOrdering`'s key, without two calls per grant (#15).
                share = keyed.share  # type: ignore[attr-defined]

                def share_key(fid: str, allocated: Resources) -> tuple[float, str]:
                    return (share(allocated, total), fid)

                return KeyedSorter(share_key)

            def framework_key(fid: str, allocated: Resources) -> tuple[float, str]:
                return keyed.framework_key(FrameworkId(fid), allocated, total)

            return KeyedSorter(framework_key)

        def order(allocations: Mapping[str, Resources]) -> list[str]:
            typed = {FrameworkId(f): r for f, r in allocations.items()}
            return list(policy.order_frameworks(typed, total))

        return OrderedSorter(order)

    def explain(self, allocated: Resources, total: Resources) -> str:
        # Said of a candidate given nothing: those ahead of it took what was free. Its own
        # share is the higher one (or lost a tie), so "lower share" would be wrong (#16).
        text = f"passed over: others came first in {self.name} order"
        explain = getattr(self.policy, "explain", None)
        if callable(explain):
            text += " (a lower share, or a tie won by id or name)"
            return f"{text} and took what was free; its {explain(allocated, total)}"
        return f"{text} and took what was free"
