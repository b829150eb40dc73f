"""The client side of rate limits: read a refusal's `retry-after-ms`, and how often to wait.

The master's `AdmissionGuard` refuses a call over a caller's rate limit with
RESOURCE_EXHAUSTED and trailing metadata `retry-after-ms`. `rpc.error_from_rpc` turns such
a refusal into `RateLimitedError`; the CLI (`cli/_client.py`) and the SDK driver wait that
long and try again, at most `MAX_RATE_LIMITED_RETRIES` times.
"""

from __future__ import annotations

from typing import Any

from mesoslite.errors import ResourceExhaustedError

RETRY_AFTER_KEY = "retry-after-ms"
# A client waits at most this often, and at most this long each time, before it gives up
# and shows the refusal: a limit far below what the client needs is the operator's to fix.
MAX_RATE_LIMITED_RETRIES = 5
MAX_RETRY_AFTER_S = 10.0


class RateLimitedError(ResourceExhaustedError):
    """A call refused by the master's rate limit; `retry_after_s` says when to try again."""

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


def retry_after_s(exc: Any) -> float | None:
    """The wait a failed call's trailing metadata asks for (capped), None if it asks none."""
    try:
        metadata = exc.trailing_metadata() or ()
    except Exception:  # noqa: BLE001 - an RpcError without metadata (e.g. a local failure)
        return None
    for key, value in metadata:
        if key == RETRY_AFTER_KEY:
            try:
                ms = float(value)
            except (TypeError, ValueError):
                return None
            return min(MAX_RETRY_AFTER_S, max(0.0, ms / 1000))
    return None


def rate_limited(err: Exception, retries_so_far: int) -> float | None:
    """The seconds to wait before trying `err`'s call again, None to give up."""
    if isinstance(err, RateLimitedError) and retries_so_far < MAX_RATE_LIMITED_RETRIES:
        return err.retry_after_s
    return None
