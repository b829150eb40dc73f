"""A job as its JSON document in the registry (one document per job, rewritten on every change).

A job's spec is kept as the YAML the user gave and parsed again on load, so the registry
holds what the user wrote and nothing the parser derived. The instances of an ended run are
written as short rows (an agent table, derived task ids, trailing defaults left out): a
300-instance batch job that ended is a few KB, not a record per attempt.
"""

from __future__ import annotations

import json
from typing import Any

from mesoslite.jobs.doc_cache import instance_texts
from mesoslite.jobs.model import AttemptView, InstanceState, JobState, RunState, RunTotals
from mesoslite.jobs.records import (
    Attempt,
    Instance,
    Job,
    Run,
    RunSummary,
    attempt_task_id,
)
from mesoslite.jobs.spec import parse_job_spec

_SHORT = {InstanceState.SUCCEEDED: "S", InstanceState.FAILED: "F", InstanceState.KILLED: "K"}
_LONG = {v: k for k, v in _SHORT.items()}
_FINISHED = "TASK_FINISHED"


def _trim(row: list[Any], defaults: tuple[Any, ...]) -> list[Any]:
    """Leave out the trailing values that equal their defaults (aligned to the row's end)."""
    start = len(row) - len(defaults)
    while len(row) > start and row[-1] == defaults[len(row) - 1 - start]:
        row.pop()
    return row


def _t(x: float | None) -> float | None:
    return None if x is None else round(x, 3)


# ---------------------------------------------------------------- long-form runs (read only)


def _instance_from(d: dict[str, Any]) -> Instance:
    return Instance(
        index=d["index"],
        state=InstanceState(d["state"]),
        version=d["version"],
        attempts=d["attempts"],
        failures=d["failures"],
        current=Attempt(**d["current"]) if d["current"] else None,
        next_attempt_at=d["next_attempt_at"],
        message=d["message"],
        killing_for=d["killing_for"],
    )


# ---------------------------------------------------------------------------- live runs

# A live run's instances are written as rows too (issue 15): the long form, rewritten with
# every change of a 1,000-instance job, was ~340 KB a write; rows are ~50 KB. Lossless.
_CODE = {InstanceState.WAITING: "W", InstanceState.BACKOFF: "B", InstanceState.STAGING: "G",
         InstanceState.RUNNING: "R", InstanceState.KILLING: "X", **_SHORT}
_STATE_OF = {v: k for k, v in _CODE.items()}
# version, failures, next_attempt_at, message, killing_for
_ROW_DEFAULTS: tuple[Any, ...] = (1, 0, None, "", "")
# finished, code, healthy, msg, attrs, task id
_ATT_DEFAULTS: tuple[Any, ...] = (None, None, None, "", {}, "")


def agent_table(run: Run) -> dict[tuple[str, str], int]:
    table = getattr(run, "agent_table", None)
    if table is None:
        table = run.agent_table = {}  # type: ignore[misc]  # _AgentTable's slot
    return table


def _live_row(job: str, run: Run, i: Instance) -> list[Any]:
    """[index, state, attempts, attempt, version, failures, next_attempt_at, message,
    killing_for], the attempt as [number, agent, task state, launched, finished, exit code,
    healthy, message, attributes, task id ("" if derived)], `agent` indexing the run's
    `agents` ([agent id, hostname]); trailing defaults left out."""
    a, att = i.current, None
    if a is not None:
        table = agent_table(run)
        host = table.setdefault((a.agent_id, a.hostname), len(table))
        derived = attempt_task_id(job, run.run_id, i.index, a.number)
        att = _trim([a.number, host, a.state, a.launched_at, a.finished_at, a.exit_code,
                     a.healthy, a.message, a.attributes,
                     "" if a.task_id == derived else a.task_id], _ATT_DEFAULTS)
    return _trim([i.index, _CODE[i.state], i.attempts, att, i.version, i.failures,
                  i.next_attempt_at, i.message, i.killing_for], _ROW_DEFAULTS)


def _live_rows_json(job: str, run: Run) -> str:
    """`{"agents":[...],"rows":[...]}` as `json.dumps` gives it, each row kept with its
    instance (`doc_cache`) while the instance is unchanged."""
    def doc(i: Instance) -> list[Any]:
        return _live_row(job, run, i)

    rows = ",".join(instance_texts(run.instances, doc))
    agents = _dumps([list(k) for k in agent_table(run)])
    return f'{{"agents":{agents},"rows":[{rows}]}}'


