"""`mesoslite job plan`: what submitting (or updating) a spec would do now, and why pending
instances wait (`job status`). Pure: the cluster comes in as a `ClusterRoom`, time as `now`.

A plan is an estimate made on the master's current state, as Nomad's `job plan` is: each
instance that would start goes to the first agent (by hostname) with room for it in the
job's role that its constraints allow, taking that room from the next one; one that could
not start says why, in this order: its role's quota limit, no agent big enough at all, no
agent with that much free now, its constraints; then the allocator's last word on the jobs
framework in that role. Where tasks really go depends on the offers the allocator makes.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping, Sequence
from zoneinfo import ZoneInfo

from mesoslite.jobs.constraints import explain_unplaceable, violations
from mesoslite.jobs.cron import CronSchedule
from mesoslite.jobs.model import (
    InstanceState,
    JobPlan,
    JobSpec,
    JobType,
    JobView,
    PlanChange,
    PlanInstance,
)
from mesoslite.jobs.placement import placements
from mesoslite.jobs.port import ClusterRoom
from mesoslite.jobs.records import Instance, Job
from mesoslite.resources import Resources, format_resources

# Instances of one job simulated at most (the rest wait for the same reason as the last).
MAX_SIMULATED = 200
# Instance messages of `placement.why_unplaced`, about the last offers: `job status`
# replaces them with the reason judged now (which also names the allocator's).
_FROM_OFFERS = ("waiting for offers", "cannot be placed: ")

LAUNCH, REPLACE, KEEP, STOP, WAIT = "launch", "replace", "keep", "stop", "wait"


# ---------------------------------------------------------------------------- placing


class _Cluster:
    """The room left on each agent and under the role's quota as instances are placed."""

    def __init__(self, room: ClusterRoom, role: str, credit: Mapping[str, Resources]) -> None:
        self.room, self.role = room, role
        self.left = {
            a.agent_id: a.room(role) + credit.get(a.agent_id, Resources.empty())
            for a in room.agents
        }
        self.taken = Resources.empty()  # by this plan, against the role's quota

    def place(self, spec: JobSpec, index: int, placed: list[dict[str, str]]) -> PlanInstance:
        need = spec.resources
        why = self._why_not(spec, placed)
        if why:
            return PlanInstance(index, WAIT, reason=self._with_allocator(why))
        for agent in self.room.agents:
            if not self.left[agent.agent_id].contains(need):
                continue
            if spec.constraints and violations(
                spec.constraints, agent.hostname, agent.attributes, placed
            ) is not None:
                continue
            self.left[agent.agent_id] = self.left[agent.agent_id] - need
            self.taken = self.taken + need
            placed.append({**agent.attributes, "hostname": agent.hostname})
            return PlanInstance(index, LAUNCH, agent.agent_id, agent.hostname)
        # Not reached while `_why_not` and this loop judge alike; never fail a status for it.
        return PlanInstance(index, WAIT, reason=self._with_allocator("no agent qualifies"))

    def _why_not(self, spec: JobSpec, placed: Sequence[Mapping[str, str]]) -> str:
        need, role, agents = spec.resources, self.role, self.room.agents
        quota = self.room.quota.get(role)
        if quota is not None:
            limit, held = quota
            after = held + self.taken + need
            over = [n for n in sorted(limit.names()) if after.scalar(n) > limit.scalar(n) + 1e-9]
            if over:
                return (f"quota of role {role}: limit {format_resources(limit)}, held "
                        f"{format_resources(held + self.taken)}, needs {format_resources(need)}")
        if not agents:
            return "no agent is active"
        if not any(a.total.contains(need) for a in agents):
            big = max(agents, key=lambda a: a.total.scalar("cpus"))
            return (f"no agent has {format_resources(need)} in all "
                    f"(largest: {format_resources(big.total)} on {big.hostname})")
        fits = [a for a in agents if self.left[a.agent_id].contains(need)]
        if not fits:
            big = max(agents, key=lambda a: self.left[a.agent_id].scalar("cpus"))
            most = format_resources(self.left[big.agent_id]) or "nothing"
            return (f"no agent has {format_resources(need)} free for role {role} now "
                    f"(most free: {most} on {big.hostname})")
        if spec.constraints:
            return explain_unplaceable(
                spec.constraints, [(a.hostname, dict(a.attributes)) for a in fits], placed
            )
        return ""

    def _with_allocator(self, why: str) -> str:
        said = allocator_reason(self.room, self.role)
        # The framework's own decline filter says nothing more than `why` does, and its
        # "until <time>" would make the reason change on every pass.
        return f"{why}; allocator: {said}" if said and not said.startswith("filtered") else why


