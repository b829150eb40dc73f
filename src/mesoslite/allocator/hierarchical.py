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
     frameworks in policy order within the role (`sorter.py`). The first framework is given
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
caller's error; the first of each is used. Reservations count towards a guarantee only
once allocated; the held-back headroom is counted over unreserved free resources.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Mapping

from mesoslite.allocator.base import (
    AgentView,
    AllocationRound,
    ClusterView,
    FrameworkView,
    OfferGrant,
    Policy,
)
from mesoslite.allocator.filters import filtered_until
from mesoslite.allocator.live import LiveOrder
from mesoslite.allocator.quota import cap, fits, headroom, take, unmet_guarantee
from mesoslite.allocator.roles import RoleTree, ancestors
from mesoslite.allocator.sorter import KeyedPolicy, KeyedSorter, OrderedSorter, Sorter
from mesoslite.ids import AgentId, FrameworkId
from mesoslite.resources import Range, Resources

logger = logging.getLogger(__name__)

DEFAULT_ROLE_WEIGHT = 1.0
EMPTY = Resources.empty()


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


def _tighter(a: Mapping[str, int], b: Mapping[str, int] | None) -> dict[str, int]:
    """The scalar room allowed by both `a` and `b` (a name missing from one is not capped
    by it)."""
    out = dict(a)
    for name, left in (b or {}).items():
        out[name] = min(left, out.get(name, left))
    return out


_END = 2**62  # a cursor past every position


def _shape_key(shape: Resources) -> tuple[tuple[str, int], ...]:
    return tuple(sorted(shape.scalars.items()))


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

    def __repr__(self) -> str:
        return f"HierarchicalAllocator({self.policy!r})"

    def allocate(self, view: ClusterView, now: float) -> AllocationRound:
        run = _Pass(self, view, now)
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

    def role_sorter(self, weights: Mapping[str, float], total: Resources) -> Sorter:
        policy, keyed = self.policy, self._keyed
        if keyed is not None:

            def role_key(role: str, allocated: Resources) -> tuple[float, str]:
                return keyed.role_key(
                    role, allocated, weights.get(role, DEFAULT_ROLE_WEIGHT), total
                )

            return KeyedSorter(role_key)
        return OrderedSorter(lambda allocations: policy.order_roles(allocations, weights, total))

    def framework_sorter(self, total: Resources) -> Sorter:
        policy, keyed = self.policy, self._keyed
        if keyed is not None:

            def framework_key(fid: str, allocated: Resources) -> tuple[float, str]:
                return keyed.framework_key(FrameworkId(fid), allocated, total)

            return KeyedSorter(framework_key)

        def order(allocations: Mapping[str, Resources]) -> list[str]:
            typed = {FrameworkId(f): r for f, r in allocations.items()}
            return list(policy.order_frameworks(typed, total))

        return OrderedSorter(order)

    def explain(self, allocated: Resources, total: Resources) -> str:
        explain = getattr(self.policy, "explain", None)
        if callable(explain):
            return f"lower share than others: {explain(allocated, total)}"
        return f"lower share than others in {self.name} order"


# A framework in one of its roles: the allocator's client (see "Several roles" above).
_Client = tuple[FrameworkId, str]


