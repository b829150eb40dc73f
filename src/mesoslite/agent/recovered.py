"""`RecoveredTask`: one task's checkpoint as read back after a restart (a plain value)."""

from __future__ import annotations

from dataclasses import dataclass, field

from mesoslite.ids import FrameworkId, TaskId
from mesoslite.model import TaskSpec, TaskState, TaskStatus


@dataclass(slots=True)
class RecoveredTask:
    """One task's checkpoint as read back after a restart."""

    framework_id: FrameworkId
    task_id: TaskId
    spec: TaskSpec | None = None
    pid: int = 0
    start_ticks: int = 0
    cgroups: list[str] = field(default_factory=list)
    # Every update made, oldest first, and the unacknowledged tail of it.
    updates: list[TaskStatus] = field(default_factory=list)
    pending: list[TaskStatus] = field(default_factory=list)
    # The acknowledged uuids, in the order the acknowledgements came.
    acked: list[bytes] = field(default_factory=list)
    exit_status: int | None = None
    kill_requested: bool = False

    @property
    def last_state(self) -> TaskState | None:
        return self.updates[-1].state if self.updates else None
