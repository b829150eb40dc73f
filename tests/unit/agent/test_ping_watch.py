"""The master link's ping watchdog runs on the agent's clock: tested here in virtual time."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from mesoslite.agent.master_link import MasterLink, SessionEnded
from mesoslite.clock import VirtualClock


@dataclass
class ClockOnly:
    """The watchdog reads only the actor's clock (the rest is for building the link)."""

    clock: VirtualClock = field(default_factory=VirtualClock)
    work_dir: Path = Path("/nonexistent")
    tasks: dict[object, object] = field(default_factory=dict)


async def step(clock: VirtualClock, seconds: float) -> None:
    clock.advance(seconds)
    for _ in range(3):  # let the woken watchdog run
        await asyncio.sleep(0)


async def test_the_master_is_gone_after_missed_pings_in_virtual_time() -> None:
    actor = ClockOnly()
    clock = actor.clock
    link = MasterLink("127.0.0.1:1", actor, backoff_max_s=1.0)  # type: ignore[arg-type]
    link._last_ping = clock.now()
    watch = asyncio.create_task(link._watch(1.0))
    await step(clock, 0)
    for _ in range(2):
        await step(clock, 1.0)
    link._last_ping = clock.now()  # a ping at t=2
    for _ in range(3):
        await step(clock, 1.0)
    assert not watch.done()  # t=5: 3 s since the ping, not more
    await step(clock, 1.0)
    assert watch.done()
    with pytest.raises(SessionEnded, match="no ping from the master in 3s"):
        watch.result()
    await link.close()