def _live_from(job: str, run: Run, d: dict[str, Any]) -> list[Instance]:
    agents = [(str(x), str(h)) for x, h in d["agents"]]
    run.agent_table = {a: n for n, a in enumerate(agents)}  # type: ignore[misc]  # as above
    out = []
    for row in d["rows"]:
        index, code, attempts, att, version, failures, nxt, message, killing = (
            row + list(_ROW_DEFAULTS)[len(row) - 4:]
        )
        current = None
        if att is not None:
            number, host, tstate, launched, finished, exit_code, healthy, amsg, attrs, tid = (
                att + list(_ATT_DEFAULTS)[len(att) - 4:]
            )
            current = Attempt(
                task_id=tid or attempt_task_id(job, run.run_id, index, number), number=number,
                agent_id=agents[host][0], hostname=agents[host][1], attributes=dict(attrs),
                state=tstate, launched_at=launched, finished_at=finished, exit_code=exit_code,
                healthy=healthy, message=amsg,
            )
        out.append(Instance(
            index=index, state=_STATE_OF[code], version=version, attempts=attempts,
            failures=failures, current=current, next_attempt_at=nxt, message=message,
            killing_for=killing,
        ))
    return out


# ---------------------------------------------------------------------------- ended runs


def _ended_rows(job: str, run: Run) -> dict[str, Any]:
    """An ended run's instances: [index, state, attempts, attempt, failures, version,
    message], the attempt as [number, agent, launched, finished, exit code, task state,
    message, healthy, task id], `agent` indexing `agents` ([agent id, hostname])."""
    agents: dict[tuple[str, str], int] = {}
    rows = []
    for i in run.instances:
        a, att = i.current, None
        if a is not None:
            host = agents.setdefault((a.agent_id, a.hostname), len(agents))
            derived = attempt_task_id(job, run.run_id, i.index, a.number)
            tid = "" if a.task_id == derived else a.task_id
            state = "" if a.state == _FINISHED else a.state
            att = _trim([a.number, host, _t(a.launched_at), _t(a.finished_at), a.exit_code,
                         state, a.message, a.healthy, tid], (None, None, "", "", None, ""))
        row = [i.index, _SHORT.get(i.state, i.state.value), i.attempts, att, i.failures,
               i.version, i.message]
        rows.append(_trim(row, (0, 1, "")))
    return {"agents": [list(k) for k in agents], "rows": rows}


def _ended_from(job: str, run_id: str, d: dict[str, Any]) -> list[Instance]:
    agents = d["agents"]
    out = []
    for row in d["rows"]:
        index, state, attempts, att, failures, version, message = (
            row + [None, 0, 1, ""][len(row) - 3:]
        )
        current = None
        if att is not None:
            number, host, launched, finished, code, tstate, amsg, healthy, tid = (
                att + [None, None, "", "", None, ""][len(att) - 3:]
            )
            current = Attempt(
                task_id=tid or attempt_task_id(job, run_id, index, number), number=number,
                agent_id=agents[host][0], hostname=agents[host][1], state=tstate or _FINISHED,
                launched_at=launched, finished_at=finished, exit_code=code, healthy=healthy,
                message=amsg,
            )
        out.append(Instance(
            index=index, state=_LONG.get(state) or InstanceState(state), version=version,
            attempts=attempts, failures=failures, current=current, message=message,
        ))
    return out


# ---------------------------------------------------------------------------- runs and jobs


def _run_json(job: str, r: Run) -> str:
    """The run's JSON text: as `json.dumps` of its whole document would give it, with an
    active run's instances from the memo (`doc_cache`)."""
    if r.summary is not None or (
        r.state != RunState.RUNNING and not any(i.active for i in r.instances)
    ):
        return _dumps(_run_doc(job, r))
    head = _dumps(_run_head(r))
    return f'{head[:-1]},"live":{_live_rows_json(job, r)}}}'


def _dumps(d: Any) -> str:
    return json.dumps(d, separators=(",", ":"))


def _run_head(r: Run) -> dict[str, Any]:
    return {
        "run_id": r.run_id,
        "state": r.state.value,
        "scheduled_at": r.scheduled_at,
        "started_at": r.started_at,
        "finished_at": r.finished_at,
        "message": r.message,
    }


