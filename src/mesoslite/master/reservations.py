"""`ReservationBook`: which part of each agent's reservations is in offers or used by tasks.

Pure bookkeeping beside `MasterState`. An agent's reservations (`AgentInfo.reserved`, role ->
resources) are offered only to their role (the allocator sees them as `AgentView.reserved`).
An offer may carry reserved parts (`OfferGrant.reserved`); the tasks launched from it take
from those parts first, and give them back when they end. The rest of an agent's used and
offered resources come out of its unreserved part.
"""

from __future__ import annotations

from collections.abc import Mapping

from mesoslite.allocator.quota import take
from mesoslite.ids import AgentId, FrameworkId, OfferId, TaskId
from mesoslite.resources import Resources

EMPTY = Resources.empty()
Parts = dict[str, Resources]


def _add(into: Parts, parts: Mapping[str, Resources]) -> None:
    for role, part in parts.items():
        into[role] = into.get(role, EMPTY) + part


def _sub(into: Parts, parts: Mapping[str, Resources]) -> None:
    for role, part in parts.items():
        left = into.get(role, EMPTY) - part
        if left.is_empty():
            into.pop(role, None)
        else:
            into[role] = left


class ReservationBook:
    def __init__(self) -> None:
        self.taken: dict[AgentId, Parts] = {}
        self._offers: dict[OfferId, tuple[AgentId, Parts]] = {}
        self._tasks: dict[tuple[FrameworkId, TaskId], tuple[AgentId, Parts]] = {}

    def offered(self, offer_id: OfferId, agent_id: AgentId, parts: Mapping[str, Resources]) -> None:
        if parts:
            self._offers[offer_id] = (agent_id, dict(parts))
            _add(self.taken.setdefault(agent_id, {}), parts)

    def rescinded(self, offer_id: OfferId) -> Parts:
        """The offer is gone (used, declined, rescinded): its reserved parts, given back."""
        entry = self._offers.pop(offer_id, None)
        if entry is None:
            return {}
        agent_id, parts = entry
        _sub(self.taken.setdefault(agent_id, {}), parts)
        return parts

    def launched(
        self,
        agent_id: AgentId,
        fid: FrameworkId,
        task_id: TaskId,
        resources: Resources,
        pools: Parts,
    ) -> None:
        """A task took `resources`: from `pools` (the reserved parts of its offers) first."""
        if not pools:
            return
        parts: Parts = {}
        left = resources
        for role in sorted(pools):
            got = take(pools[role], left)
            if got.is_empty():
                continue
            parts[role] = got
            pools[role] = pools[role] - got
            left = left - got
        if parts:
            self._tasks[(fid, task_id)] = (agent_id, parts)
            _add(self.taken.setdefault(agent_id, {}), parts)

    def of_task(self, fid: FrameworkId, task_id: TaskId) -> tuple[AgentId, Parts] | None:
        """The reserved parts a live task holds (to put back with `restore_task`)."""
        return self._tasks.get((fid, task_id))

    def restore_task(
        self, fid: FrameworkId, task_id: TaskId, entry: tuple[AgentId, Parts]
    ) -> None:
        """A task that `finished` is live again (the write that ended it failed)."""
        if (fid, task_id) not in self._tasks:
            self._tasks[(fid, task_id)] = entry
            _add(self.taken.setdefault(entry[0], {}), entry[1])

    def finished(self, fid: FrameworkId, task_id: TaskId) -> None:
        entry = self._tasks.pop((fid, task_id), None)
        if entry is not None:
            agent_id, parts = entry
            _sub(self.taken.setdefault(agent_id, {}), parts)

    def split(
        self,
        agent_id: AgentId,
        total: Resources,
        reserved: Mapping[str, Resources],
        used_and_offered: Resources,
    ) -> tuple[Resources, dict[str, Resources]]:
        """(unreserved free, {role: reserved free}) of an agent with reservations."""
        taken = self.taken.get(agent_id, {})
        unreserved_total = total
        taken_sum = EMPTY
        free_reserved: dict[str, Resources] = {}
        for role, part in reserved.items():
            unreserved_total = unreserved_total.minus_clamped(part)  # may exceed a shrunk agent
            held = taken.get(role, EMPTY)
            taken_sum = taken_sum + held
            left = part.minus_clamped(held)  # an UNRESERVE may leave tasks holding more
            if not left.is_empty():
                free_reserved[role] = left
        return unreserved_total.minus_clamped(used_and_offered - taken_sum), free_reserved
