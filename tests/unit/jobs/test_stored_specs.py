"""A job accepted under older, looser size limits still loads from the registry (issue 14's
limits must not hide an acknowledged job); a new submission of the same spec is refused."""

from __future__ import annotations

import json

import pytest

from mesoslite.errors import ValidationError
from mesoslite.jobs.core import JobsCore
from mesoslite.jobs.documents import job_to_doc
from mesoslite.jobs.spec import parse_job_spec

from .test_core import submit

SMALL = 'name: old-env\ntype: batch\ncommand: "true"\n'
# Over today's 256 KB for a command's environment; accepted before that limit existed.
OLD = SMALL + "env:\n" + "".join(f"  V{i}: {'x' * 1000}\n" for i in range(300))


def test_a_stored_job_over_todays_size_limits_loads_and_a_new_one_is_refused() -> None:
    with pytest.raises(ValidationError, match="env"):
        parse_job_spec(OLD)
    core = JobsCore()
    submit(core, SMALL)
    doc = json.loads(job_to_doc(core.jobs["old-env"]))
    doc["spec_yaml"] = OLD  # as the registry of an older version holds it
    again = JobsCore()
    assert again.load({"old-env": json.dumps(doc)}) == []
    assert len(again.jobs["old-env"].spec.command.environment) == 300
    with pytest.raises(ValidationError, match="env"):
        parse_job_spec(OLD)  # the stored read left the limits on for everyone else
