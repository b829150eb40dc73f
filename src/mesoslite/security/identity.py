"""Who made a call: the one question every check (authorization, rate limits) asks.

`caller_of` is the contract between the transport that authenticates a call and the checks
that act on who made it. The principal is the one `security/auth_server.AuthGuard` verified
for this call (a secret, with `--credentials`), else the common name of a verified client
certificate (mutual TLS), else None: then only the peer's address is known.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass
from typing import Any

# Set by `AuthGuard` for the duration of one call's handler (each call runs in its own task).
_principal: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "mesoslite_principal", default=None
)


def bind_principal(principal: str | None) -> None:
    """Record the verified principal of the call being handled (the auth interceptor's)."""
    _principal.set(principal)


def certificate_principal(context: Any) -> str | None:
    """The common name of the caller's verified client certificate, if mutual TLS gave one."""
    try:
        auth = context.auth_context() or {}
    except Exception:  # noqa: BLE001 - a context without one (tests, probes, plain text)
        return None
    names = auth.get("x509_common_name") or []
    if not names:
        return None
    name = names[0]
    return name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name)


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
    principal = _principal.get()
    if principal is None:
        principal = certificate_principal(context)
    return Caller(principal=principal, peer=peer)
