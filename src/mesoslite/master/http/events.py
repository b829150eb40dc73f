"""`GET /events`: the web UI's live view, as server-sent events.

Each event is `event: state` with the cluster document (`/state`'s shape, with only the
`UI_ACTIVE_TASKS` most recently updated running tasks and the newest `UI_COMPLETED_TASKS`
ended ones; `task_counts` counts them all). It is sent at once, then at most every
`interval_s` (on the master's clock) when something changed (`MetricsObserver.changes`
moved), and at least every `KEEPALIVE_EVERY` intervals. The cost of a connected page is
one document per interval while the cluster is busy, and nothing while it is idle.
"""

from __future__ import annotations

import json

from aiohttp import web

from mesoslite.clock import clock_sleep
from mesoslite.master.http.metrics import MetricsObserver
from mesoslite.master.http.state_json import StateSource, cluster_json

SSE_INTERVAL_S = 1.0
KEEPALIVE_EVERY = 5
UI_ACTIVE_TASKS = 100
UI_COMPLETED_TASKS = 50


async def state_events(
    request: web.Request,
    src: StateSource,
    observer: MetricsObserver,
    interval_s: float = SSE_INTERVAL_S,
) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    await response.prepare(request)
    sent_at_change, intervals = -1, 0  # the intervals since the last event
    try:
        while True:
            if observer.changes != sent_at_change or intervals >= KEEPALIVE_EVERY:
                sent_at_change, intervals = observer.changes, 0
                doc = cluster_json(
                    src, completed_limit=UI_COMPLETED_TASKS, active_limit=UI_ACTIVE_TASKS
                )
                await response.write(f"event: state\ndata: {json.dumps(doc)}\n\n".encode())
            await clock_sleep(src.actor.clock, interval_s)
            intervals += 1
    except ConnectionError:
        pass  # the page went away
    return response
