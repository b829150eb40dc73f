"""`assert_eventually` and its async twin: retry until true, then fail with the reason."""

from __future__ import annotations

import itertools

import pytest

from mesoslite.testing import assert_eventually, assert_eventually_async


def test_returns_the_first_true_value() -> None:
    counter = itertools.count()
    assert assert_eventually(lambda: next(counter) >= 3 and "ok", interval_s=0) == "ok"


def test_retries_failed_asserts_and_reports_the_last_one() -> None:
    def never() -> bool:
        raise AssertionError("still 3 agents")

    with pytest.raises(AssertionError, match="not true within 0.05s: .*still 3 agents"):
        assert_eventually(never, timeout_s=0.05, interval_s=0.01)


def test_a_false_value_is_reported_with_the_message() -> None:
    with pytest.raises(AssertionError, match=r"agents are active \(last value \[\]\)"):
        assert_eventually(lambda: [], timeout_s=0.02, interval_s=0.01,
                          message="agents are active")


def test_other_exceptions_propagate_at_once_unless_retried() -> None:
    calls = []

    def boom() -> bool:
        calls.append(1)
        raise KeyError("x")

    with pytest.raises(KeyError):
        assert_eventually(boom, timeout_s=5)
    assert len(calls) == 1
    counter = itertools.count()

    def flaky() -> bool:
        if next(counter) < 2:
            raise ConnectionError
        return True

    assert assert_eventually(flaky, retry_on=(ConnectionError,), interval_s=0)


async def test_the_async_twin_accepts_plain_and_coroutine_predicates() -> None:
    counter = itertools.count()
    assert await assert_eventually_async(lambda: next(counter) >= 2, interval_s=0)

    async def ready() -> str:
        return "yes"

    assert await assert_eventually_async(ready) == "yes"
    with pytest.raises(AssertionError, match="not true within"):
        await assert_eventually_async(lambda: False, timeout_s=0.02, interval_s=0.01)
