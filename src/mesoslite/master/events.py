"""What `MasterState` asks the shell to do (effects) and the events it sends to frameworks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from mesoslite.ids import AgentId, FrameworkId, OfferId, TaskId
from mesoslite.master.registry.base import RegistryOp
from mesoslite.model import Offer, TaskSpec, TaskStatus

# -- events for frameworks


@dataclass(frozen=True, slots=True)
class OffersEvent:
    offers: tuple[Offer, ...]


@dataclass(frozen=True, slots=True)
class RescindEvent:
    offer_id: OfferId


@dataclass(frozen=True, slots=True)
class UpdateEvent:
    statuses: tuple[TaskStatus, ...]


@dataclass(frozen=True, slots=True)
class FailureEvent:
    agent_id: AgentId
    message: str


@dataclass(frozen=True, slots=True)
class ErrorEvent:
    """Sent just before the master closes a framework's stream for good."""

    message: str


@dataclass(frozen=True, slots=True)
class MessageEvent:
    agent_id: AgentId
    data: bytes


@dataclass(frozen=True, slots=True)
class PreemptionEvent:
    """These tasks of the framework are killed by `deadline` for a higher tier (#16)."""

    task_ids: tuple[TaskId, ...]
    deadline: float
    message: str = ""


FrameworkEvent = (
    OffersEvent
    | RescindEvent
    | UpdateEvent
    | FailureEvent
    | ErrorEvent
    | MessageEvent
    | PreemptionEvent
)

# -- effects


@dataclass(frozen=True, slots=True)
class SendToFramework:
    framework_id: FrameworkId
    event: FrameworkEvent


@dataclass(frozen=True, slots=True)
class CloseFramework:
    """End the framework's event stream (after an `ErrorEvent`)."""

    framework_id: FrameworkId


@dataclass(frozen=True, slots=True)
class LaunchOnAgent:
    agent_id: AgentId
    framework_id: FrameworkId
    tasks: tuple[TaskSpec, ...]


@dataclass(frozen=True, slots=True)
class KillOnAgent:
    agent_id: AgentId
    framework_id: FrameworkId
    task_id: TaskId
    grace_period_s: float


@dataclass(frozen=True, slots=True)
class AckOnAgent:
    agent_id: AgentId
    acks: tuple[tuple[FrameworkId, TaskId, bytes], ...]


@dataclass(frozen=True, slots=True)
class ShutdownFrameworkOnAgent:
    agent_id: AgentId
    framework_id: FrameworkId


@dataclass(frozen=True, slots=True)
class ReconcileOnAgent:
    """Ask the agent to resend what the framework has not acknowledged yet."""

    agent_id: AgentId
    framework_ids: tuple[FrameworkId, ...]


@dataclass(frozen=True, slots=True)
class DisconnectAgent:
    """End the agent's stream (it missed its pings): it must register again."""

    agent_id: AgentId


@dataclass(frozen=True, slots=True)
class PersistRegistry:
    """Write `ops` to the registry.

    With `undo`, the command already changed memory and `undo()` puts it back if the write
    fails, so that a failed write changes nothing (#11); the shell then carries out the
    effects `undo` returns and drops those that followed this one in the command's list,
    which it holds until the write is durable (nothing is launched, killed or told on the
    strength of a change that may not stick).
    """

    ops: tuple[RegistryOp, ...]
    undo: Callable[[], list[Effect]] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class AllocateSoon:
    """Resources were freed or added, or who may be offered changed: run an allocation pass
    soon (the shell coalesces these over `ALLOCATION_BATCH_S`)."""


Effect = (
    AllocateSoon
    | SendToFramework
    | CloseFramework
    | LaunchOnAgent
    | KillOnAgent
    | AckOnAgent
    | ShutdownFrameworkOnAgent
    | ReconcileOnAgent
    | DisconnectAgent
    | PersistRegistry
)
