"""`mesoslite job` output for steered jobs: a suspended cron job is settled for `--wait`
(it stays where it is), and a plan prints its changes and instances."""

from __future__ import annotations

from mesoslite.cli.exit_codes import EXIT_OK
from mesoslite.cli.job import outcome, progress_line
from mesoslite.cli.job_steer import format_plan
from mesoslite.jobs.model import JobPlan, JobState, JobType, JobView, PlanChange, PlanInstance

NOW = 1_800_000_000.0


def test_update_wait_of_a_suspended_cron_job_returns_instead_of_waiting_for_ever() -> None:
    view = JobView(name="nightly", type=JobType.CRON, state=JobState.SUSPENDED, spec_yaml="",
                   instances_wanted=1, submitted_at=NOW, updated_at=NOW)
    assert outcome(view) == EXIT_OK
    assert progress_line(view, NOW) == "nightly: SUSPENDED"


def test_a_plan_prints_its_changes_and_where_each_instance_goes() -> None:
    plan = JobPlan(
        name="web", type=JobType.SERVICE, action="update", version=3,
        changes=(PlanChange("command", "./a", "./b"),),
        instances=(PlanInstance(0, "replace", "a1", "local-1"),
                   PlanInstance(1, "wait", reason="no agent has cpus:2 free for role * now")),
        message="1 would start now, 1 would wait",
    )
    text = format_plan(plan, NOW)
    assert text.splitlines()[:2] == ["job web (service): update, version 3",
                                     "1 would start now, 1 would wait"]
    assert "command  ./a  ./b" in text
    assert "1         wait     -        no agent has cpus:2 free for role * now" in text
