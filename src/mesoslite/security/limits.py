"""Per-caller limits on the master, as pure bookkeeping: token buckets and stream counts.

Nothing here reads a clock or touches gRPC: `now` is passed in (from `mesoslite.clock`), so
the rules are tested on a virtual clock and the interceptor (`limits_interceptor`) is a thin
adapter. Keys are `Caller.key` (the principal when authentication is on, else the peer's
host), one bucket per key and kind of call, so one caller's flood never drains another's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MUTATING = "mutating"
READ = "read"
# Buckets kept before idle (full) ones are dropped: memory stays bounded whatever the
# number of peers a flood comes from.
MAX_BUCKETS = 10_000


@dataclass(frozen=True, slots=True)
class RateLimit:
    """`qps` tokens per second, at most `burst` saved up (0: twice `qps`); qps 0: no limit."""

    qps: float = 0.0
    burst: float = 0.0

    @property
    def on(self) -> bool:
        return self.qps > 0

    @property
    def capacity(self) -> float:
        # A burst below one call would refuse everything: at least one call passes.
        return max(1.0, self.burst if self.burst > 0 else 2 * self.qps)


@dataclass(slots=True)
class TokenBucket:
    """A token bucket (RFC 2697's idea): refills at `limit.qps`, holds `limit.capacity`."""

    limit: RateLimit
    tokens: float
    updated: float

    def take(self, now: float, cost: float = 1.0) -> float:
        """Take `cost` tokens if there are enough: returns 0.0, else the seconds to wait
        until there would be (and takes nothing)."""
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(self.limit.capacity, self.tokens + elapsed * self.limit.qps)
        self.updated = max(self.updated, now)
        if self.tokens >= cost:
            self.tokens -= cost
            return 0.0
        return (cost - self.tokens) / self.limit.qps

    def full_at(self, now: float) -> bool:
        return self.tokens + max(0.0, now - self.updated) * self.limit.qps >= self.limit.capacity


@dataclass(slots=True)
class RateLimiter:
    """One bucket per (caller key, kind of call); kinds are `MUTATING` and `READ`."""

    limits: dict[str, RateLimit]
    max_buckets: int = MAX_BUCKETS
    _buckets: dict[tuple[str, str], TokenBucket] = field(default_factory=dict)

    def admit(self, key: str, kind: str, now: float) -> float:
        """0.0 if the call may go ahead (its token taken), else the seconds to retry after."""
        limit = self.limits.get(kind)
        if limit is None or not limit.on:
            return 0.0
        bucket = self._buckets.get((key, kind))
        if bucket is None:
            if len(self._buckets) >= self.max_buckets:
                self._drop_idle(now)
            bucket = TokenBucket(limit, limit.capacity, now)
            self._buckets[(key, kind)] = bucket
        return bucket.take(now)

    def _drop_idle(self, now: float) -> None:
        """Forget full buckets (a new one starts full too); if none is, the oldest half."""
        idle = [k for k, b in self._buckets.items() if b.full_at(now)]
        if not idle:
            idle = list(self._buckets)[: max(1, len(self._buckets) // 2)]
        for k in idle:
            del self._buckets[k]

    def __len__(self) -> int:
        return len(self._buckets)


@dataclass(slots=True)
class StreamCounter:
    """Open streams (subscriptions, follows, agent links) per caller key; max 0 = no cap."""

    max_per_key: int
    _open: dict[str, int] = field(default_factory=dict)

    def open(self, key: str) -> bool:
        """Count one more stream for `key` if under the cap; False (nothing counted) if not."""
        n = self._open.get(key, 0)
        if self.max_per_key and n >= self.max_per_key:
            return False
        self._open[key] = n + 1
        return True

    def close(self, key: str) -> None:
        n = self._open.get(key, 0) - 1
        if n > 0:
            self._open[key] = n
        else:
            self._open.pop(key, None)

    def count(self, key: str) -> int:
        return self._open.get(key, 0)
