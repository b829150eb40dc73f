"""`LiveOrder`: agents in a fixed order, skipping those spent this pass in amortized O(1).

A pass hands out agents one grant at a time; a spent agent (nothing left to offer) must not
be walked over again by every later framework, or a pass over N agents costs N^2. Spent
agents are found lazily (`alive(id)` is asked as they are met) and skipped with union-find
style pointers, so each is stepped over about once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from mesoslite.ids import AgentId


class LiveOrder:
    """Agent ids in a fixed order; iteration skips the ones `alive` says are spent."""

    __slots__ = ("ids", "_next", "alive")

    def __init__(self, ids: Sequence[AgentId], alive: Callable[[AgentId], bool]) -> None:
        self.ids = list(ids)
        # _next[i] == i: not known to be spent; else a pointer towards the next candidate.
        self._next = list(range(len(self.ids) + 1))
        self.alive = alive

    def _find(self, i: int) -> int:
        nxt = self._next
        root = i
        while nxt[root] != root:
            root = nxt[root]
        while nxt[i] != root:  # path compression
            nxt[i], i = root, nxt[i]
        return root

    def iter_from(self, start: int = 0) -> Iterator[tuple[int, AgentId]]:
        """(index, id) of the live agents from `start` on, in order."""
        ids, nxt, alive = self.ids, self._next, self.alive
        end = len(ids)
        i = self._find(start) if start < end else end
        while i < end:
            agent_id = ids[i]
            if alive(agent_id):
                yield i, agent_id
                i = self._find(i + 1)
            else:
                nxt[i] = i + 1
                i = self._find(i + 1)

    def next_live(self, start: int) -> int:
        """The index of the first live agent from `start` on (`len(self)` if none): what
        `iter_from` yields first, without a generator (a pass asks once per grant)."""
        ids, nxt, alive = self.ids, self._next, self.alive
        end = len(ids)
        i = start
        while i < end:
            if nxt[i] != i:
                i = self._find(i)
                if i >= end:
                    break
            if alive(ids[i]):
                return i
            nxt[i] = i + 1
            i += 1
        return end

    def spend(self, index: int) -> None:
        """The agent at `index` has nothing left this pass (its whole free resources were
        granted): skip it from now on without asking `alive`."""
        self._next[index] = index + 1

    def __len__(self) -> int:
        return len(self.ids)
