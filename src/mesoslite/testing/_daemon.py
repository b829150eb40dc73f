"""Kept for imports written before `mesoslite.local`: `Daemon` lives in `mesoslite.local.daemon`."""

from mesoslite.local.daemon import DEFAULT_STOP_GRACE_S, Daemon

__all__ = ["DEFAULT_STOP_GRACE_S", "Daemon"]
