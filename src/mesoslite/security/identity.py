"""Who made a call: the one question every check (authorization, rate limits) asks.

`caller_of` is the contract between the transport that authenticates a call and the checks
that act on who made it. Until authentication is on, the principal is None and only the
peer's address is known.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Caller:
    """principal: the authenticated principal, None when authentication is off.
    peer: the peer's address as gRPC gives it (`ipv4:127.0.0.1:40000`), or HOST for HTTP.
    """

    principal: str | None
    peer: str

    @property
    def key(self) -> str:
        """What per-caller limits count against: the principal, else the peer's host."""
        if self.principal is not None:
            return f"principal:{self.principal}"
        host = self.peer.rsplit(":", 1)[0] if self.peer.count(":") > 1 else self.peer
        return f"peer:{host}"


def caller_of(context: Any) -> Caller:
    """The caller of the gRPC call whose servicer context is `context`."""
    peer = ""
    try:
        peer = str(context.peer() or "")
    except Exception:  # noqa: BLE001 - a context without a peer (tests, probes)
        peer = ""
    return Caller(principal=None, peer=peer)
