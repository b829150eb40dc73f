"""Calling the `Scheduler`'s callbacks: which names are callbacks, what a callback that
raises does to the driver (`on_callback_error`), and the driver's checks of its options."""

from __future__ import annotations

import difflib
import inspect
import logging
import math
import warnings
from typing import Any

from mesoslite.errors import (
    DeadlineExceededError,
    MesosliteError,
    NotLeaderError,
    UnavailableError,
    UnknownOfferError,
    ValidationError,
)
from mesoslite.scheduler_api.events import KNOWN_CALLBACKS
from mesoslite.security.retry_after import RateLimitedError

logger = logging.getLogger(__name__)

# `on_callback_error`: stop the driver and raise from `join()`/`run()`, or log and go on.
RAISE = "raise"
LOG = "log"
CALLBACK_ERROR_POLICIES = (RAISE, LOG)
# A call failing because the master changed (a failover, a standby) or an offer went away
# (rescinded, timed out, used) is the cluster's weather, not a bug in the scheduler: under
# either policy it is logged and the driver goes on (it re-subscribes; offers come again).
# A call still over the master's rate limit after the driver's waits (`retry_after`) is too.
TRANSIENT_ERRORS = (
    NotLeaderError, UnavailableError, DeadlineExceededError, UnknownOfferError, RateLimitedError
)


def unknown_callbacks(scheduler: object) -> list[str]:
    """The `on_…` methods of `scheduler` that the driver never calls, each with the known
    callback it is closest to (`"on_offer (did you mean on_offers?)"`)."""
    out = []
    for name in sorted(dir(scheduler)):
        if not name.startswith("on_") or name in KNOWN_CALLBACKS:
            continue
        if not callable(getattr(scheduler, name, None)):
            continue
        close = difflib.get_close_matches(name, KNOWN_CALLBACKS, n=1)
        out.append(f"{name} (did you mean {close[0]}?)" if close else name)
    return out


def check_callbacks(scheduler: object, *, strict: bool) -> None:
    """Warn (or, if `strict`, raise `ValidationError`) when `scheduler` defines `on_…`
    methods the driver does not know: a misspelled callback is otherwise never called."""
    unknown = unknown_callbacks(scheduler)
    if not unknown:
        return
    message = (
        f"{type(scheduler).__name__} defines {', '.join(unknown)}, which the driver never "
        f"calls; the callbacks are {', '.join(KNOWN_CALLBACKS)}"
    )
    if strict:
        raise ValidationError("scheduler", message)
    # stacklevel 3: the line that made the driver (check_callbacks <- __init__ <- caller).
    warnings.warn(message, UserWarning, stacklevel=3)


def check_options(connect_timeout_s: float | None, on_callback_error: str) -> None:
    """Raise `ValidationError` naming a bad driver option."""
    number = isinstance(connect_timeout_s, int | float) and not isinstance(connect_timeout_s, bool)
    if connect_timeout_s is not None and not (number and connect_timeout_s > 0):
        raise ValidationError(
            "connect_timeout_s", f"must be > 0, or None to retry forever, got {connect_timeout_s!r}"
        )
    if on_callback_error not in CALLBACK_ERROR_POLICIES:
        raise ValidationError(
            "on_callback_error", f"must be 'raise' or 'log', got {on_callback_error!r}"
        )


def first_timeout(connect_timeout_s: float | None) -> float | None:
    """The first connection's deadline in seconds, None for none (`math.inf` too)."""
    if connect_timeout_s is None or math.isinf(connect_timeout_s):
        return None
    return connect_timeout_s


async def invoke(
    scheduler: object, driver: Any, name: str, args: tuple[Any, ...], *, log_only: bool
) -> Exception | None:
    """Call `scheduler.<name>(driver, *args)` if defined, awaiting a coroutine.

    Returns the exception it raised if the driver must stop on it (`log_only` False, and not
    one of `TRANSIENT_ERRORS`), with a note naming the callback; otherwise logs it and
    returns None.
    """
    fn = getattr(scheduler, name, None)
    if fn is None:
        return None
    try:
        result = fn(driver, *args)
        if inspect.isawaitable(result):
            await result
    except Exception as e:
        if not log_only and not isinstance(e, TRANSIENT_ERRORS):
            e.add_note(f"raised by the scheduler callback {name}: the driver stopped")
            return e
        if isinstance(e, MesosliteError):
            logger.warning("%s raised: %s", name, e)
        else:
            logger.exception("scheduler callback %s failed", name)
    return None