def allocator_reason(room: ClusterRoom, role: str) -> str:
    """The allocator's last word on the jobs framework in `role`, unless it was an offer
    (which says nothing about why an instance waits)."""
    said = room.reasons.get(role, "")
    return "" if said.startswith("offered") else said


def place_instances(
    spec: JobSpec, indices: Sequence[int], room: ClusterRoom, *,
    placed: list[dict[str, str]] | None = None, credit: Mapping[str, Resources] | None = None,
) -> list[PlanInstance]:
    """Place `indices` one after the other; `placed`: where the job's live instances run
    (its constraints count them); `credit`: room freed per agent (tasks to be replaced)."""
    cluster = _Cluster(room, spec.role, credit or {})
    where = list(placed or [])
    out: list[PlanInstance] = []
    for n, index in enumerate(indices):
        if n >= MAX_SIMULATED:
            out.append(dataclasses.replace(out[-1], index=index, agent_id="", hostname="",
                                           action=WAIT, reason=f"not simulated past "
                                           f"{MAX_SIMULATED} instances"))
            continue
        out.append(cluster.place(spec, index, where))
    return out


# ---------------------------------------------------------------------------- plans


def plan_job(spec: JobSpec, old: Job | None, room: ClusterRoom, now: float) -> JobPlan:
    """What submitting `spec` would do now: a new job if `old` is None or has ended,
    else an update of `old` (the caller has refused a type change already)."""
    if old is not None and not old.state.terminal:
        return _plan_update(spec, old, room, now)
    next_run = _next_run(spec, now)
    note = "" if next_run is None else "placed at its next run as the cluster is now"
    instances = place_instances(spec, range(spec.instances), room)
    return JobPlan(
        name=spec.name, type=spec.type, action="create" if old is None else "resubmit",
        version=1, instances=tuple(instances), next_run_at=next_run,
        message=note or _summary(instances),
    )


def _plan_update(spec: JobSpec, old: Job, room: ClusterRoom, now: float) -> JobPlan:
    changes = diff_specs(old.spec, spec)
    active = old.active_runs()
    run_instances = active[-1].instances if active else []
    if spec.type == JobType.SERVICE:
        instances = _service_update(spec, old.spec, run_instances, room)
        message = _summary(instances)
    elif spec.type == JobType.BATCH:
        instances = _batch_update(spec, old, run_instances, room)
        message = "running instances keep their spec; waiting ones and retries take the new one"
    else:
        instances = place_instances(spec, range(spec.instances), room)
        message = "the next runs use the new spec (placed as the cluster is now)"
    next_run = None
    if spec.type == JobType.CRON and old.suspended_at is None:
        last = old.last_scheduled if old.last_scheduled is not None else now
        next_run = _next_run(spec, last)
    if not changes:
        message = "no field changes; " + message
    return JobPlan(
        name=spec.name, type=spec.type, action="update", version=old.version + 1,
        changes=tuple(changes), instances=tuple(instances), next_run_at=next_run,
        message=message,
    )


def _service_update(
    spec: JobSpec, old_spec: JobSpec, current: Sequence[Instance], room: ClusterRoom
) -> list[PlanInstance]:
    """Every running instance is replaced (an update always starts a rolling restart,
    `max_unavailable` at a time), in the room its old task frees; the ones past
    `instances` are stopped."""
    credit: dict[str, Resources] = {}
    live = [i for i in current if i.active and i.current is not None]
    for inst in live:
        assert inst.current is not None
        if inst.index < spec.instances:
            agent = inst.current.agent_id
            credit[agent] = credit.get(agent, Resources.empty()) + old_spec.resources
    placed = place_instances(spec, range(spec.instances), room, credit=credit)
    running = {i.index for i in live}
    out = [
        dataclasses.replace(p, action=REPLACE) if p.index in running and p.action == LAUNCH
        else p
        for p in placed
    ]
    out += [PlanInstance(i.index, STOP, reason="past the new instance count")
            for i in current if i.index >= spec.instances]
    return out


