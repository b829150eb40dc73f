"""A job whose launch failed says why where its state is shown (`job status`, `job list`),
not only in `job history` (#17)."""

from __future__ import annotations

from dataclasses import replace

from mesoslite.jobs.core import JobsCore
from mesoslite.jobs.model import JobState
from mesoslite.model import TaskState
from tests.unit.jobs.test_core import T0, launch_all, offer, status, submit

BATCH = """
name: broken
type: batch
command: /nonexistent/binary
resources: {cpus: 0.1, mem: 16}
"""


def test_a_launch_failure_reason_is_in_the_instance_and_job_message() -> None:
    core = JobsCore()
    submit(core, BATCH)
    [t] = launch_all(core, [offer(1)], T0)
    failed = replace(status(t, TaskState.FAILED), reason="LAUNCH_FAILED",
                     message="executable not found: '/nonexistent/binary'")
    core.on_update(failed, T0 + 1)
    view = core.get("broken").view()
    assert view.state == JobState.FAILED
    assert "executable not found: '/nonexistent/binary'" in view.instances[0].message
    assert "LAUNCH_FAILED: executable not found" in view.message
    assert view.message.endswith("no retries left (0 allowed)")


def test_an_ordinary_exit_code_is_not_repeated_in_words() -> None:
    core = JobsCore()
    submit(core, BATCH)
    [t] = launch_all(core, [offer(1)], T0)
    exited = replace(status(t, TaskState.FAILED, exit_code=3), reason="COMMAND_EXITED",
                     message="command exited with status 3")
    core.on_update(exited, T0 + 1)
    assert core.get("broken").view().instances[0].message == (
        "TASK_FAILED (exit code 3); no retries left (0 allowed)")


def test_a_signal_is_named() -> None:
    core = JobsCore()
    submit(core, BATCH)
    [t] = launch_all(core, [offer(1)], T0)
    killed = replace(status(t, TaskState.FAILED, exit_code=-9), reason="COMMAND_EXITED",
                     message="command terminated by SIGKILL")
    core.on_update(killed, T0 + 1)
    assert "command terminated by SIGKILL" in core.get("broken").view().message
