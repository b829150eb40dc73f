"""`HealthState`: what a task's health check results mean (pure; `health.py` runs the checks)."""

from __future__ import annotations

from dataclasses import dataclass

from mesoslite.model import HealthCheckSpec


@dataclass(slots=True)
class HealthState:
    """The meaning of a task's check results so far (Mesos's rules).

    Failures within `grace_period_s` of the task's start do not count until one check has
    passed; `consecutive_failures` counted failures in a row mean the task must be killed.
    """

    spec: HealthCheckSpec
    started_at: float
    healthy: bool | None = None
    failures: int = 0
    ever_passed: bool = False

    def record(self, ok: bool, now: float) -> tuple[bool, bool]:
        """Apply one result; returns (health changed and should be reported, kill now)."""
        if ok:
            self.failures = 0
            self.ever_passed = True
            changed = self.healthy is not True
            self.healthy = True
            return changed, False
        if not self.ever_passed and now - self.started_at < self.spec.grace_period_s:
            return False, False
        self.failures += 1
        changed = self.healthy is not False
        self.healthy = False
        return changed, self.failures >= self.spec.consecutive_failures
