"""`HACluster` lives in `mesoslite.local.ha`; this name is kept for tests that import it here."""

from mesoslite.local.ha import HACluster

__all__ = ["HACluster"]
