"""A job's document with its active instances' text memoised (`jobs.doc_cache`, issue 15)
is the text `json.dumps` of the whole document gives, and a change to any field an
instance's text holds shows in the next document (no stale text is ever used)."""

from __future__ import annotations

import json
from dataclasses import fields

import pytest

from mesoslite.jobs import documents
from mesoslite.jobs.core import JobsCore
from mesoslite.jobs.documents import job_from_doc, job_to_doc
from mesoslite.jobs.model import InstanceState
from mesoslite.jobs.records import Attempt, Instance, Job
from mesoslite.model import TaskState

from .test_core import T0, launch_all, offer, status, submit

SPEC = """
name: many
type: batch
command: "true"
resources: {cpus: 0.1, mem: 4}
instances: 6
retries: {limit: 3, backoff_s: 5}
"""


def plain(job: Job) -> str:
    """The document as one `json.dumps` of it all (what the memo must not change)."""
    d = json.loads(job_to_doc(job))
    d["runs"] = [documents._run_doc(job.name, r) for r in job.runs]
    return json.dumps(d, separators=(",", ":"))


def busy_job() -> tuple[JobsCore, Job]:
    """Instances in many states: succeeded, running, backing off, failed, waiting."""
    core = JobsCore()
    submit(core, SPEC)
    ids = [t.task_id for t in launch_all(core, [offer(1, zone="z1")], T0)]
    core.on_updates([status(ids[0], TaskState.FINISHED, exit_code=0),
                     status(ids[1], TaskState.RUNNING, healthy=True),
                     status(ids[2], TaskState.FAILED, exit_code=3),
                     status(ids[3], TaskState.LOST)], T0 + 1)
    return core, core.jobs["many"]


def test_the_document_is_the_text_json_dumps_of_it_all_gives() -> None:
    core, job = busy_job()
    for _ in range(2):  # the second time from the memo
        doc = job_to_doc(job)
        assert doc == plain(job)
        assert job_to_doc(job_from_doc(doc)) == doc


def _changed(value: object) -> object:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 1
    if isinstance(value, InstanceState):
        return InstanceState.KILLING if value != InstanceState.KILLING else InstanceState.FAILED
    if isinstance(value, dict):
        return {**value, "rack": "r9"}
    return f"{value}-changed"


@pytest.mark.parametrize("name", [f.name for f in fields(Instance) if f.name != "current"])
def test_a_change_to_an_instance_field_shows_in_the_next_document(name: str) -> None:
    _, job = busy_job()
    inst = job.runs[-1].instances[1]
    before = job_to_doc(job)
    setattr(inst, name, _changed(getattr(inst, name) or 0))
    after = job_to_doc(job)
    assert after != before and after == plain(job)


@pytest.mark.parametrize("name", [f.name for f in fields(Attempt)])
def test_a_change_to_an_attempt_field_shows_in_the_next_document(name: str) -> None:
    _, job = busy_job()
    attempt = job.runs[-1].instances[1].current
    assert attempt is not None
    before = job_to_doc(job)
    old = getattr(attempt, name)
    setattr(attempt, name, _changed(old if old is not None else 0))
    after = job_to_doc(job)
    assert after != before and after == plain(job)


def test_an_attempt_attribute_changed_in_place_shows_in_the_next_document() -> None:
    _, job = busy_job()
    attempt = job.runs[-1].instances[1].current
    assert attempt is not None
    before = job_to_doc(job)
    attempt.attributes["zone"] = "z2"
    assert job_to_doc(job) != before and job_to_doc(job) == plain(job)
