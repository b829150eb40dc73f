"""Checks of what frameworks and agents send; each failure names the field and the value.

The rules themselves (id forms, roles, lengths, ranges) live in `mesoslite.limits`, which
the jobs framework shares; this module applies them to the master's value types.
"""

from __future__ import annotations

from collections.abc import Sequence

from mesoslite.errors import ValidationError
from mesoslite.limits import (
    ID_RE,
    MAX_ADDRESS,
    MAX_ARGV,
    MAX_ATTRIBUTE_NAME,
    MAX_ATTRIBUTE_VALUE,
    MAX_ATTRIBUTES,
    MAX_COMMAND,
    MAX_DURATION_S,
    MAX_ENV,
    MAX_ENV_NAME,
    MAX_ENV_VALUE,
    MAX_NAME,
    MAX_PATH,
    MAX_PRINCIPAL,
    MAX_ROLES,
    MAX_TASKS_PER_ACCEPT,
    MAX_USER,
    MAX_VERSION,
    ROLE_RE,
    TASK_ID_RE,
    check_count,
    check_duration,
    check_hostname,
    check_id,
    check_labels,
    check_length,
    check_range,
    check_role,
    check_string_map,
    command_size_problem,
    range_limit,
)
from mesoslite.model import AgentInfo, CommandSpec, FrameworkInfo, HealthCheckSpec, TaskSpec
from mesoslite.resources import Resources

__all__ = [
    "MAX_NAME", "MAX_ROLES", "MAX_TASKS_PER_ACCEPT", "ROLE_RE", "TASK_ID_RE",
    "check_agent_info", "check_command", "check_duration", "check_framework_info",
    "check_resource_ranges", "check_role_value", "check_tasks",
]


def check_role_value(field: str, role: str) -> None:
    check_role(field, role)


def check_framework_info(info: FrameworkInfo) -> None:
    if not info.name.strip():
        raise ValidationError("framework_info.name", "must not be empty")
    check_length("framework_info.name", info.name, MAX_NAME)
    check_id("framework_info.id", info.id, allow_empty=True)
    check_length("framework_info.user", info.user, MAX_USER)
    check_hostname("framework_info.hostname", info.hostname)
    check_length("framework_info.principal", info.principal, MAX_PRINCIPAL)
    check_labels("framework_info.labels", info.labels)
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
            check_role(f"framework_info.roles[{i}]", role)
            if role in seen:
                raise ValidationError(
                    f"framework_info.roles[{i}]", f"{role!r} appears twice in roles"
                )
            seen.add(role)
    else:
        check_role("framework_info.role", info.role)
    check_duration("framework_info.failover_timeout_s", info.failover_timeout_s)


def check_agent_info(info: AgentInfo) -> None:
    if not info.hostname.strip():
        raise ValidationError("agent_info.hostname", "must not be empty")
    check_hostname("agent_info.hostname", info.hostname)
    check_id("agent_info.id", info.id, allow_empty=True)
    check_length("agent_info.version", info.version, MAX_VERSION)
    check_length("agent_info.address", info.address, MAX_ADDRESS)
    if info.resources.is_empty():
        raise ValidationError("agent_info.resources", "must not be empty")
    check_resource_ranges("agent_info.resources", info.resources)
    for name in info.attributes:
        if not name:
            raise ValidationError("agent_info.attributes", "attribute names must not be empty")
    check_string_map(
        "agent_info.attributes", info.attributes,
        MAX_ATTRIBUTE_NAME, MAX_ATTRIBUTE_VALUE, MAX_ATTRIBUTES,
    )
    for role in info.reserved:
        check_role("agent_info.resources.role", role, allow_star=False)


def check_resource_ranges(field: str, res: Resources) -> None:
    """Range resources end within their kind's limit: ports at 65535."""
    for name, ranges in res.ranges.items():
        for begin, end in ranges:
            check_range(f"{field}.{name}", begin, end, range_limit(name))


def check_command(field: str, cmd: CommandSpec) -> None:
    if cmd.shell and not cmd.value.strip():
        raise ValidationError(f"{field}.value", "command is empty")
    if not cmd.shell and (not cmd.argv or not cmd.argv[0]):
        raise ValidationError(f"{field}.argv", "command is empty")
    check_count(f"{field}.argv", len(cmd.argv), MAX_ARGV)
    check_string_map(f"{field}.environment", cmd.environment, MAX_ENV_NAME, MAX_ENV_VALUE, MAX_ENV)
    # In bytes, as exec counts them (see `limits.MAX_COMMAND`).
    problem = command_size_problem(cmd.value if cmd.shell else "", cmd.argv, cmd.environment)
    if problem is not None:
        where = problem[0] or (".value" if cmd.shell else ".argv")
        raise ValidationError(field + where, problem[1])
    check_length(f"{field}.user", cmd.user, MAX_USER)


