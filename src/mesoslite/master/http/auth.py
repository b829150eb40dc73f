"""HTTP Basic authentication and the read ACLs for the master's HTTP endpoints (#14).

With `--credentials`, every request but `/health` (a probe: load balancers must reach it)
needs `Authorization: Basic base64(principal:secret)` with the same principals and secrets
as gRPC, else 401 with a `WWW-Authenticate` challenge (a browser then asks for them).
`/tasks/{task_id}/{name}` is `read_files` of the task's owner; everything else (`/`,
`/state`, `/events`, `/metrics`, static files) is `read_state`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from mesoslite.ids import FrameworkId, TaskId
from mesoslite.security.auth_client import parse_basic
from mesoslite.security.authz import Authorizer
from mesoslite.security.authz_master import framework_owner
from mesoslite.security.credentials import Credentials

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
OPEN_PATHS = frozenset({"/health"})
CHALLENGE = {"WWW-Authenticate": 'Basic realm="mesoslite", charset="UTF-8"'}


def _unauthorized(text: str) -> web.Response:
    return web.Response(status=401, text=text + "\n", headers=CHALLENGE)


async def principal_of(request: web.Request, credentials: Credentials) -> str | web.Response:
    """The verified principal of `request`, or the 401 response to send."""
    header = request.headers.get("Authorization")
    if header is None:
        return _unauthorized("authentication required: this master has --credentials")
    parsed = parse_basic(header)
    if parsed is None:
        return _unauthorized("malformed Authorization header: expected Basic credentials")
    principal, secret = parsed
    ok = credentials.verified_fast(principal, secret)
    if ok is None:  # scrypt: tens of ms, kept off the loop
        ok = await asyncio.to_thread(credentials.verify, principal, secret)
    if not ok:
        return _unauthorized(f"invalid credentials for principal {principal[:64]!r}")
    return principal


def auth_middleware(credentials: Credentials | None, authz: Authorizer, state_of: Any) -> Any:
    """The middleware; `state_of()` is the master's state (for the owner of a task)."""

    @web.middleware
    async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in OPEN_PATHS:
            return await handler(request)
        principal: str | None = None
        if credentials is not None:
            got = await principal_of(request, credentials)
            if isinstance(got, web.Response):
                return got
            principal = got
        task_id = request.match_info.get("task_id")
        if task_id is not None and (principal is not None or authz.acls.rules):
            fid = FrameworkId(request.query.get("framework_id", "")) or None
            record = state_of().locate_task(TaskId(task_id), fid)
            owner = framework_owner(state_of(), record.framework_id) or ""
            authz.check(principal, "read_files", owner)
        elif task_id is None:
            authz.check(principal, "read_state", "")
        return await handler(request)

    return authenticate
