"""`AgentViews`: the allocator's view of each active agent, kept between allocation passes
and rebuilt only for the agents changed since the last one (#15).

An agent record marks itself changed in its book (`AgentBook.changed`) when a field a pass
reads is set (`records.AgentRecord`: info, status, used, offered, draining), and the book
marks agents it adds or removes; so registration, re-registration, a task's end, an
accept, a decline, a rescind or an expired offer, a drain and a reservation change (which
comes with an accept) all land here without each handler saying so. `refresh` takes the
set and rebuilds those agents' views; the rest are reused. The views are kept in the
agent book's order, as `allocation.view` lists them, and so are their totals' sum
(`RunningTotal`) and the agents' free resources (which `allocation._filters` reads).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from mesoslite.allocator.base import AgentView
from mesoslite.ids import AgentId
from mesoslite.master import records as rec
from mesoslite.master.allocation import agent_view
from mesoslite.master.books import MasterBooks
from mesoslite.resources import Range, Resources


class RunningTotal:
    """The sum of many `Resources` kept as they come and go; `value()` equals
    `allocator.agents.sum_resources` of the bundles present (ranges and sets are a union,
    so they are counted per distinct value and dropped when no bundle holds them)."""

    __slots__ = ("_scalars", "_ranges", "_sets", "_value")

    def __init__(self) -> None:
        self._scalars: dict[str, int] = {}
        self._ranges: Counter[tuple[str, tuple[Range, ...]]] = Counter()
        self._sets: Counter[tuple[str, str]] = Counter()
        self._value: Resources | None = Resources.empty()

    def add(self, res: Resources, sign: int = 1) -> None:
        scalars = self._scalars
        for name, milli in res.scalars.items():
            scalars[name] = scalars.get(name, 0) + sign * milli
        for name, ranges in res.ranges.items():
            self._count(self._ranges, (name, ranges), sign)
        for name, items in res.sets.items():
            for item in items:
                self._count(self._sets, (name, item), sign)
        self._value = None

    @staticmethod
    def _count(counter: Counter[Any], key: tuple[str, object], sign: int) -> None:
        left = counter[key] + sign
        if left:
            counter[key] = left
        else:
            del counter[key]

    def value(self) -> Resources:
        if self._value is None:
            ranges: dict[str, list[Range]] = {}
            for name, rs in self._ranges:
                ranges.setdefault(name, []).extend(rs)
            sets: dict[str, set[str]] = {}
            for name, item in self._sets:
                sets.setdefault(name, set()).add(item)
            merged = Resources.of(ranges=ranges)
            self._value = Resources(
                {n: m for n, m in self._scalars.items() if m},
                dict(merged.ranges),
                {n: frozenset(items) for n, items in sets.items() if items},
            )
        return self._value


class AgentViews:
    """The active agents' views and free resources, as of the last `refresh`."""

    def __init__(self) -> None:
        self.by_id: dict[AgentId, AgentView] = {}
        self.free: dict[AgentId, Resources] = {}
        self.total = RunningTotal()
        self._order: list[AgentView] = []
        self._position: dict[AgentId, int] = {}
        # Rebuilt and offered every pass (few agents): those with reservations (their views
        # depend on the reservation book too), and draining ones, which `make_offers` drops
        # the grants of, but which a full pass grants, moving the order of the others.
        self._always: set[AgentId] = set()
        self._built = False

    def reset(self) -> None:
        """Forget everything: the next `refresh` rebuilds every agent's view."""
        self.__init__()  # type: ignore[misc]

    @property
    def agents(self) -> tuple[AgentView, ...]:
        return tuple(self._order)

    def refresh(self, books: MasterBooks) -> list[AgentId]:
        """Rebuild the views of the agents changed since the last call (all of them the
        first time); returns the active ones among them, in the book's order of ids seen."""
        book = books.agents
        if not self._built:
            book.changed.clear()
            self._built = True
            for each in book.values():
                if each.status == rec.AGENT_ACTIVE:
                    self._put(books, each)
            self._renumber()
            return list(self.by_id)
        ids = [*book.changed, *(self._always - book.changed)]
        book.changed.clear()
        reorder = False
        out: list[AgentId] = []
        for agent_id in ids:
            record = book.get(agent_id)
            active = record is not None and record.status == rec.AGENT_ACTIVE
            old = self.by_id.get(agent_id)
            if active and record is not None and old is not None and (
                old.total is record.info.resources
            ):
                # The common change (a task or an offer came or went): same size, so the
                # running total stays as it is. Dropped and put back all the same, so the
                # views keep the order they had (changed agents last).
                self._drop(agent_id, count_total=False)
                self._put(books, record, count_total=False)
                out.append(agent_id)
                continue
            if old is not None:
                self._drop(agent_id)
                if not active:
                    reorder = True
            elif active:
                reorder = True  # a new or returning agent: its place is the book's
            if record is not None and active:
                self._put(books, record)
                out.append(agent_id)
        if reorder:
            self._order = [self.by_id[a] for a in book if a in self.by_id]
            self._renumber()
        else:
            for agent_id in out:
                self._order[self._position[agent_id]] = self.by_id[agent_id]
        out.sort(key=self._position.__getitem__)  # the book's order, not a set's
        return out

    def _put(self, books: MasterBooks, record: rec.AgentRecord, count_total: bool = True) -> None:
        free = record.free
        view = agent_view(books, record, free)
        agent_id = record.id
        self.by_id[agent_id] = view
        self.free[agent_id] = free
        if count_total:
            self.total.add(view.total)
        if (
            view.reserved
            or record.info.reserved
            or record.draining
            or agent_id in books.dynamic_reservations
        ):
            self._always.add(agent_id)
        else:
            self._always.discard(agent_id)

    def _drop(self, agent_id: AgentId, count_total: bool = True) -> None:
        view = self.by_id.pop(agent_id)
        del self.free[agent_id]
        if count_total:
            self.total.add(view.total, -1)
        self._always.discard(agent_id)

    def _renumber(self) -> None:
        if len(self._order) != len(self.by_id):
            self._order = list(self.by_id.values())
        self._position = {view.id: i for i, view in enumerate(self._order)}
