"""ZooKeeper calls that cannot block past a deadline (kazoo's async calls, waited on).

kazoo's blocking calls wait for an answer as long as the connection is being retried, so a
leader whose ZooKeeper went away could sit in a registry call for minutes (issue 11 item 5).
Here every call is made with kazoo's `*_async` variant and waited for until the deadline
of the registry operation it belongs to; past it, or on any connection error, the call
raises `RegistryError`. A request may still reach ZooKeeper after its wait gave up: a
write that timed out is therefore "in doubt", which the store resolves before its next one.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from mesoslite.errors import RegistryError


class BoundedCalls:
    """Waits on a kazoo client's async results, each call against an operation's deadline.

    Args:
        client: a started `KazooClient`.
        timeout_s: how long one registry operation (all its calls together) may take.
    """

    def __init__(self, client: Any, timeout_s: float) -> None:
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        self.client = client
        self.timeout_s = timeout_s

    def deadline(self, factor: float = 1.0) -> float:
        return time.monotonic() + self.timeout_s * factor

    def wait(
        self, result: Any, deadline: float, what: str,
        passthrough: tuple[type[BaseException], ...] = (),
    ) -> Any:
        """The value of one async result; exceptions in `passthrough` are raised as they are."""
        from kazoo.exceptions import KazooException

        remaining = max(0.0, deadline - time.monotonic())
        try:
            return result.get(timeout=remaining)
        except passthrough:
            raise
        except self.client.handler.timeout_exception:
            raise RegistryError(
                f"zookeeper did not answer {what} within {self.timeout_s:g}s"
            ) from None
        except (KazooException, OSError) as e:
            raise RegistryError(f"zookeeper {what} failed: {type(e).__name__}: {e}") from None

    def wait_all(
        self, results: Sequence[Any], deadline: float, what: str,
        passthrough: tuple[type[BaseException], ...] = (),
    ) -> list[Any]:
        """Values of several results sent at once (pipelined); a passthrough error is
        returned in place of its value."""
        out: list[Any] = []
        for r in results:
            try:
                out.append(self.wait(r, deadline, what, passthrough))
            except passthrough as e:
                out.append(e)
        return out

    def get(self, path: str, deadline: float) -> tuple[bytes, Any]:
        data, stat = self.wait(self.client.get_async(path), deadline, f"get {path}")
        return bytes(data or b""), stat

    def children(self, path: str, deadline: float) -> list[str]:
        return list(self.wait(self.client.get_children_async(path), deadline, f"ls {path}"))

    def exists(self, path: str, deadline: float) -> bool:
        return self.wait(self.client.exists_async(path), deadline, f"exists {path}") is not None

    def ensure(self, paths: Sequence[str], deadline: float) -> None:
        results = [self.client.ensure_path_async(p) for p in paths]
        self.wait_all(results, deadline, "ensure the registry's paths")

    def commit(self, tx: Any, deadline: float, what: str) -> list[Any]:
        return list(self.wait(tx.commit_async(), deadline, what))