def _batch_update(
    spec: JobSpec, old: Job, current: Sequence[Instance], room: ClusterRoom
) -> list[PlanInstance]:
    out: list[PlanInstance] = []
    waiting: list[int] = []
    for inst in current:
        if inst.active and inst.current is not None:
            out.append(PlanInstance(inst.index, KEEP, inst.current.agent_id,
                                    inst.current.hostname, f"runs on as version {old.version}"))
        elif inst.state in (InstanceState.WAITING, InstanceState.BACKOFF):
            waiting.append(inst.index)
    out += place_instances(spec, waiting, room, placed=placements(old))
    return sorted(out, key=lambda p: p.index)


def _summary(instances: Sequence[PlanInstance]) -> str:
    starting = sum(1 for p in instances if p.action in (LAUNCH, REPLACE))
    waiting = sum(1 for p in instances if p.action == WAIT)
    if not waiting:
        return f"all {starting} instances would start now" if starting else ""
    return f"{starting} would start now, {waiting} would wait"


def _next_run(spec: JobSpec, after: float) -> float | None:
    if spec.cron is None:
        return None
    return CronSchedule.parse(spec.cron.schedule).next_after(after, ZoneInfo(spec.cron.timezone))


# ---------------------------------------------------------------------------- the diff


def diff_specs(old: JobSpec, new: JobSpec) -> list[PlanChange]:
    """The fields of the parsed spec that differ, by dotted path, values as text."""
    a, b = _flatten(old, ""), _flatten(new, "")
    return [
        PlanChange(k, a.get(k, "-"), b.get(k, "-"))
        for k in sorted(a.keys() | b.keys())
        if a.get(k, "-") != b.get(k, "-")
    ]


def _flatten(value: object, path: str) -> dict[str, str]:
    if isinstance(value, Resources):
        return {path: format_resources(value)}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        display = getattr(value, "display", None)
        if callable(display):
            return {path: str(display())}
        out: dict[str, str] = {}
        for f in dataclasses.fields(value):
            out.update(_flatten(getattr(value, f.name), f"{path}.{f.name}" if path else f.name))
        return out
    if isinstance(value, Mapping):
        out = {}
        for k in sorted(value):
            out.update(_flatten(value[k], f"{path}.{k}"))
        return out
    if isinstance(value, tuple | list):
        return {path: ", ".join(_text(v) for v in value)} if value else {}
    return {} if value is None else {path: _text(value)}


def _text(value: object) -> str:
    if isinstance(value, enum.Enum):
        return str(value.value)
    display = getattr(value, "display", None)
    if callable(display):
        return str(display())
    return str(value)


# ---------------------------------------------------------------------------- job status


def pending_reasons(job: Job, room: ClusterRoom, limit: int | None = None) -> dict[int, str]:
    """Why each WAITING instance of the job's current run has not started: where it would
    fit now (then it waits for an offer there) or why it cannot (see `place_instances`);
    `limit`: only the first that many."""
    active = job.active_runs()
    if job.state.terminal or not active:
        return {}
    waiting = [i.index for i in active[-1].instances if i.state == InstanceState.WAITING]
    waiting = waiting[:limit]
    if not waiting:
        return {}
    said = allocator_reason(room, job.spec.role)
    out = {}
    for p in place_instances(job.spec, waiting, room, placed=placements(job)):
        if p.action == WAIT:
            out[p.index] = p.reason
        else:
            out[p.index] = f"fits on {p.hostname} now, waiting for an offer" + (
                f"; allocator: {said}" if said else "")
    return out


def with_pending_reasons(view: JobView, reasons: Mapping[int, str]) -> JobView:
    """The view with each waiting instance's reason where it said nothing or spoke of the
    last offers, and the job's message from the first of them if it had none or spoke of
    offers too."""
    if not reasons:
        return view
    instances = tuple(
        dataclasses.replace(i, message=reasons[i.index])
        if i.index in reasons and (not i.message or i.message.startswith(_FROM_OFFERS)) else i
        for i in view.instances
    )
    message = view.message
    first = next((i for i in instances if i.index in reasons), None)
    about_offers = message.partition(": ")[2].startswith(_FROM_OFFERS)  # "instance N: ..."
    if first is not None and (not message or about_offers):
        message = f"instance {first.index}: {first.message}"
    return dataclasses.replace(view, instances=instances, message=message)

