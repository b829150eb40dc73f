"""Clocks: the system clock for daemons, a virtual one for tests and the simulator."""

from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import Callable
from typing import Protocol


class Clock(Protocol):
    """Time as the pure core sees it: read it, and ask to be called back later."""

    def now(self) -> float: ...

    def call_later(self, delay_s: float, callback: Callable[[], None]) -> Callable[[], None]:
        """Run `callback` after `delay_s`; returns a function that cancels it."""
        ...


class SystemClock:
    """Wall-clock seconds; timers run on the running asyncio loop."""

    def now(self) -> float:
        return time.time()

    def call_later(self, delay_s: float, callback: Callable[[], None]) -> Callable[[], None]:
        import asyncio

        handle = asyncio.get_running_loop().call_later(max(0.0, delay_s), callback)
        return handle.cancel


class VirtualClock:
    """A clock that moves only when told to; `advance` fires the timers that fall due."""

    def __init__(self, start: float = 1_000_000.0) -> None:
        self._now = start
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._cancelled: set[int] = set()
        self._seq = itertools.count()

    def now(self) -> float:
        return self._now

    def call_later(self, delay_s: float, callback: Callable[[], None]) -> Callable[[], None]:
        seq = next(self._seq)
        heapq.heappush(self._timers, (self._now + max(0.0, delay_s), seq, callback))
        return lambda: self._cancelled.add(seq)

    def advance(self, seconds: float) -> None:
        """Move time forward by `seconds`, firing due timers in time order."""
        self.advance_to(self._now + seconds)

    def advance_to(self, when: float) -> int:
        """Move time forward to `when` (never back), firing due timers in time order (those
        they set that fall due by then too); returns how many fired."""
        target = max(self._now, when)
        fired = 0
        while self._timers and self._timers[0][0] <= target:
            at, seq, callback = heapq.heappop(self._timers)
            self._now = max(self._now, at)
            if seq in self._cancelled:
                self._cancelled.discard(seq)
                continue
            callback()
            fired += 1
        self._now = target
        return fired

    def next_timer_at(self) -> float | None:
        """When the earliest timer not cancelled falls due; None if there is none (the
        simulator runs until then, time jumping from one timer to the next)."""
        while self._timers and self._timers[0][1] in self._cancelled:
            self._cancelled.discard(heapq.heappop(self._timers)[1])
        return self._timers[0][0] if self._timers else None


async def clock_sleep(clock: Clock, delay_s: float) -> None:
    """Sleep `delay_s` on `clock` (virtual time in tests): a `call_later` the loop awaits."""
    import asyncio

    done = asyncio.get_running_loop().create_future()

    def wake() -> None:
        if not done.done():
            done.set_result(None)

    cancel = clock.call_later(delay_s, wake)
    try:
        await done
    finally:
        cancel()
