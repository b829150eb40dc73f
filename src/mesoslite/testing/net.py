"""Network helpers for tests (`free_port` lives in `mesoslite.local.daemon`)."""

from mesoslite.local.daemon import free_port

__all__ = ["free_port"]
