"""The agent's HTTP port: `/metrics` (Prometheus text) and `/health`.

Gauges are read from the agent's state when scraped. Status updates are counted as the
agent makes them: `AgentHttpServer` wraps the one place every update passes through
(`StatusUpdateManager.add`), so the agent's core carries no metrics code.
"""

from __future__ import annotations

import logging
import socket
import ssl
from collections import Counter as Tally
from collections.abc import Callable, Iterator
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from mesoslite.errors import ConfigError
from mesoslite.model import TaskStatus

logger = logging.getLogger(__name__)
PREFIX = "mesoslite_agent_"


class AgentCollector(Collector):
    def __init__(self, actor: Any) -> None:
        self.actor = actor

    def collect(self) -> Iterator[Any]:
        a = self.actor

        def gauge(name: str, doc: str, labels: list[str], values: dict[Any, float]) -> Any:
            g = GaugeMetricFamily(PREFIX + name, doc, labels=labels)
            for key, value in sorted(values.items()):
                g.add_metric(list(key), value)
            return g

        yield gauge("connected", "1 while registered with a master", [],
                    {(): float(a.connected)})
        tasks = Tally(t.state.label for t in a.tasks.values())
        yield gauge("tasks", "tasks the agent holds, by state", ["state"],
                    {(k,): v for k, v in tasks.items()})
        yield gauge("status_updates_pending", "updates not acknowledged yet", [],
                    {(): float(a.updates.pending_count)})
        total, free = a.total, a.free
        yield gauge("resources_total", "scalar resources offered", ["resource"],
                    {(n,): total.scalar(n) for n in total.scalars})
        yield gauge("resources_free", "scalar resources not used by tasks", ["resource"],
                    {(n,): free.scalar(n) for n in free.scalars})


class AgentHttpServer:
    """Serves `/metrics` and `/health` for `actor` (an `AgentActor`) on `host:port`."""

    def __init__(
        self, actor: Any, host: str, port: int, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self.actor, self.host, self.port = actor, host, port
        self.ssl_context = ssl_context  # HTTPS when set (`security.tls.server_ssl_context`)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(AgentCollector(actor))
        self.updates = Counter(
            PREFIX + "status_updates", "status updates made, by task state", ["state"],
            registry=self.registry,
        )
        updates = actor.updates
        add: Callable[[TaskStatus, float], TaskStatus] = updates.add

        def counted_add(status: TaskStatus, now: float) -> TaskStatus:
            self.updates.labels(status.state.label).inc()
            return add(status, now)

        updates.add = counted_add
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/health", self._health)
        self._runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=0.5
        )

    async def start(self) -> None:
        try:
            sock = socket.create_server((self.host, self.port))
        except OSError as e:
            raise ConfigError(
                f"--http-port: cannot listen on {self.host}:{self.port}: {e.strerror or e}"
            ) from None
        self.port = sock.getsockname()[1]
        await self._runner.setup()
        await web.SockSite(self._runner, sock, ssl_context=self.ssl_context).start()
        scheme = "https" if self.ssl_context is not None else "http"
        logger.info("http listening url=%s://%s:%d/metrics", scheme, self.host, self.port)

    async def stop(self) -> None:
        await self._runner.cleanup()

    async def _metrics(self, request: web.Request) -> web.StreamResponse:
        body = generate_latest(self.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _health(self, request: web.Request) -> web.StreamResponse:
        if self.actor.connected:
            return web.Response(text="registered\n")
        return web.Response(status=503, text="not registered with a master\n")
