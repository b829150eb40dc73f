"""`AllocationPass`: the mutable state of one `HierarchicalAllocator.allocate` call and its
stages (candidates, quota guarantees, fair share, reasons); see `hierarchical.py`'s module
doc for the stages and invariants. The quota steps are in `quota_stage`, reservations in
`reservations`, the reasons' wording in `reasons`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Protocol

from mesoslite.allocator.agent_setup import AgentSetup, pass_agents
from mesoslite.allocator.agents import agent_order, allocatable
from mesoslite.allocator.arith import minus, plus
from mesoslite.allocator.base import ClusterView, FrameworkView, OfferGrant, Policy
from mesoslite.allocator.filters import filtered_until
from mesoslite.allocator.grants import GrantBook, new_grant
from mesoslite.allocator.live import LiveOrder
from mesoslite.allocator.quota import cap, fits, headroom
from mesoslite.allocator.quota_stage import (
    guarantee_need,
    guaranteed_roles,
    held_back,
    spend_spare,
    tighter,
)
from mesoslite.allocator.reasons import Client, by_framework, client_reasons
from mesoslite.allocator.reservations import available_to, take_reserved
from mesoslite.allocator.roles import RoleTree, ancestors
from mesoslite.allocator.sorter import Sorter
from mesoslite.allocator.tiers import split_by_tier
from mesoslite.allocator.wants import WHOLE_AGENT, Want, shape_key
from mesoslite.ids import AgentId, FrameworkId
from mesoslite.resources import Resources

EMPTY = Resources.empty()
_END = 2**62  # a cursor past every position
_AT_LIMIT = "role {role} is at its quota limit"
_HELD = "what is left is held for unmet quota guarantees"
_NO_ROOM = "no agent has room for a task of its demands"
_HIGHER_TIER = "higher priority tiers were served first (this role's priority is {p})"


class SorterSource(Protocol):
    """What a pass needs of its allocator: the policy, its sorters and its wording."""

    policy: Policy
    agent_setup: AgentSetup | None  # the last full pass's, for one over the same agents

    def role_sorter(self, weights: Mapping[str, float], total: Resources) -> Sorter: ...

    def framework_sorter(self, total: Resources) -> Sorter: ...

    def explain(self, allocated: Resources, total: Resources) -> str: ...


class AllocationPass:
    """The mutable state of one `allocate` call."""

    def __init__(
        self,
        owner: SorterSource,
        view: ClusterView,
        now: float,
        only: Collection[AgentId] | None = None,
    ) -> None:
        """`only`: offer just these agents' resources (an incremental pass, Mesos's
        `allocate(agentIds)`); the cluster total, the frameworks' allocations and the quota
        headroom are still the whole view's. None: every agent (a full pass)."""
        self.owner = owner
        self.view = view
        self.now = now
        self.frameworks: dict[Client, FrameworkView] = {}
        for fw in view.frameworks:
            self.frameworks.setdefault((fw.id, fw.role), fw)
        self.full = only is None
        start = pass_agents(owner.agent_setup, view, only)
        if start.setup is not None:
            owner.agent_setup = start.setup
        self.agents, self.total = start.agents, start.total
        self.free, self.reserved = start.free, start.reserved
        is_alive, alive = start.is_alive, start.alive
        # What each client holds: the view's, then its framework sorter's bundle (`grow`).
        self.fw_alloc = {key: f.allocated for key, f in self.frameworks.items()}
        self.quotas_apply = bool(view.quotas)
        self._sum_allocations()
        self.demands: dict[FrameworkId, list[Want]] = {}
        # A client's grants on an agent: summed while the pass runs (`Grant`), or, for whole
        # agents' offers (final when made), the `OfferGrant` itself.
        self.book = GrantBook()
        self.grants = self.book.by_key
        self.reasons: dict[Client, str] = {}
        self.why: dict[Client, str] = {}
        self.order = LiveOrder([a.id for a in agent_order(alive, view.seed)], is_alive)
        ranker = getattr(owner.policy, "agent_ranker", None)
        self.ranker: Callable[[FrameworkView, int], Iterable[tuple[int, AgentId]]] | None = (
            ranker(alive, view.seed, is_alive) if callable(ranker) else None
        )
        self.cursor: dict[tuple[object, ...], int] = {}
        # Unallocated scalars beyond what unmet guarantees need (None: no guarantee is owed).
        self.spare: dict[str, int] | None = None
        self.owed_roles: set[str] = set()

    def _sum_allocations(self) -> None:
        # Role -> what its subtree holds, for every role with frameworks and every ancestor.
        # (Only quota reads `role_alloc`: without quotas it is not summed.)
        self.role_alloc: dict[str, Resources] = {}
        self.leaf_alloc: dict[str, Resources] = {}
        for fw in self.frameworks.values():
            # `plus`: frameworks' allocations often carry the same port ranges (#15).
            self.leaf_alloc[fw.role] = plus(self.leaf_alloc.get(fw.role, EMPTY), fw.allocated)
            if self.quotas_apply:
                for path in ancestors(fw.role):
                    self.role_alloc[path] = plus(self.role_alloc.get(path, EMPTY), fw.allocated)

    # -- driving

    def run(self) -> None:
        candidates = self._candidates()
        if not candidates:
            return
        quotas = self.view.quotas
        if quotas:
            # Stage 3, and the headroom of unmet guarantees; skipped without any quota.
            guaranteed = guaranteed_roles(candidates, quotas, self.role_alloc)
            if guaranteed:
                self._fill(guaranteed, guarantee=True)
            self.spare, self.owed_roles = held_back(
                quotas, self.role_alloc, self._unallocated(), self._pools()
            )
        self._fill_tiers(candidates)
        agents, tasks = self.book.counts()
        self.reasons.update(
            client_reasons(
                agents,
                tasks,
                candidates,
                self.why,
                lambda key: self.owner.explain(self.fw_alloc[key], self.total),
            )
        )

    def _unallocated(self) -> list[Resources]:
        """Every agent's free resources: the pass's own for agents in scope, else the view's."""
        if self.full:
            return list(self.free.values())
        free = self.free
        return [free.get(a.id, a.free) for a in self.agents.values()]

    def _pools(self) -> Mapping[AgentId, Mapping[str, Resources]]:
        """Every agent's reservation pools, as `_unallocated` does for free resources."""
        if self.full:
            return self.reserved
        pools: dict[AgentId, Mapping[str, Resources]] = {
            a.id: a.reserved for a in self.agents.values() if a.reserved
        }
        pools.update(self.reserved)
        return pools

    def _fill_tiers(self, candidates: Mapping[str, list[FrameworkId]]) -> None:
        """Stage 4, tier by tier (`tiers.py`): a lower tier gets only what is left."""
        served = False
        for priority, tier in split_by_tier(candidates, self.view.role_priorities):
            if served:
                for role, members in tier.items():
                    for fid in members:
                        self.why.setdefault((fid, role), _HIGHER_TIER.format(p=priority))
            before = len(self.grants)
            self._fill(tier, guarantee=False)
            served = served or len(self.grants) > before

    def _candidates(self) -> dict[str, list[FrameworkId]]:
        live = self.order.ids
        out: dict[str, list[FrameworkId]] = {}
        for key, fw in self.frameworks.items():
            if fw.suppressed:
                self.reasons[key] = "suppressed"
                continue
            if fw.demands:
                remaining = [
                    Want(d.resources, d.count, shape_key(d.resources))
                    for d in fw.demands
                    if d.count > 0
                ]
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

    def _orders(self, roles: Mapping[str, list[FrameworkId]]) -> tuple[RoleTree, dict[str, Sorter]]:
        """The role tree of `roles` and each role's framework sorter, for a `_fill`."""
        owner = self.owner
        tree = RoleTree(
            self.leaf_alloc, lambda: owner.role_sorter(self.view.role_weights, self.total)
        )
        for role in self.leaf_alloc:
            if role not in roles:
                tree.remove(role)
        sorters: dict[str, Sorter] = {}
        for role, members in roles.items():
            sorter = owner.framework_sorter(self.total)
            for member in members:
                sorter.add(member, self.fw_alloc[(member, role)])
            sorters[role] = sorter
        return tree, sorters

    def _fill(self, roles: Mapping[str, list[FrameworkId]], *, guarantee: bool) -> None:
        """Grant to `roles` one grant at a time, in policy order, until nothing fits.

        Long because the grant of a whole agent is inlined: most grants of a busy pass are
        one, and calls per grant were a fifth of a pass (#15)."""
        tree, sorters = self._orders(roles)
        fid: FrameworkId
        limited = bool(self.view.quotas) or guarantee or self.spare is not None
        # Whole agents, uncapped, no reservations: searched and granted without the general
        # steps (most grants of a busy pass, #15).
        whole = not limited and not self.reserved
        ranked = self.ranker is not None
        demands, frameworks, fw_alloc = self.demands, self.frameworks, self.fw_alloc
        cursor, free, grants, now = self.cursor, self.free, self.grants, self.now
        ids, next_live, spend = self.order.ids, self.order.next_live, self.order.spend
        end = len(ids)
        # Every agent before `head` is spent: a search from a cursor further back starts
        # there instead of stepping over what others took since (#15).
        head = 0
        while (next_role := tree.first()) is not None:
            role = next_role
            fid_s = sorters[role].first()
            if fid_s is None:
                tree.remove(role)
                continue
            fid = fid_s  # type: ignore[assignment]  # a NewType: no call per grant
            room = None
            if limited:
                open_, room = self._room(role, fid, sorters[role], guarantee=guarantee)
                if not open_:
                    tree.remove(role)
                    continue
            fkey = (fid, role)
            fw = frameworks[fkey]
            if whole and fid not in demands:
                # `_search_whole`, then `_grant` of the agent's whole free resources, inlined:
                # most grants of a busy pass (#15). Every live agent is worth offering, so the
                # first live one not filtered is the grant; it is spent once granted.
                ckey = (fid, role, None)
                found: AgentId | None = None
                if ranked:
                    found = self._search_ranked_whole(fw, ckey)
                else:
                    filters = fw.filters
                    index = cursor.get(ckey, 0)
                    if index <= head:
                        index = head = next_live(head)
                    else:
                        index = next_live(index)
                    while index < end:
                        agent_id = ids[index]
                        if not filters or (until := filters.get(agent_id)) is None or until <= now:
                            cursor[ckey] = index
                            spend(index)
                            found = agent_id
                            break
                        index = next_live(index + 1)
                if found is not None:
                    agent_id = found
                    resources = free[agent_id]
                    free[agent_id] = EMPTY
                    gkey = (fid, role, agent_id)
                    if gkey not in grants:
                        # Final (the agent is spent): the offer itself, made once (#15).
                        grants[gkey] = new_grant(fid, agent_id, resources, {}, 0, role)
                    else:  # not seen: a framework without demands gets an agent once
                        self.book.record(gkey, resources, {}, 0)
                    # One sum per grant for the framework, shared by the pass and its
                    # sorter (the sorter's bundle, #15).
                    fw_alloc[fkey] = sorters[role].grow(fid, resources)
                    tree.allocate(role, resources)
                    continue
                cursor[ckey] = _END
                placed = None
            else:
                placed = self._place(fw, room)
            if placed is None:
                sorters[role].remove(fid)
                if not limited and self.order.next_live(0) >= len(self.order):
                    # Nothing is left anywhere (an incremental pass over a few agents
                    # gets here after a few grants): the others would fail alike (#15).
                    self._nothing_left(sorters)
                    return
                continue
            agent_id, resources, tasks = placed
            self._grant(fw, agent_id, resources, tasks)
            fw_alloc[fkey] = sorters[role].grow(fid, resources)
            tree.allocate(role, resources)

    def _nothing_left(self, sorters: Mapping[str, Sorter]) -> None:
        """What `_place` says of each client still waiting when no agent has anything."""
        for role, sorter in sorters.items():
            for fid in sorter:
                if FrameworkId(fid) in self.demands:
                    self.why.setdefault((FrameworkId(fid), role), _NO_ROOM)

    def _room(
        self, role: str, fid: FrameworkId, sorter: Sorter, *, guarantee: bool
    ) -> tuple[bool, dict[str, int] | None]:
        """(whether `role` may take more this stage, the scalar room of its next grant:
        None for no cap). Quota limits cap every grant; the guarantee stage grants only
        what guarantees lack; other roles do not take what is held for guarantees."""
        quotas = self.view.quotas
        room = headroom(role, quotas, self.role_alloc) if quotas else None
        if room is not None and not any(room.values()):
            self.why.setdefault((fid, role), _AT_LIMIT.format(role=role))
            for other in sorter:
                self.why.setdefault((FrameworkId(other), role), _AT_LIMIT.format(role=role))
            return False, None
        if guarantee:
            need = guarantee_need(role, quotas, self.role_alloc)
            if not need:
                return False, None
            return True, tighter(need, room)
        if self.spare is not None and not self.owed_roles.intersection(ancestors(role)):
            room = tighter(self.spare, room)
            if not any(room.values()):
                for other in sorter:
                    self.why.setdefault((FrameworkId(other), role), _HELD)
                return False, None
        return True, room

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
        if demands is None and room is None and self.ranker is None and not self.reserved:
            # The common case, a whole agent with no quota room and no reservations (#15).
            return self._search_whole(fw, (fw.id, fw.role, None))
        for entry in WHOLE_AGENT if demands is None else demands:
            shape = entry.shape
            if entry.count <= 0 or (shape is not None and not fits(shape, room)):
                continue
            shape_key = entry.key
            # Reservations make what fits depend on the role; without any, only on the shape.
            scope = fw.role if self.reserved else ""
            key = (fw.id, fw.role, shape_key) if shape is None or fw.filters else (shape_key, scope)
            found = self._search(fw, shape, room, key)
            if found is not None:
                return found
        if demands is not None:
            self.why.setdefault((fw.id, fw.role), _NO_ROOM)
        return None

    def _search(
        self,
        fw: FrameworkView,
        shape: Resources | None,
        room: Mapping[str, int] | None,
        key: tuple[object, ...],
    ) -> tuple[AgentId, Resources, int] | None:
        """The first agent from `key`'s cursor on with room for `shape` (None: whatever
        is free, capped to `room`); the cursor is left there."""
        filters, now, free, reserved = fw.filters, self.now, self.free, self.reserved
        for index, agent_id in self._indexed(fw, self.cursor.get(key, 0)):
            if filters and agent_id in filters and filters[agent_id] > now:
                continue
            available = free[agent_id]
            if reserved:
                available = available_to(available, reserved.get(agent_id), fw.role)
            if shape is None:
                offer = available if room is None else cap(available, room)
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
        return None

    def _search_whole(
        self, fw: FrameworkView, key: tuple[object, ...]
    ) -> tuple[AgentId, Resources, int] | None:
        """`_search` for a whole agent's free resources, uncapped, on a pass without
        reservations or a ranker: every live agent is worth offering (`alive_check` said
        `allocatable`), so the first live one not filtered is the grant."""
        order, filters, now = self.order, fw.filters, self.now
        ids, end = order.ids, len(order.ids)
        index = order.next_live(self.cursor.get(key, 0))
        while index < end:
            agent_id = ids[index]
            if not filters or agent_id not in filters or filters[agent_id] <= now:
                self.cursor[key] = index
                order.spend(index)  # granted all it has (the caller grants what is found)
                return (agent_id, self.free[agent_id], 0)
            index = order.next_live(index + 1)
        self.cursor[key] = _END
        return None

    def _search_ranked_whole(self, fw: FrameworkView, key: tuple[object, ...]) -> AgentId | None:
        """`_search` for a whole agent's free resources, uncapped, on a pass without
        reservations, in the ranker's order: the ranker yields live agents only, each worth
        offering (`alive_check`), so the first not filtered is the grant. Sets the cursor
        when found (the caller, when not)."""
        filters, now = fw.filters, self.now
        assert self.ranker is not None
        first = getattr(self.ranker, "first_unfiltered", None)
        if first is not None:  # the same answer without a generator (`ssf`, #15)
            found = first(fw, self.cursor.get(key, 0), now)
            if found is None:
                return None
            self.cursor[key] = found[0]
            return found[1]  # type: ignore[no-any-return]
        for index, agent_id in self.ranker(fw, self.cursor.get(key, 0)):
            if filters and (until := filters.get(agent_id)) is not None and until > now:
                continue
            self.cursor[key] = index
            return agent_id
        return None

    def _indexed(self, fw: FrameworkView, begin: int) -> Iterable[tuple[int, AgentId]]:
        if self.ranker is not None:
            return self.ranker(fw, begin)
        return self.order.iter_from(begin)

    # -- granting

    def _grant(
        self, fw: FrameworkView, agent_id: AgentId, resources: Resources, tasks: int
    ) -> None:
        """Record the grant (the caller adds it to the framework's allocation, through its
        sorter)."""
        pools = self.reserved.get(agent_id) if self.reserved else None
        if pools:
            reserved, left = take_reserved(pools, resources, fw.role)
        else:
            reserved, left = {}, resources
        free = self.free
        free[agent_id] = minus(free[agent_id], left)
        if self.spare is not None:
            spend_spare(self.spare, left, self.owed_roles, fw.role)
        gkey = (fw.id, fw.role, agent_id)
        self.book.record(gkey, resources, reserved, tasks)
        if self.quotas_apply:
            # Only quota (guarantees, limits, the held-back headroom and the second stage's
            # role tree) reads these during a pass: without quotas, skip two `Resources`
            # additions per grant (the role tree keeps its own sums).
            self.leaf_alloc[fw.role] = plus(self.leaf_alloc[fw.role], resources)
            for path in ancestors(fw.role):
                self.role_alloc[path] = plus(self.role_alloc[path], resources)
        if tasks:
            for entry in self.demands[fw.id]:
                shape = entry.shape
                if (shape is resources or shape == resources) and entry.count > 0:
                    entry.count -= 1
                    break

    # -- results

    def grant_list(self) -> tuple[OfferGrant, ...]:
        return self.book.offers()

    def reasons_by_framework(
        self,
    ) -> tuple[dict[FrameworkId, str], dict[FrameworkId, dict[str, str]]]:
        """(one reason per framework, and per role for frameworks in several roles)."""
        return by_framework(self.reasons)
