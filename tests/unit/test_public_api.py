"""The SDK's public surface is pinned: adding or removing a name is a deliberate change."""

from __future__ import annotations

import mesoslite.scheduler_api as api

EXPECTED = {
    # The driver and the callbacks
    "DEFAULT_MASTER", "Scheduler", "SchedulerDriver",
    # Values
    "AgentId", "CommandSpec", "Demand", "FrameworkId", "FrameworkInfo", "HealthCheckSpec",
    "MasterInfo", "Offer",
    "OfferId", "Resources", "TERMINAL_STATES", "TaskId", "TaskSpec", "TaskState", "TaskStatus",
    "format_resources", "parse_resources",
    # Errors
    "AlreadyExistsError", "ConflictError", "MesosliteError", "NotFoundError", "UnavailableError",
    "UnknownOfferError", "ValidationError",
}


def test_scheduler_api_exports_exactly_the_pinned_names() -> None:
    assert set(api.__all__) == EXPECTED
    assert len(api.__all__) == len(EXPECTED), "a name is listed twice in __all__"


def test_every_exported_name_exists() -> None:
    for name in api.__all__:
        assert hasattr(api, name), name
