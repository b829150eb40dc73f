"""Placing waiting job instances into offers: packing, constraints, and saying why an
instance could not be placed. Pure; time is passed in."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from mesoslite.ids import AgentId, OfferId, TaskId
from mesoslite.jobs.book import JobBook
from mesoslite.jobs.constraints import explain_unplaceable, violations
from mesoslite.jobs.model import InstanceState, JobSpec, JobType
from mesoslite.jobs.records import Attempt, Instance, Job, Run, attempt_task_id
from mesoslite.model import MAX_RUNTIME_LABEL, Offer, TaskSpec
from mesoslite.resources import Resources, format_resources


@dataclass(slots=True)
class Placement:
    """The answer to a batch of offers: tasks to launch on some, the rest declined."""

    launches: list[tuple[Offer, list[TaskSpec]]] = field(default_factory=list)
    declined: list[Offer] = field(default_factory=list)


def offer_role(offer: Offer) -> str:
    return offer.allocation_role or "*"


def waiting(book: JobBook, now: float) -> Iterable[tuple[Job, Run, Instance]]:
    """Instances ready for a task, oldest job first; a backoff that has passed ends here."""
    # The members in locals, compared by identity: this walks every instance of every
    # active run at each offer event.
    waiting_, backoff = InstanceState.WAITING, InstanceState.BACKOFF
    for job in sorted(book.jobs.values(), key=lambda j: j.submitted_at):
        if job.state.terminal:
            continue
        for run in job.active_runs():
            for inst in run.instances:
                state = inst.state
                if state is backoff and (inst.next_attempt_at or 0) <= now:
                    inst.state, inst.next_attempt_at = waiting_, None
                    book.dirty.add(job.name)
                    state = waiting_
                if state is waiting_:
                    yield job, run, inst


def place(book: JobBook, offers: Sequence[Offer], now: float) -> Placement:
    """Pack waiting instances into the offers, in submission order, honouring each
    job's resources, role and constraints."""
    left = {o.id: o.resources for o in offers}
    tasks: dict[OfferId, list[TaskSpec]] = {}
    unplaced: dict[str, list[Instance]] = {}
    # Where each job's instances are, kept up to date as this pass places more (only
    # jobs with constraints look).
    placed: dict[str, list[dict[str, str]]] = {}
    launched: dict[str, Job] = {}
    # Jobs without constraints one instance of which found no room: no later one will
    # (the same resources, and room only shrinks), so they are not tried (issue 15: 1,000
    # waiting instances were each tried against every offer, every offer event).
    full: set[str] = set()
    for job, run, inst in list(waiting(book, now)):
        spec = job.spec
        if job.name in full:
            unplaced[job.name].append(inst)
            continue
        if spec.constraints and job.name not in placed:
            placed[job.name] = placements(job)
        chosen = _choose(job, offers, left, placed.get(job.name, []))
        if chosen is None:
            unplaced.setdefault(job.name, []).append(inst)
            if not spec.constraints:
                full.add(job.name)
            continue
        left[chosen.id] = left[chosen.id] - spec.resources
        tasks.setdefault(chosen.id, []).append(launch(book, job, run, inst, chosen, now))
        launched[job.name] = job
        if spec.constraints:
            assert inst.current is not None
            placed[job.name].append(inst.current.placement())
    for job in launched.values():
        book.refresh_state(job)
    for name, insts in unplaced.items():
        _note_unplaced(book, book.jobs[name], insts, offers)
    out = Placement()
    for offer in offers:
        if offer.id in tasks:
            out.launches.append((offer, tasks[offer.id]))
        else:
            out.declined.append(offer)
    return out


def _choose(
    job: Job,
    offers: Sequence[Offer],
    left: dict[OfferId, Resources],
    placed: list[dict[str, str]],
) -> Offer | None:
    """The first offer of the job's role with room for it that its constraints allow."""
    spec = job.spec
    for offer in offers:
        if offer_role(offer) != spec.role or not left[offer.id].contains(spec.resources):
            continue
        if (
            not spec.constraints
            or violations(spec.constraints, offer.hostname, offer.attributes, placed) is None
        ):
            return offer
    return None


def _note_unplaced(book: JobBook, job: Job, insts: list[Instance], offers: Sequence[Offer]) -> None:
    reason = why_unplaced(job, offers)
    for inst in insts:
        if inst.message != reason:
            inst.message = reason
            book.dirty.add(job.name)
    book.refresh_state(job)


def why_unplaced(job: Job, offers: Sequence[Offer]) -> str:
    spec = job.spec
    mine = [o for o in offers if offer_role(o) == spec.role]
    if not mine:
        return f"waiting for offers (role {spec.role})"
    fits = [o for o in mine if o.resources.contains(spec.resources)]
    if not fits:
        biggest = max(mine, key=lambda o: o.resources.scalar("cpus"))
        return (
            f"cannot be placed: no offer has {format_resources(spec.resources)} free "
            f"(largest: {format_resources(biggest.resources)} on {biggest.hostname})"
        )
    agents = [(o.hostname, dict(o.attributes)) for o in fits]
    # Where its instances run matters only to constraints (a scan of every instance).
    placed = placements(job) if spec.constraints else []
    return "cannot be placed: " + explain_unplaceable(spec.constraints, agents, placed)


def launch(book: JobBook, job: Job, run: Run, inst: Instance, offer: Offer, now: float) -> TaskSpec:
    """Start the instance's next attempt on the offer's agent; returns the task to launch."""
    spec = job.spec
    inst.attempts += 1
    task_id = attempt_task_id(job.name, run.run_id, inst.index, inst.attempts)
    inst.current = Attempt(
        task_id=task_id,
        number=inst.attempts,
        agent_id=offer.agent_id,
        hostname=offer.hostname,
        attributes=dict(offer.attributes),
        launched_at=now,
    )
    inst.state, inst.message, inst.version = InstanceState.STAGING, "", job.version
    inst.next_attempt_at = None
    book.by_task[task_id] = (job.name, run.run_id, inst.index)
    job.updated_at = now
    book.dirty.add(job.name)
    env = {
        **spec.command.environment,
        **spec.env,
        "MESOSLITE_JOB": job.name,
        "MESOSLITE_JOB_RUN": run.run_id,
        "MESOSLITE_JOB_INSTANCE": str(inst.index),
        "MESOSLITE_JOB_ATTEMPT": str(inst.attempts),
    }
    return TaskSpec(
        task_id=TaskId(task_id),
        command=replace(spec.command, environment=env),
        resources=spec.resources,
        name=f"{job.name}[{inst.index}]",
        agent_id=AgentId(offer.agent_id),
        kill_grace_period_s=spec.kill_grace_period_s,
        labels={**spec.labels, "job": job.name, "run": run.run_id, **_runtime_label(spec)},
        health_check=spec.health_check if spec.type == JobType.SERVICE else None,
    )


def _runtime_label(spec: JobSpec) -> dict[str, str]:
    # The master reads it to preempt overrunning tasks first (#16, `master/preemption.py`).
    if spec.max_runtime_s is None:
        return {}
    return {MAX_RUNTIME_LABEL: f"{spec.max_runtime_s:g}"}


def placements(job: Job) -> list[dict[str, str]]:
    """Where the job's live attempts run (hostname and attributes), for its constraints."""
    return [
        inst.current.placement()
        for run in job.active_runs()
        for inst in run.instances
        if inst.active and inst.current is not None
    ]
