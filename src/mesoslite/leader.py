"""Following the leading master: one way, for the agent, the SDK driver and the CLI.

`LeaderFollower` wraps a `MasterLocator` (which master to try: one address, a list, or the
leader named in ZooKeeper) with a `Backoff` between failed attempts. The backoff is capped
exponential with full jitter (each delay drawn uniformly from [0, min(cap, base * 2^n)]),
so that the agents and frameworks that lost a master do not all come back on the same
doubling schedule. With `zk://`, a wait is cut short as soon as ZooKeeper reports that the
election changed (a watch on its znodes) or that the connection to it is back, so a new
leader is found within about a second of its election, whatever the backoff has grown to.
"""

from __future__ import annotations

import asyncio
import random
import time

from mesoslite.discovery import DEFAULT_ZK_TIMEOUT_S, ZK_RECONNECT_MAX_S, MasterLocator

DEFAULT_BACKOFF_MIN_S = 0.1


class Backoff:
    """Capped exponential backoff with full jitter.

    Args:
        base_s: the ceiling of the first delay; each failure doubles it.
        max_s: no delay is ever longer than this.
        rng: the source of jitter (a seeded `random.Random` in tests).
    """

    def __init__(self, base_s: float, max_s: float, rng: random.Random | None = None) -> None:
        if base_s <= 0 or max_s <= 0:
            raise ValueError(f"backoff times must be > 0, got base_s={base_s} max_s={max_s}")
        self.base_s = min(base_s, max_s)
        self.max_s = max_s
        self.rng = rng or random.Random()
        self.attempts = 0

    def ceiling(self) -> float:
        """The longest the next delay may be."""
        # min() before the power would overflow after ~1000 failures; cap the exponent.
        return min(self.max_s, self.base_s * 2.0 ** min(self.attempts, 64))

    def next(self) -> float:
        """The next delay, in [0, ceiling()], and count one more failure."""
        delay = self.rng.uniform(0.0, self.ceiling())
        self.attempts += 1
        return delay

    def reset(self) -> None:
        """After a success: the next failure starts from `base_s` again."""
        self.attempts = 0


class LeaderFollower:
    """Which master to talk to next, and how long to wait after a failure.

    Args:
        spec: `HOST:PORT`, `HOST:PORT,HOST:PORT,...` or `zk://HOST:PORT[,...]/PATH`.
        backoff_max_s: the longest wait between attempts (`--reconnect-backoff-max-s`);
            it also bounds the ZooKeeper client's reconnect delay (at most 1 s).
        backoff_min_s: the ceiling of the first wait.
        rng: the source of jitter.
        zk_timeout_s: how long each ZooKeeper call may take.
    """

    def __init__(
        self,
        spec: str,
        *,
        backoff_max_s: float,
        backoff_min_s: float = DEFAULT_BACKOFF_MIN_S,
        rng: random.Random | None = None,
        zk_timeout_s: float = DEFAULT_ZK_TIMEOUT_S,
    ) -> None:
        if backoff_max_s <= 0:
            raise ValueError(f"backoff_max_s must be > 0, got {backoff_max_s}")
        self.locator = MasterLocator(
            spec, zk_timeout_s=zk_timeout_s,
            reconnect_max_s=min(ZK_RECONNECT_MAX_S, backoff_max_s),
        )
        self.backoff = Backoff(backoff_min_s, self.locator.backoff_max_s(backoff_max_s), rng)
        self.address = self.locator.addresses[0] if self.locator.addresses else ""
        self._seen = 0  # the locator's generation when we last asked it

    @property
    def static(self) -> bool:
        return self.locator.static

    def describe(self) -> str:
        return self.locator.describe()

    async def current(self) -> str:
        """The master to try now (raises `UnavailableError` if ZooKeeper names none)."""
        self._seen = self.locator.generation
        self.address = await self.locator.current()
        return self.address

    def current_blocking(self) -> str:
        self._seen = self.locator.generation
        self.address = self.locator.current_blocking()
        return self.address

    def redirect(self, leader_address: str) -> None:
        """A standby named the leader: the next `current()` answers it."""
        self.locator.redirect(leader_address)

    def failed(self, address: str) -> None:
        """`address` did not answer: a list moves on to its next master."""
        self.locator.failed(address)

    def connected(self) -> None:
        """A session with the leader began: the next failure waits little again."""
        self.backoff.reset()

    async def pause(self) -> float:
        """Wait out the next backoff delay, or less if ZooKeeper reports a change."""
        delay = self.backoff.next()
        started = time.monotonic()
        if self.locator.zk is None:
            await asyncio.sleep(delay)
        else:
            await self.locator.wait_changed(self._seen, delay)
        return time.monotonic() - started

    def pause_blocking(self) -> float:
        delay = self.backoff.next()
        started = time.monotonic()
        if self.locator.zk is None:
            time.sleep(delay)
        else:
            self.locator.wait_changed_blocking(self._seen, delay)
        return time.monotonic() - started

    async def close(self) -> None:
        await self.locator.close()

    def close_blocking(self) -> None:
        self.locator.close_blocking()