def _check_health_check(field: str, hc: HealthCheckSpec) -> None:
    check_length(f"{field}.command", hc.command, MAX_COMMAND)
    check_length(f"{field}.path", hc.path, MAX_PATH)


def check_tasks(tasks: Sequence[TaskSpec], field: str = "tasks") -> None:
    """Per-task checks that need no state: ids, commands, resources, grace periods."""
    if len(tasks) > MAX_TASKS_PER_ACCEPT:
        raise ValidationError(
            field, f"at most {MAX_TASKS_PER_ACCEPT} tasks per call, got {len(tasks)}"
        )
    seen: set[str] = set()
    items = False  # some task takes ranges or sets
    for i, task in enumerate(tasks):
        if task.task_id in seen or not _plainly_valid(task):
            _check_task(f"{field}[{i}]", task, seen)  # raises, naming what is wrong
        seen.add(task.task_id)
        items = items or bool(task.resources.ranges or task.resources.sets)
    if items:
        _check_no_shared_items(tasks, field)


def _plainly_valid(task: TaskSpec) -> bool:
    """True only if `task` passes `_check_task`, found without formatting a field name
    per check (that was most of an accept's validation, #15). False: let `_check_task`
    look (the common shell command with scalar resources is all this recognises)."""
    command, agent_id, res = task.command, task.agent_id, task.resources
    value = command.value
    return (
        ID_RE.match(task.task_id) is not None
        and (not agent_id or ID_RE.match(agent_id) is not None)
        and command.shell
        and not command.argv
        and not command.environment
        and 0 < len(value) <= MAX_COMMAND
        and value.isascii()
        and not value.isspace()
        and len(command.user) <= MAX_USER
        and bool(res.scalars)
        and not res.ranges  # (sets have no per-task check; shared items are looked at below)
        and 0.0 <= task.kill_grace_period_s <= MAX_DURATION_S
        and len(task.name) <= MAX_NAME
        and not task.labels
        and task.health_check is None
        and not task.allocation_role
    )


def _check_task(where: str, task: TaskSpec, seen: set[str]) -> None:
    check_id(f"{where}.task_id", task.task_id)
    if task.task_id in seen:
        raise ValidationError(f"{where}.task_id", f"{task.task_id!r} appears twice in this call")
    check_id(f"{where}.agent_id", task.agent_id, allow_empty=True)
    check_command(f"{where}.command", task.command)
    if task.resources.is_empty():
        raise ValidationError(
            f"{where}.resources", "a task must use some resources (e.g. cpus:0.1;mem:32)"
        )
    check_resource_ranges(f"{where}.resources", task.resources)
    check_duration(f"{where}.kill_grace_period_s", task.kill_grace_period_s)
    check_length(f"{where}.name", task.name, MAX_NAME)
    check_labels(f"{where}.labels", task.labels)
    if task.health_check is not None:
        _check_health_check(f"{where}.health_check", task.health_check)
    if task.allocation_role:
        check_role(f"{where}.allocation_role", task.allocation_role)


def _check_no_shared_items(tasks: Sequence[TaskSpec], field: str) -> None:
    """Two tasks of one call may not both take a port (or a set item): the sum of their
    resources would merge them into one, and the offer would look big enough for both."""
    spans: dict[str, list[tuple[int, int, int]]] = {}
    owners: dict[tuple[str, str], int] = {}
    for i, task in enumerate(tasks):
        for name, ranges in task.resources.ranges.items():
            spans.setdefault(name, []).extend((b, e, i) for b, e in ranges)
        for name, values in task.resources.sets.items():
            for item in values:
                if (name, item) in owners:
                    _shared(field, i, f"{name} {item}", owners[(name, item)])
                owners[(name, item)] = i
    for name, items in spans.items():
        items.sort()
        for (_, end, first), (begin, _, second) in zip(items, items[1:], strict=False):
            if begin <= end:
                _shared(field, max(first, second), f"{name} {begin}", min(first, second))


def _shared(field: str, i: int, what: str, other: int) -> None:
    raise ValidationError(
        f"{field}[{i}].resources",
        f"{what} is also asked for by {field}[{other}] in this call; each task needs its own",
    )
