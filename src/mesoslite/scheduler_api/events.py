"""The `Scheduler` protocol: the callbacks a framework implements to hear from the master."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING, Protocol

from mesoslite.ids import AgentId, FrameworkId, OfferId, TaskId
from mesoslite.model import MasterInfo, Offer, TaskStatus

if TYPE_CHECKING:
    from mesoslite.scheduler_api.driver import SchedulerDriver

# A callback may be a plain function or a coroutine function; the driver awaits the latter.
Maybe = Awaitable[None] | None


class Scheduler(Protocol):
    """Callbacks, each optional: the driver calls only those the object defines.

    Callbacks run one at a time, in the order the master sent the events, on the driver's
    event loop. A callback that raises stops the driver, and `join()`/`run()` raise it
    (`on_callback_error="log"`: it is logged and the driver goes on). An `on_…` method not
    declared here is warned about when the driver is made (`strict_callbacks`: refused).
    """

    def on_subscribed(
        self, driver: SchedulerDriver, framework_id: FrameworkId, master: MasterInfo
    ) -> Maybe:
        """The master accepted the subscription (also after every re-subscription)."""

    def on_offers(self, driver: SchedulerDriver, offers: list[Offer]) -> Maybe:
        """New offers: accept them with tasks, or decline them."""

    def on_rescinded(self, driver: SchedulerDriver, offer_id: OfferId) -> Maybe:
        """An offer is no longer valid (it timed out, or its agent went away)."""

    def on_update(self, driver: SchedulerDriver, status: TaskStatus) -> Maybe:
        """A task changed state. Acknowledged after this returns unless acks are explicit."""

    def on_message(self, driver: SchedulerDriver, agent_id: AgentId, data: bytes) -> Maybe:
        """A framework message from an agent."""

    def on_failure(self, driver: SchedulerDriver, agent_id: AgentId, message: str) -> Maybe:
        """An agent was lost; its tasks' updates follow."""

    def on_preemption(
        self, driver: SchedulerDriver, task_ids: list[TaskId], deadline: float
    ) -> Maybe:
        """These tasks will be killed by `deadline` (the master's clock, seconds since the
        epoch) to make room for a higher priority tier; each then ends TASK_KILLED with
        reason `PREEMPTED`. Checkpoint or hand work over before then."""

    def on_error(self, driver: SchedulerDriver, message: str) -> Maybe:
        """The master refused or ended the subscription for good; the driver stops."""

    def on_disconnected(self, driver: SchedulerDriver) -> Maybe:
        """The connection to the master broke; the driver re-subscribes by itself."""


# Every callback the driver calls, read from `Scheduler`: a new callback is one method
# there. A scheduler's other `on_…` methods are warned about (see `callbacks.py`).
KNOWN_CALLBACKS: tuple[str, ...] = tuple(n for n in vars(Scheduler) if n.startswith("on_"))
