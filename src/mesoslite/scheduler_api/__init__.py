"""The Python SDK for mesoslite frameworks: implement `Scheduler`, run a `SchedulerDriver`.

A framework subscribes to the master, receives offers, launches tasks on them and follows
their status updates::

    from mesoslite.scheduler_api import (
        CommandSpec, FrameworkInfo, SchedulerDriver, TaskSpec, parse_resources,
    )

    class Hello:
        async def on_offers(self, driver, offers):
            task = TaskSpec("hello-1", CommandSpec.of_shell("echo hello"),
                            parse_resources("cpus:0.1;mem:32"))
            await driver.accept([offers[0].id], [task])

        async def on_update(self, driver, status):
            if status.state.terminal:
                await driver.stop()

    SchedulerDriver(Hello(), FrameworkInfo(name="hello")).run()
"""

from __future__ import annotations

# Errors
from mesoslite.errors import (
    AlreadyExistsError,
    ConflictError,
    MesosliteError,
    NotFoundError,
    UnavailableError,
    UnknownOfferError,
    ValidationError,
)

# Values
from mesoslite.ids import AgentId, FrameworkId, OfferId, TaskId
from mesoslite.model import (
    TERMINAL_STATES,
    CommandSpec,
    FrameworkInfo,
    HealthCheckSpec,
    MasterInfo,
    Offer,
    TaskSpec,
    TaskState,
    TaskStatus,
)
from mesoslite.resources import Resources, format_resources, parse_resources

# The driver and the callbacks
from mesoslite.scheduler_api.driver import DEFAULT_MASTER, SchedulerDriver
from mesoslite.scheduler_api.events import Scheduler
from mesoslite.scheduler_api.types import Demand

__all__ = [
    # The driver and the callbacks
    "DEFAULT_MASTER",
    "Scheduler",
    "SchedulerDriver",
    # Values
    "AgentId",
    "CommandSpec",
    "Demand",
    "FrameworkId",
    "FrameworkInfo",
    "HealthCheckSpec",
    "MasterInfo",
    "Offer",
    "OfferId",
    "Resources",
    "TERMINAL_STATES",
    "TaskId",
    "TaskSpec",
    "TaskState",
    "TaskStatus",
    "format_resources",
    "parse_resources",
    # Errors
    "AlreadyExistsError",
    "ConflictError",
    "MesosliteError",
    "NotFoundError",
    "UnavailableError",
    "UnknownOfferError",
    "ValidationError",
]
