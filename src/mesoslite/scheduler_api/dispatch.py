"""What an event of the master's stream calls on the `Scheduler`: the events that only
carry data to a callback (OFFERS, RESCIND, MESSAGE, FAILURE, PREEMPTION) decoded into the callback's
name and arguments. The driver handles the events that change its own state (SUBSCRIBED,
UPDATE, ERROR, HEARTBEAT)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from mesoslite import convert as c
from mesoslite._proto.v1 import scheduler_pb2
from mesoslite.errors import ValidationError
from mesoslite.ids import AgentId, OfferId, TaskId

logger = logging.getLogger(__name__)

Ev = scheduler_pb2.Event


@dataclass(frozen=True, slots=True)
class Callback:
    name: str
    args: tuple[Any, ...]


def plain_callback(event: scheduler_pb2.Event) -> Callback | None:
    """The callback an OFFERS, RESCIND, MESSAGE or FAILURE event calls; None for other
    events, and for offers the driver cannot read (logged)."""
    kind = event.type
    if kind == Ev.OFFERS:
        try:
            offers = [c.offer_from_pb(o) for o in event.offers.offers]
        except ValidationError as e:
            logger.error("malformed offers from the master: %s", e)
            return None
        return Callback("on_offers", (offers,))
    if kind == Ev.RESCIND:
        return Callback("on_rescinded", (OfferId(event.rescind.offer_id),))
    if kind == Ev.MESSAGE:
        return Callback("on_message", (AgentId(event.message.agent_id), event.message.data))
    if kind == Ev.FAILURE:
        return Callback("on_failure", (AgentId(event.failure.agent_id), event.failure.message))
    if kind == Ev.PREEMPTION:
        p = event.preemption
        return Callback("on_preemption", ([TaskId(t) for t in p.task_ids], p.deadline))
    return None
