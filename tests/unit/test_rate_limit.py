"""The per-caller token buckets and stream counts of `security/limits.py`, on a virtual clock."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mesoslite.clock import VirtualClock
from mesoslite.security.limits import (
    MUTATING,
    READ,
    RateLimit,
    RateLimiter,
    StreamCounter,
    TokenBucket,
)


def limiter(qps: float = 10, burst: float = 5, read_qps: float = 0) -> RateLimiter:
    return RateLimiter({MUTATING: RateLimit(qps, burst), READ: RateLimit(read_qps, 0)})


def test_a_burst_passes_then_the_next_call_waits_one_token():
    clock, rl = VirtualClock(), limiter(qps=10, burst=5)
    assert [rl.admit("a", MUTATING, clock.now()) for _ in range(5)] == [0.0] * 5
    assert rl.admit("a", MUTATING, clock.now()) == pytest.approx(0.1)


def test_a_refused_call_takes_no_token_and_waiting_the_retry_after_is_enough():
    clock, rl = VirtualClock(), limiter(qps=4, burst=1)
    assert rl.admit("a", MUTATING, clock.now()) == 0.0
    wait = rl.admit("a", MUTATING, clock.now())
    assert wait == pytest.approx(0.25)
    assert rl.admit("a", MUTATING, clock.now()) == pytest.approx(0.25)  # still, not longer
    clock.advance(wait)
    assert rl.admit("a", MUTATING, clock.now()) == 0.0


def test_tokens_refill_at_qps_and_never_above_the_burst():
    clock, rl = VirtualClock(), limiter(qps=10, burst=3)
    for _ in range(3):
        rl.admit("a", MUTATING, clock.now())
    clock.advance(3600)
    assert [rl.admit("a", MUTATING, clock.now()) for _ in range(3)] == [0.0] * 3
    assert rl.admit("a", MUTATING, clock.now()) > 0


def test_one_callers_flood_does_not_starve_another():
    clock, rl = VirtualClock(), limiter(qps=10, burst=5)
    refused = sum(rl.admit("flooder", MUTATING, clock.now()) > 0 for _ in range(1000))
    assert refused == 995
    assert rl.admit("quiet", MUTATING, clock.now()) == 0.0


def test_reads_and_mutating_calls_have_separate_buckets():
    clock, rl = VirtualClock(), limiter(qps=1, burst=1, read_qps=100)
    assert rl.admit("a", MUTATING, clock.now()) == 0.0
    assert rl.admit("a", MUTATING, clock.now()) > 0
    assert all(rl.admit("a", READ, clock.now()) == 0.0 for _ in range(200))
    assert rl.admit("a", READ, clock.now()) > 0


def test_qps_zero_is_no_limit():
    clock, rl = VirtualClock(), limiter(qps=0, read_qps=0)
    for kind in (MUTATING, READ):
        assert all(rl.admit("a", kind, clock.now()) == 0.0 for _ in range(10_000))
    assert len(rl) == 0


def test_burst_zero_is_twice_qps_and_never_under_one_call():
    assert RateLimit(10, 0).capacity == 20
    assert RateLimit(0.1, 0).capacity == 1
    assert RateLimit(0.1, 0.5).capacity == 1


def test_buckets_stay_bounded_whatever_the_number_of_callers():
    clock = VirtualClock()
    rl = RateLimiter({MUTATING: RateLimit(1, 1)}, max_buckets=100)
    for i in range(1000):
        rl.admit(f"peer-{i}", MUTATING, clock.now())
    assert len(rl) <= 100


def test_idle_buckets_are_dropped_before_busy_ones():
    clock = VirtualClock()
    rl = RateLimiter({MUTATING: RateLimit(1, 1)}, max_buckets=2)
    rl.admit("idle", MUTATING, clock.now())
    clock.advance(10)  # "idle" is full again
    rl.admit("busy", MUTATING, clock.now())
    rl.admit("new", MUTATING, clock.now())  # over max: "idle" goes, "busy" keeps its debt
    assert rl.admit("busy", MUTATING, clock.now()) > 0


@settings(max_examples=200, deadline=None)
@given(
    qps=st.floats(0.1, 1000),
    burst=st.floats(0, 100),
    gaps=st.lists(st.floats(0, 2), min_size=1, max_size=200),
)
def test_admitted_calls_never_exceed_burst_plus_qps_times_elapsed(qps, burst, gaps):
    clock = VirtualClock()
    limit = RateLimit(qps, burst)
    bucket = TokenBucket(limit, limit.capacity, clock.now())
    start, admitted = clock.now(), 0
    for gap in gaps:
        clock.advance(gap)
        wait = bucket.take(clock.now())
        assert wait >= 0
        admitted += wait == 0.0
    assert admitted <= limit.capacity + qps * (clock.now() - start) + 1e-6


def test_stream_counter_caps_each_key_and_frees_on_close():
    streams = StreamCounter(max_per_key=2)
    assert streams.open("a") and streams.open("a")
    assert not streams.open("a")
    assert streams.count("a") == 2  # the refused one is not counted
    assert streams.open("b")
    streams.close("a")
    assert streams.open("a")
    streams.close("a"), streams.close("a")
    assert streams.count("a") == 0


def test_stream_counter_zero_is_no_cap():
    streams = StreamCounter(max_per_key=0)
    assert all(streams.open("a") for _ in range(10_000))
