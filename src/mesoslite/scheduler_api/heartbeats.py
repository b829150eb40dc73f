"""`HeartbeatWatch`: notices a master that has gone silent on the event stream (missed
heartbeats), even when TCP says the connection is fine, so the driver re-subscribes."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

logger = logging.getLogger(__name__)

# Missing this many heartbeats in a row means the master is gone, even if TCP says otherwise.
MISSED_HEARTBEATS = 3


class HeartbeatWatch:
    """When the stream last spoke, and the heartbeat interval the master promised."""

    def __init__(self) -> None:
        self.interval_s = 0.0  # 0 until SUBSCRIBED says: no watching before that
        self.last_event = 0.0
        # Set while the driver's callbacks run: time spent in them is not the master's silence.
        self.dispatching = False

    def heard(self) -> None:
        self.last_event = time.monotonic()

    async def watch(self, call: Any, master: str) -> None:
        """Cancel `call` once the master has been silent for `MISSED_HEARTBEATS` intervals
        (plus a second); runs until then or until cancelled."""
        while True:
            await asyncio.sleep(max(self.interval_s, 0.5))
            silent_s = time.monotonic() - self.last_event
            if (
                self.interval_s
                and not self.dispatching
                and silent_s > MISSED_HEARTBEATS * self.interval_s + 1.0
            ):
                logger.warning("no heartbeat from %s: re-subscribing", master)
                call.cancel()
                return
