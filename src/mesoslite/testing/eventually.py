"""Polling assertions: wait for a condition instead of sleeping for a guessed time."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar, overload

T = TypeVar("T")

DEFAULT_TIMEOUT_S = 10.0
DEFAULT_INTERVAL_S = 0.05


def _give_up(
    pred: Callable[..., object], timeout_s: float, last: object, error: BaseException | None,
    message: str,
) -> AssertionError:
    what = message or getattr(pred, "__qualname__", repr(pred))
    if error is not None:
        return AssertionError(f"not true within {timeout_s:g}s: {what}: {error}")
    return AssertionError(f"not true within {timeout_s:g}s: {what} (last value {last!r})")


def assert_eventually(
    pred: Callable[[], T],
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    interval_s: float = DEFAULT_INTERVAL_S,
    message: str = "",
    retry_on: tuple[type[BaseException], ...] = (AssertionError,),
) -> T:
    """Call `pred` until it returns a true value, and return that value.

    Args:
        pred: the condition; it may also `assert` inside, and is retried while it raises one
            of `retry_on`.
        timeout_s: how long to keep trying.
        interval_s: the pause between tries.
        message: what the condition means, for the failure.
        retry_on: exceptions that mean "not yet"; any other propagates at once.

    Raises:
        AssertionError: the condition did not hold within `timeout_s`.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        error: BaseException | None = None
        value: object = None
        try:
            value = pred()
            if value:
                return value
        except retry_on as e:
            error = e
        if time.monotonic() >= deadline:
            raise _give_up(pred, timeout_s, value, error, message) from error
        time.sleep(interval_s)


@overload
async def assert_eventually_async(
    pred: Callable[[], Awaitable[T]],
    *,
    timeout_s: float = ...,
    interval_s: float = ...,
    message: str = ...,
    retry_on: tuple[type[BaseException], ...] = ...,
) -> T: ...


@overload
async def assert_eventually_async(
    pred: Callable[[], T],
    *,
    timeout_s: float = ...,
    interval_s: float = ...,
    message: str = ...,
    retry_on: tuple[type[BaseException], ...] = ...,
) -> T: ...


async def assert_eventually_async(
    pred: Callable[[], object],
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    interval_s: float = DEFAULT_INTERVAL_S,
    message: str = "",
    retry_on: tuple[type[BaseException], ...] = (AssertionError,),
) -> object:
    """`assert_eventually` for async tests: `pred` may be a plain function or a coroutine
    function, and the pauses let the event loop run."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        error: BaseException | None = None
        value: object = None
        try:
            value = pred()
            if inspect.isawaitable(value):
                value = await value
            if value:
                return value
        except retry_on as e:
            error = e
        if loop.time() >= deadline:
            raise _give_up(pred, timeout_s, value, error, message) from error
        await asyncio.sleep(interval_s)
