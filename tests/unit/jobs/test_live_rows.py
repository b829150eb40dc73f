"""A live run's instances are written as rows (issue 15): a 1,000-instance job's document,
rewritten with every change, is a fraction of the long form it was, reads back exactly,
and a document of the long form (the version before) is still read."""

from __future__ import annotations

import json

from mesoslite.jobs.core import JobsCore
from mesoslite.jobs.documents import job_from_doc, job_to_doc
from mesoslite.jobs.model import InstanceState
from mesoslite.model import TaskState

from .test_core import T0, launch_all, offer, status, submit

SPEC = """
name: wide
type: batch
command: "true"
resources: {cpus: 0.01, mem: 1}
instances: 1000
"""


def test_a_thousand_running_instances_are_a_small_document_that_reads_back() -> None:
    core = JobsCore()
    submit(core, SPEC)
    ids = [t.task_id for t in launch_all(core, [offer(n, "cpus:3;mem:4096") for n in (1, 2, 3, 4)],
                                         T0)]
    assert len(ids) == 1000
    core.on_updates([status(t, TaskState.RUNNING) for t in ids[:500]], T0 + 1)
    job = core.jobs["wide"]
    doc = job_to_doc(job)
    assert len(doc) < 100_000  # the long form: ~340 KB
    back = job_from_doc(doc)
    assert back.view() == job.view()
    assert job_to_doc(back) == doc


def test_a_live_run_in_the_long_form_of_the_version_before_is_read() -> None:
    core = JobsCore()
    submit(core, SPEC.replace("1000", "1"))
    [task] = launch_all(core, [offer(1)], T0)
    core.on_update(status(task, TaskState.RUNNING), T0 + 1)
    job = core.jobs["wide"]
    doc = json.loads(job_to_doc(job))
    run = {k: v for k, v in doc["runs"][0].items() if k != "live"}
    a = job.runs[0].instances[0].current
    assert a is not None
    run["instances"] = [{
        "index": 0, "state": "RUNNING", "version": 1, "attempts": 1, "failures": 0,
        "current": {"task_id": a.task_id, "number": 1, "agent_id": a.agent_id,
                    "hostname": a.hostname, "attributes": a.attributes, "state": a.state,
                    "launched_at": a.launched_at, "finished_at": None, "exit_code": None,
                    "healthy": None, "message": ""},
        "next_attempt_at": None, "message": "", "killing_for": "",
    }]
    back = job_from_doc(json.dumps({**doc, "runs": [run]}))
    assert back.view() == job.view()
    assert back.runs[0].instances[0].state == InstanceState.RUNNING