def _run_doc(job: str, r: Run) -> dict[str, Any]:
    d = _run_head(r)
    if r.summary is not None:
        s = r.summary
        d["summary"] = [list(s.exit_codes), s.attempts, s.succeeded, s.failed]
    elif r.state != RunState.RUNNING and not any(i.active for i in r.instances):
        d["ended"] = _ended_rows(job, r)
    else:
        rows = [_live_row(job, r, i) for i in r.instances]
        d["live"] = {"agents": [list(k) for k in agent_table(r)], "rows": rows}
    return d


def _run_from(job: str, r: dict[str, Any]) -> Run:
    run = Run(
        run_id=r["run_id"],
        state=RunState(r["state"]),
        scheduled_at=r["scheduled_at"],
        started_at=r["started_at"],
        finished_at=r["finished_at"],
        message=r["message"],
    )
    if "summary" in r:
        codes, attempts, ok, failed = r["summary"]
        run.summary = RunSummary(tuple(codes), attempts, ok, failed)
    elif "ended" in r:
        run.instances = _ended_from(job, run.run_id, r["ended"])
    elif "live" in r:
        run.instances = _live_from(job, run, r["live"])
    else:  # the long form of the versions before
        run.instances = [_instance_from(i) for i in r["instances"]]
    return run


def _history_doc(h: AttemptView) -> dict[str, Any]:
    return {
        "run_id": h.run_id,
        "instance": h.instance,
        "attempt": h.attempt,
        "task_id": h.task_id,
        "state": h.state,
        "hostname": h.hostname,
        "started_at": h.started_at,
        "finished_at": h.finished_at,
        "exit_code": h.exit_code,
        "message": h.message,
    }


def job_to_doc(job: Job) -> str:
    o = job.older_runs
    # Suspension (cron only) is written only when set: other jobs' documents are unchanged.
    steer = {k: v for k, v in (("suspended_at", job.suspended_at),
                               ("resumed_at", job.resumed_at)) if v is not None}
    head = _dumps({
        **steer,
        "spec_yaml": job.spec_yaml,
        "state": job.state.value,
        "submitted_at": job.submitted_at,
        "updated_at": job.updated_at,
        "ended_at": job.ended_at,
        "version": job.version,
        "message": job.message,
        "last_scheduled": job.last_scheduled,
        "next_run_at": job.next_run_at,
        "run_counter": job.run_counter,
    })
    tail = _dumps({
        "older_runs": [o.runs, o.succeeded, o.failed, o.killed, o.skipped,
                       o.instances_succeeded, o.instances_failed, o.attempts],
        "history": [_history_doc(h) for h in job.history],
    })
    # The text `json.dumps` of the whole would give, with the runs spliced in (`_run_json`).
    runs = ",".join(_run_json(job.name, r) for r in job.runs)
    return f'{head[:-1]},"runs":[{runs}],{tail[1:]}'


def job_from_doc(text: str) -> Job:
    """Read a document of this version or of the one before (every run with "instances",
    no "ended_at", every attempt in "history")."""
    d = json.loads(text)
    spec = parse_job_spec(d["spec_yaml"], stored=True)
    state = JobState(d["state"])
    job = Job(
        spec=spec,
        spec_yaml=d["spec_yaml"],
        state=state,
        submitted_at=d["submitted_at"],
        updated_at=d["updated_at"],
        version=d["version"],
        runs=[_run_from(spec.name, r) for r in d["runs"]],
        message=d["message"],
        last_scheduled=d["last_scheduled"],
        next_run_at=d["next_run_at"],
        run_counter=d["run_counter"],
        ended_at=d.get("ended_at", d["updated_at"] if state.terminal else None),
        older_runs=RunTotals(*d.get("older_runs", ())),
        suspended_at=d.get("suspended_at"),
        resumed_at=d.get("resumed_at"),
    )
    previous_version = "ended_at" not in d  # it kept every attempt, succeeded ones too
    for h in d["history"]:
        view = AttemptView(**h)
        # A success in this version's history is a replaced attempt's late end: kept.
        if not (previous_version and view.state == _FINISHED and view.exit_code in (0, None)):
            job.record(view)
    return job