class _Pass:
    """The mutable state of one `allocate` call."""

    def __init__(self, owner: HierarchicalAllocator, view: ClusterView, now: float) -> None:
        self.owner = owner
        self.view = view
        self.now = now
        self.frameworks: dict[_Client, FrameworkView] = {}
        for fw in view.frameworks:
            self.frameworks.setdefault((fw.id, fw.role), fw)
        self.agents: dict[AgentId, AgentView] = {}
        for agent in view.agents:
            self.agents.setdefault(agent.id, agent)
        self.total = sum_resources([a.total for a in self.agents.values()])
        self.free = {a.id: a.free for a in self.agents.values()}
        self.reserved: dict[AgentId, dict[str, Resources]] = {
            a.id: dict(a.reserved) for a in self.agents.values() if a.reserved
        }
        self.fw_alloc = {key: f.allocated for key, f in self.frameworks.items()}
        self.quotas_apply = bool(view.quotas)
        # Role -> what its subtree holds, for every role with frameworks and every ancestor.
        # (Only quota reads `role_alloc`: without quotas it is not summed.)
        self.role_alloc: dict[str, Resources] = {}
        self.leaf_alloc: dict[str, Resources] = {}
        for fw in self.frameworks.values():
            self.leaf_alloc[fw.role] = self.leaf_alloc.get(fw.role, EMPTY) + fw.allocated
            if self.quotas_apply:
                for path in ancestors(fw.role):
                    self.role_alloc[path] = self.role_alloc.get(path, EMPTY) + fw.allocated
        self.demands: dict[FrameworkId, list[list[object]]] = {}
        self.grants: dict[tuple[FrameworkId, str, AgentId], _Grant] = {}
        self.reasons: dict[_Client, str] = {}
        self.why: dict[_Client, str] = {}
        alive = [a for a in self.agents.values() if self._alive(a.id)]
        self.order = LiveOrder([a.id for a in agent_order(alive, view.seed)], self._alive)
        ranker = getattr(owner.policy, "agent_ranker", None)
        self.ranker: Callable[[FrameworkView, int], Iterable[tuple[int, AgentId]]] | None = (
            ranker(alive, view.seed, self._alive) if callable(ranker) else None
        )
        self.cursor: dict[tuple[object, ...], int] = {}
        # Unallocated scalars beyond what unmet guarantees need (None: no guarantee is owed).
        self.spare: dict[str, int] | None = None
        self.owed_roles: set[str] = set()

    # -- driving

    def run(self) -> None:
        candidates = self._candidates()
        if not candidates:
            return
        quotas = self.view.quotas
        if quotas:
            # Stage 3, and the headroom of unmet guarantees; skipped without any quota.
            guaranteed = {
                role: members
                for role, members in candidates.items()
                if any(unmet_guarantee(quotas.get(p), self.role_alloc[p]) for p in ancestors(role))
            }
            if guaranteed:
                self._fill(candidates, guaranteed, guarantee=True)
            self._hold_back_guarantees()
        self._fill(candidates, candidates, guarantee=False)
        self._explain(candidates)

    def _hold_back_guarantees(self) -> None:
        """What guarantees still lack (roles that asked for nothing this pass, or that the
        guarantee stage could not serve) is kept unallocated in the fair-share stage, so a
        role's guarantee is there when its frameworks come (Mesos's quota headroom)."""
        owed: dict[str, int] = {}
        for role, quota in self.view.quotas.items():
            held = self.role_alloc.get(role, EMPTY)
            for name, milli in unmet_guarantee(quota, held).items():
                owed[name] = owed.get(name, 0) + milli
        self.owed_roles = {
            role
            for role, q in self.view.quotas.items()
            if unmet_guarantee(q, self.role_alloc.get(role, EMPTY))
        }
        if not owed:
            return
        unallocated: dict[str, int] = {}
        for free in self.free.values():
            for name in owed:
                unallocated[name] = unallocated.get(name, 0) + free.scalars.get(name, 0)
        self.spare = {name: max(0, unallocated[name] - owed[name]) for name in owed}

    def _candidates(self) -> dict[str, list[FrameworkId]]:
        live = self.order.ids
        out: dict[str, list[FrameworkId]] = {}
        for key, fw in self.frameworks.items():
            if fw.suppressed:
                self.reasons[key] = "suppressed"
                continue
            if fw.demands:
                remaining = [[d.resources, d.count] for d in fw.demands if d.count > 0]
                if not remaining:
                    self.reasons[key] = "no outstanding demand"
                    continue
                # Shared by the framework's roles (the first of its views sets it).
                self.demands.setdefault(fw.id, remaining)
            if not live:
                self.reasons[key] = "no free resources"
                continue
            until = filtered_until(fw, live, self.now)
            if until is not None:
                self.reasons[key] = (
                    f"filtered on all agents with free resources until {until:.3f}"
                    f" ({until - self.now:.3f}s from now)"
                )
                continue
            out.setdefault(fw.role, []).append(fw.id)
        return out

    def _fill(
        self,
        candidates: Mapping[str, list[FrameworkId]],
        roles: Mapping[str, list[FrameworkId]],
        *,
        guarantee: bool,
    ) -> None:
        owner, quotas = self.owner, self.view.quotas
        tree = RoleTree(
            self.leaf_alloc, lambda: owner.role_sorter(self.view.role_weights, self.total)
        )
        for role in self.leaf_alloc:
            if role not in roles:
                tree.remove(role)
        sorters: dict[str, Sorter] = {}
        for role, members in roles.items():
            sorter = owner.framework_sorter(self.total)
            for fid in members:
                sorter.add(fid, self.fw_alloc[(fid, role)])
            sorters[role] = sorter
        while (next_role := tree.first()) is not None:
            role = next_role
            fid_s = sorters[role].first()
            if fid_s is None:
                tree.remove(role)
                continue
            fid = FrameworkId(fid_s)
            room = headroom(role, quotas, self.role_alloc) if quotas else None
            if room is not None and not any(room.values()):
                self.why.setdefault((fid, role), f"role {role} is at its quota limit")
                for other in sorters[role]:
                    self.why.setdefault(
                        (FrameworkId(other), role), f"role {role} is at its quota limit"
                    )
                tree.remove(role)
                continue
            if guarantee:
                need: dict[str, int] = {}
                for path in ancestors(role):
                    need.update(unmet_guarantee(quotas.get(path), self.role_alloc[path]))
                if not need:
                    tree.remove(role)
                    continue
                room = _tighter(need, room)
            elif self.spare is not None and not self.owed_roles.intersection(ancestors(role)):
                room = _tighter(self.spare, room)
                if not any(room.values()):
                    for other in sorters[role]:
                        self.why.setdefault(
                            (FrameworkId(other), role),
                            "what is left is held for unmet quota guarantees",
                        )
                    tree.remove(role)
                    continue
            fw = self.frameworks[(fid, role)]
            placed = self._place(fw, room)
            if placed is None:
                sorters[role].remove(fid)
                continue
            agent_id, resources, tasks = placed
            self._grant(fw, agent_id, resources, tasks)
            sorters[role].allocate(fid, resources)
            tree.allocate(role, resources)

    # -- placing

    def _place(
        self, fw: FrameworkView, room: Mapping[str, int] | None
    ) -> tuple[AgentId, Resources, int] | None:
        """The next grant for `fw`: (agent, resources, tasks), or None if nothing fits.

        Agents passed over stay passed over for the rest of the pass (they only get fuller,
        filters and roles do not change, quota room only shrinks), so a cursor per framework,
        or per (shape, role) for frameworks without filters, resumes where the last search
        for the same thing stopped.
        """
        demands = self.demands.get(fw.id)
        wanted: list[tuple[Resources | None, int]] = (
            [(None, 1)] if demands is None else [(d[0], d[1]) for d in demands]  # type: ignore[misc]
        )
        for shape, count in wanted:
            if count <= 0 or (shape is not None and not fits(shape, room)):
                continue
            shape_key = None if shape is None else _shape_key(shape)
            # Reservations make what fits depend on the role; without any, only on the shape.
            scope = fw.role if self.reserved else ""
            key = (fw.id, fw.role, shape_key) if shape is None or fw.filters else (shape_key, scope)
            begin = self.cursor.get(key, 0)
            for index, agent_id in self._indexed(fw, begin):
                if agent_id in fw.filters and fw.filters[agent_id] > self.now:
                    continue
                available = self._available(agent_id, fw.role)
                if shape is None:
                    offer = cap(available, room)
                    if not allocatable(offer):
                        continue
                    found = (agent_id, offer, 0)
                elif available.contains(shape):
                    found = (agent_id, shape, 1)
                else:
                    continue
                self.cursor[key] = index
                return found
            self.cursor[key] = _END
        if demands is not None:
            self.why.setdefault((fw.id, fw.role), "no agent has room for a task of its demands")
        return None

    def _indexed(self, fw: FrameworkView, begin: int) -> Iterable[tuple[int, AgentId]]:
        if self.ranker is not None:
            return self.ranker(fw, begin)
        return self.order.iter_from(begin)

    def _alive(self, agent_id: AgentId) -> bool:
        if allocatable(self.free[agent_id]):
            return True
        pools = self.reserved.get(agent_id)
        return pools is not None and any(allocatable(p) for p in pools.values())

    def _available(self, agent_id: AgentId, role: str) -> Resources:
        free = self.free[agent_id]
        pools = self.reserved.get(agent_id)
        if pools:
            for path in ancestors(role):
                pool = pools.get(path)
                if pool is not None:
                    free = free + pool
        return free

    # -- granting

    def _grant(
        self, fw: FrameworkView, agent_id: AgentId, resources: Resources, tasks: int
    ) -> None:
        left = resources
        reserved: dict[str, Resources] = {}
        pools = self.reserved.get(agent_id)
        if pools:
            for path in ancestors(fw.role):
                pool = pools.get(path)
                if pool is None or left.is_empty():
                    continue
                got = take(pool, left)
                if got.is_empty():
                    continue
                pools[path] = pool - got
                reserved[path] = got
                left = left - got
        self.free[agent_id] = self.free[agent_id] - left
        if self.spare is not None:
            for name in self.spare:
                taken = left.scalars.get(name, 0)
                if taken and not self.owed_roles.intersection(ancestors(fw.role)):
                    self.spare[name] = max(0, self.spare[name] - taken)
        grant = self.grants.get((fw.id, fw.role, agent_id))
        if grant is None:
            self.grants[(fw.id, fw.role, agent_id)] = _Grant(resources, reserved, tasks)
        else:
            grant.resources = grant.resources + resources
            for path, part in reserved.items():
                grant.reserved[path] = grant.reserved.get(path, EMPTY) + part
            grant.tasks += tasks
        self.fw_alloc[(fw.id, fw.role)] = self.fw_alloc[(fw.id, fw.role)] + resources
        if self.quotas_apply:
            # Only quota (guarantees, limits, the held-back headroom and the second stage's
            # role tree) reads these during a pass: without quotas, skip two `Resources`
            # additions per grant (the role tree keeps its own sums).
            self.leaf_alloc[fw.role] = self.leaf_alloc[fw.role] + resources
            for path in ancestors(fw.role):
                self.role_alloc[path] = self.role_alloc[path] + resources
        if tasks:
            for entry in self.demands[fw.id]:
                if entry[0] == resources and isinstance(entry[1], int) and entry[1] > 0:
                    entry[1] -= 1
                    break

    def grant_list(self) -> tuple[OfferGrant, ...]:
        return tuple(
            OfferGrant(fid, agent_id, g.resources, dict(g.reserved), g.tasks, role)
            for (fid, role, agent_id), g in self.grants.items()
        )

    # -- reasons

    def _explain(self, candidates: Mapping[str, list[FrameworkId]]) -> None:
        agents: dict[_Client, int] = {}
        tasks: dict[_Client, int] = {}
        for (fid, role, _agent_id), grant in self.grants.items():
            agents[(fid, role)] = agents.get((fid, role), 0) + 1
            tasks[(fid, role)] = tasks.get((fid, role), 0) + grant.tasks
        for role, members in candidates.items():
            for fid in members:
                key = (fid, role)
                if key in agents:
                    text = f"offered {_plural(agents[key], 'agent')}"
                    if tasks[key]:
                        text += f" ({_plural(tasks[key], 'task')}' worth of its demands)"
                    self.reasons[key] = text
                elif self.why.get(key):
                    self.reasons[key] = self.why[key]
                else:
                    self.reasons[key] = self.owner.explain(self.fw_alloc[key], self.total)

    def reasons_by_framework(
        self,
    ) -> tuple[dict[FrameworkId, str], dict[FrameworkId, dict[str, str]]]:
        """(one reason per framework, and per role for frameworks in several roles); a
        framework in several roles gets its roles' reasons joined: `a: ...; b: ...`."""
        by_fw: dict[FrameworkId, dict[str, str]] = {}
        for (fid, role), text in self.reasons.items():
            by_fw.setdefault(fid, {})[role] = text
        reasons: dict[FrameworkId, str] = {}
        role_reasons: dict[FrameworkId, dict[str, str]] = {}
        for fid, per_role in by_fw.items():
            if len(per_role) == 1:
                reasons[fid] = next(iter(per_role.values()))
                continue
            ordered = dict(sorted(per_role.items()))
            role_reasons[fid] = ordered
            reasons[fid] = "; ".join(f"{role}: {text}" for role, text in ordered.items())
        return reasons, role_reasons


class _Grant:
    __slots__ = ("resources", "reserved", "tasks")

    def __init__(self, resources: Resources, reserved: dict[str, Resources], tasks: int) -> None:
        self.resources = resources
        self.reserved = reserved
        self.tasks = tasks
