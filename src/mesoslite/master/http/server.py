"""`MasterHttpServer`: the master's HTTP endpoints (aiohttp, on the master's own loop).

aiohttp rather than a server of our own: HTTP/1.1 parsing, keep-alive, streaming bodies
(server-sent events, followed files) and 404/405 handling are done right there, and it
runs on the loop that owns the master's state, so handlers read state without locks.

Routes: `/` (web UI), `/static/*`, `/state`, `/health`, `/metrics`, `/events`,
`/tasks/{task_id}/{stdout|stderr}`, `/run` (`http/run.py`), `/jobs/submit` and `/jobs/watch`
(`http/jobs.py`). See docs/http.md.
"""

from __future__ import annotations

import logging
import socket
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from mesoslite.errors import ConfigError, MesosliteError, ValidationError
from mesoslite.master.http.events import state_events
from mesoslite.master.http.files import task_file
from mesoslite.master.http.jobs import add_job_routes
from mesoslite.master.http.metrics import new_metrics
from mesoslite.master.http.run import add_run_routes
from mesoslite.master.http.state_json import StateSource, cluster_json

logger = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
# What a `MesosliteError`'s gRPC status is over HTTP.
HTTP_STATUS = {
    "INVALID_ARGUMENT": 400, "PERMISSION_DENIED": 403, "NOT_FOUND": 404,
    "FAILED_PRECONDITION": 409, "ALREADY_EXISTS": 409, "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Our errors as plain text with their status: what is wrong, never a traceback."""
    try:
        return await handler(request)
    except MesosliteError as e:
        status = HTTP_STATUS.get(e.status, 500)
        return web.Response(status=status, text=e.message + "\n")


def listen(host: str, port: int) -> socket.socket:
    """A listening socket (so that the port picked for 0 is known without aiohttp's insides).

    Raises:
        ConfigError: naming `--http-port` when the address is taken or not available.
    """
    try:
        return socket.create_server((host, port))
    except OSError as e:
        raise ConfigError(
            f"--http-port: cannot listen on {host}:{port}: {e.strerror or e}"
        ) from None


class MasterHttpServer:
    """Started after the gRPC server, stopped before it (`build.MasterServers`)."""

    def __init__(
        self, src: StateSource, host: str, port: int, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self.src, self.host, self.port = src, host, port
        self.ssl_context = ssl_context  # HTTPS when set (`security.tls.server_ssl_context`)
        self.registry, self.observer = new_metrics(src)
        src.actor.observer = self.observer
        app = self._app = web.Application(middlewares=[_errors])
        app.router.add_get("/", self._index)
        app.router.add_static("/static/", STATIC)
        app.router.add_get("/state", self._state)
        app.router.add_get("/health", self._health)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/events", self._events)
        app.router.add_get("/tasks/{task_id}/{name}", self._task_file)
        add_run_routes(app, src)  # `mesoslite run`'s fast path (master/http/run.py)
        add_job_routes(app, src)  # `mesoslite job submit --wait`'s (master/http/jobs.py)
        self._runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=0.5
        )

    def use_auth(self, credentials: Any, authz: Any) -> None:
        """Authenticate requests (`--credentials`) and check read ACLs (#14; `http/auth.py`)."""
        from mesoslite.master.http.auth import auth_middleware

        state_of = lambda: self.src.actor.state  # noqa: E731 - read at each request
        self._app.middlewares.append(auth_middleware(credentials, authz, state_of))
        if credentials is not None:
            # /run does not make the scheduler API's register_framework and run_as checks:
            # with authentication on it refuses (403), and the client takes the gRPC path.
            from mesoslite.master.http.run import FAST_RUN_OFF

            self._app[FAST_RUN_OFF] = True
        # /jobs/* makes none of the Jobs service's checks (submit_job, run_as, owners): it
        # refuses while any could apply (ACLs are read again on SIGHUP, hence a function).
        from mesoslite.master.http.jobs import FAST_JOBS_OFF

        self._app[FAST_JOBS_OFF] = lambda: credentials is not None or bool(authz.acls.rules)

    async def start(self) -> None:
        """Listen; with port 0 the port picked is in `self.port` (and logged)."""
        sock = listen(self.host, self.port)
        self.port = sock.getsockname()[1]
        await self._runner.setup()
        await web.SockSite(self._runner, sock, ssl_context=self.ssl_context).start()
        self.src.http_address = f"{self.src.info.address.rsplit(':', 1)[0]}:{self.port}"
        self.src.actor.http_address = self.src.http_address  # `GetMaster` tells it
        scheme = "https" if self.ssl_context is not None else "http"
        logger.info("http listening url=%s://%s:%d/", scheme, self.host, self.port)

    async def stop(self) -> None:
        await self._runner.cleanup()

    async def _index(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC / "index.html")

    async def _state(self, request: web.Request) -> web.StreamResponse:
        text = request.query.get("completed", "")
        if text and not text.isdigit():
            raise ValidationError("completed", f"must be a whole number >= 0, got {text!r}")
        doc = cluster_json(self.src, completed_limit=int(text) if text else None)
        return web.json_response(doc)

    async def _health(self, request: web.Request) -> web.StreamResponse:
        lead = self.src.leadership
        if lead.leading:
            return web.Response(text="leading\n")
        leader = lead.leader_address_of()
        where = f"; leader is {leader}" if leader and leader != self.src.info.address else ""
        return web.Response(status=503, text=f"not leading ({lead.reason}){where}\n")

    async def _events(self, request: web.Request) -> web.StreamResponse:
        return await state_events(request, self.src, self.observer)

    async def _task_file(self, request: web.Request) -> web.StreamResponse:
        if not self.src.leadership.leading:
            raise self.src.leadership.error()  # 503, naming the leader
        return await task_file(request, self.src.actor)

    async def _metrics(self, request: web.Request) -> web.StreamResponse:
        body = generate_latest(self.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
