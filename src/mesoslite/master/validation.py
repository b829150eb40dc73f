"""Checks of what frameworks and agents send; each failure names the field and the value."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from mesoslite.errors import ValidationError
from mesoslite.limits import MAX_DURATION_S
from mesoslite.limits import ROLE_RE as ROLE_RE  # re-exported: roles.py, sim/trace.py
from mesoslite.model import AgentInfo, FrameworkInfo, TaskSpec

TASK_ID_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:@-]{0,254}$")
MAX_NAME = 255
MAX_TASKS_PER_ACCEPT = 100_000
MAX_ROLES = 100


def check_duration(field: str, value: float) -> None:
    if math.isnan(value) or math.isinf(value):
        raise ValidationError(field, f"must be a finite number of seconds, got {value}")
    if value < 0:
        raise ValidationError(field, f"must be >= 0, got {value:g}")
    if value > MAX_DURATION_S:
        raise ValidationError(field, f"must be at most {MAX_DURATION_S:g} (a year), got {value:g}")


def check_role_value(field: str, role: str) -> None:
    if not ROLE_RE.match(role):
        raise ValidationError(
            field, f"must be '*' or path segments of [a-z0-9_-] like 'eng/ml', got {role!r}"
        )


def check_framework_info(info: FrameworkInfo) -> None:
    if not info.name.strip():
        raise ValidationError("framework_info.name", "must not be empty")
    if len(info.name) > MAX_NAME:
        raise ValidationError("framework_info.name", f"must be at most {MAX_NAME} characters")
    if info.roles:
        # As Mesos's MULTI_ROLE: `roles` wins, and `role` must be left unset.
        if info.role not in ("", "*"):
            raise ValidationError(
                "framework_info.role",
                f"must be empty when roles is given (roles wins), got {info.role!r}",
            )
        if len(info.roles) > MAX_ROLES:
            raise ValidationError(
                "framework_info.roles", f"at most {MAX_ROLES} roles, got {len(info.roles)}"
            )
        seen: set[str] = set()
        for i, role in enumerate(info.roles):
            check_role_value(f"framework_info.roles[{i}]", role)
            if role in seen:
                raise ValidationError(
                    f"framework_info.roles[{i}]", f"{role!r} appears twice in roles"
                )
            seen.add(role)
    else:
        check_role_value("framework_info.role", info.role)
    check_duration("framework_info.failover_timeout_s", info.failover_timeout_s)


def check_agent_info(info: AgentInfo) -> None:
    if not info.hostname.strip():
        raise ValidationError("agent_info.hostname", "must not be empty")
    if info.resources.is_empty():
        raise ValidationError("agent_info.resources", "must not be empty")
    for name in info.attributes:
        if not name:
            raise ValidationError("agent_info.attributes", "attribute names must not be empty")


def check_tasks(tasks: Sequence[TaskSpec], field: str = "tasks") -> None:
    """Per-task checks that need no state: ids, commands, resources, grace periods."""
    if len(tasks) > MAX_TASKS_PER_ACCEPT:
        raise ValidationError(
            field, f"at most {MAX_TASKS_PER_ACCEPT} tasks per call, got {len(tasks)}"
        )
    seen: set[str] = set()
    for i, task in enumerate(tasks):
        where = f"{field}[{i}]"
        if not TASK_ID_RE.match(task.task_id):
            raise ValidationError(
                f"{where}.task_id",
                f"must be 1-255 characters of letters, digits and _.:@- , got {task.task_id!r}",
            )
        if task.task_id in seen:
            raise ValidationError(
                f"{where}.task_id", f"{task.task_id!r} appears twice in this call"
            )
        seen.add(task.task_id)
        cmd = task.command
        if cmd.shell and not cmd.value.strip():
            raise ValidationError(f"{where}.command.value", "command is empty")
        if not cmd.shell and (not cmd.argv or not cmd.argv[0]):
            raise ValidationError(f"{where}.command.argv", "command is empty")
        if task.resources.is_empty():
            raise ValidationError(
                f"{where}.resources", "a task must use some resources (e.g. cpus:0.1;mem:32)"
            )
        check_duration(f"{where}.kill_grace_period_s", task.kill_grace_period_s)
        if len(task.name) > MAX_NAME:
            raise ValidationError(f"{where}.name", f"must be at most {MAX_NAME} characters")
