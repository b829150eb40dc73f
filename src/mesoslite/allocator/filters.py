"""Offer filters (`refuse_seconds`): when an agent may not be offered to a framework.

One definition, shared by `HierarchicalAllocator` and the conformance checks, so that both
agree to the millisecond on when a filter ends.
"""

from __future__ import annotations

from collections.abc import Sequence

from mesoslite.allocator.base import FrameworkView
from mesoslite.ids import AgentId


def is_filtered(framework: FrameworkView, agent_id: AgentId, now: float) -> bool:
    """True while `now` is before the filter's expiry; at the expiry time it is offered again."""
    until = framework.filters.get(agent_id)
    return until is not None and until > now


def filtered_until(
    framework: FrameworkView, agent_ids: Sequence[AgentId], now: float
) -> float | None:
    """If `framework` is filtered on every one of the distinct `agent_ids` at `now`, the
    earliest time one of them becomes available to it again; otherwise (or with no agents)
    None."""
    if len(framework.filters) < len(agent_ids):
        return None  # cannot cover them all (`agent_ids` are distinct); the common case
    earliest: float | None = None
    for agent_id in agent_ids:
        until = framework.filters.get(agent_id)
        if until is None or until <= now:
            return None
        if earliest is None or until < earliest:
            earliest = until
    return earliest


def filter_until(now: float, refuse_seconds: float, batch_s: float) -> float:
    """When a filter made at `now` for `refuse_seconds` ends: not before the allocation
    pass the decline asks for has run.

    That pass comes `batch_s` later (the master coalesces changes over its batch), and a
    filter ending exactly at a pass's `now` no longer applies in it (`is_filtered`), so a
    filter lasts at least two batches. Mesos likewise keeps a filter until the next
    allocation has run (MESOS-4302); without it, a decline for less than the batch was
    offered the same agent again in the pass it set off (#16).
    """
    return now + max(refuse_seconds, 2 * batch_s)
