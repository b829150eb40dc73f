"""Sandbox GC's age rule (moved from tests/integration/test_agent_actor.py: it needs no process)."""

from __future__ import annotations

import pytest

from mesoslite.agent.gc import effective_age_s


def test_a_fuller_disk_makes_sandboxes_age_faster() -> None:
    assert effective_age_s(1000, 0.0) == 900
    assert effective_age_s(1000, 0.5) == pytest.approx(400)
    assert effective_age_s(1000, 0.95) == 0
