"""SDK frameworks the integration tests run against real daemons, written once.

Each records what it sees (`UpdateRecorder`: every status update, and each task's latest
state) and decides about offers in one small way.
"""

from __future__ import annotations

import asyncio

from mesoslite.scheduler_api import (
    CommandSpec,
    Offer,
    Resources,
    SchedulerDriver,
    TaskId,
    TaskSpec,
    TaskState,
    TaskStatus,
    parse_resources,
)

SMALL_TASK = "cpus:0.1;mem:16"


class UpdateRecorder:
    """Records every status update (`updates`) and each task's latest state (`states`)."""

    def __init__(self) -> None:
        self.updates: list[TaskStatus] = []
        self.states: dict[str, TaskState] = {}

    def on_update(self, driver: SchedulerDriver, status: TaskStatus) -> None:
        self.updates.append(status)
        self.states[status.task_id] = status.state

    def state(self) -> TaskState | None:
        """The state of the latest update recorded, if any."""
        return self.updates[-1].state if self.updates else None

    def running(self) -> int:
        return sum(1 for s in self.states.values() if s == TaskState.RUNNING)


class OfferRecorder(UpdateRecorder):
    """Records every offer and declines it for `refuse_s`."""

    def __init__(self, refuse_s: float = 0.2) -> None:
        super().__init__()
        self.offers: list[Offer] = []
        self.refuse_s = refuse_s

    async def on_offers(self, driver: SchedulerDriver, offers: list[Offer]) -> None:
        self.offers.extend(offers)
        await driver.decline([o.id for o in offers], refuse_seconds=self.refuse_s)


class OneTask(UpdateRecorder):
    """Launches one task and declines every later offer."""

    def __init__(self, command: str, task_id: str = "one") -> None:
        super().__init__()
        self.task = TaskSpec(
            TaskId(task_id), CommandSpec.of_shell(command), parse_resources(SMALL_TASK)
        )
        self.launched = False

    async def on_offers(self, driver: SchedulerDriver, offers: list[Offer]) -> None:
        for offer in offers:
            if not self.launched:
                self.launched = True
                await driver.accept([offer.id], [self.task])
            else:
                await driver.decline([offer.id], refuse_seconds=60)


class OneTaskPerRole(UpdateRecorder):
    """Launches one `shape` task in each role it is offered (from an offer of that role),
    then declines everything for a while."""

    def __init__(self, shape: Resources) -> None:
        super().__init__()
        self.shape = shape
        self.offer_roles: list[str] = []
        self.launched: dict[str, str] = {}  # role -> task id

    async def on_offers(self, driver: SchedulerDriver, offers: list[Offer]) -> None:
        for offer in offers:
            self.offer_roles.append(offer.allocation_role)
            role = offer.allocation_role
            if role in self.launched or not offer.resources.contains(self.shape):
                await driver.decline([offer.id], refuse_seconds=60)
                continue
            task_id = f"in-{role}"
            self.launched[role] = task_id
            task = TaskSpec(TaskId(task_id), CommandSpec.of_shell("sleep 60"), self.shape)
            await driver.accept([offer.id], [task], refuse_seconds=60)


class DemandingFramework(UpdateRecorder):
    """Launches tasks of one shape into its offers, as many as fit, once `go` is set; before
    that, it declines (both frameworks must have told the master their demands first, or the
    first one would take the whole agent)."""

    def __init__(self, name: str, shape: str, go: asyncio.Event) -> None:
        super().__init__()
        self.name = name
        self.shape = parse_resources(shape)
        self.go = go
        self.launched = 0
        self.offers_seen: list[Offer] = []

    async def on_offers(self, driver: SchedulerDriver, offers: list[Offer]) -> None:
        for offer in offers:
            if not self.go.is_set():
                await driver.decline([offer.id], refuse_seconds=0)
                continue
            self.offers_seen.append(offer)
            tasks = []
            left = offer.resources
            while left.contains(self.shape):
                left = left - self.shape
                tasks.append(
                    TaskSpec(
                        TaskId(f"{self.name}-{self.launched}"),
                        CommandSpec.of_shell("sleep 60"),
                        self.shape,
                    )
                )
                self.launched += 1
            await driver.accept([offer.id], tasks, refuse_seconds=1)


class Reserver(OfferRecorder):
    """Reserves 3 cpus of its first offer for its role, then declines everything."""

    def __init__(self) -> None:
        super().__init__()
        self.reserved = False

    async def on_offers(self, driver: SchedulerDriver, offers: list[Offer]) -> None:
        for offer in offers:
            self.offers.append(offer)
            if not self.reserved:
                self.reserved = True
                await driver.accept(
                    [offer.id], [], refuse_seconds=0, reserve=parse_resources("cpus:3;mem:512")
                )
            else:
                await driver.decline([offer.id], refuse_seconds=self.refuse_s)
