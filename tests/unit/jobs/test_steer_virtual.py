"""`job suspend|resume|run-now` and pending reasons through the jobs framework on a real
`MasterActor` (SQLite registry) and its in-process port, in virtual time: no run while
suspended, across a master restart; on resume the latest missed time runs once; run-now
runs once; and a waiting instance names its role's quota (issue 16)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from mesoslite.clock import VirtualClock
from mesoslite.ids import AgentId
from mesoslite.jobs.model import JobState, RunState
from mesoslite.resources import Resources, parse_resources
from tests.unit.jobs.test_cron_virtual import (
    NEW_AGENT,
    SPEC,
    T0,
    Master,
    advance_until,
    masters,
)

__all__ = ["masters"]  # the fixture, imported for pytest


async def test_a_suspended_job_runs_nothing_across_a_restart_and_resumes_on_schedule(
    masters: list[Master], tmp_path: Path,
) -> None:
    clock = VirtualClock(T0 + 10)
    ledger: Counter[str] = Counter()
    db = tmp_path / "registry.sqlite"

    async def start(agent_id: AgentId = NEW_AGENT) -> Master:
        m = Master(db, clock, ledger)
        masters.append(m)
        await m.start(agent_id)
        return m

    m = await start()
    assert m.jobs is not None
    await m.jobs.submit(SPEC)
    view = await m.jobs.suspend("every-minute")
    assert view.state == JobState.SUSPENDED and view.next_run_at is None
    await advance_until(m, lambda: clock.now() >= T0 + 130, before=T0 + 140)
    assert ledger == {}

    # A restart keeps the suspension (it is in the job's document).
    await m.stop()
    m = await start(m.agent_id)
    assert m.jobs is not None
    assert m.jobs.status("every-minute").state == JobState.SUSPENDED
    await advance_until(m, lambda: clock.now() >= T0 + 190, before=T0 + 200)
    assert ledger == {}

    # Resumed: the latest missed time (T0+180) runs once, the others are skipped.
    await m.jobs.resume("every-minute")

    def latest_ran() -> bool:
        assert m.jobs is not None
        runs = m.jobs.status("every-minute").runs
        return not m.unacked and bool(runs) and runs[-1].state == RunState.SUCCEEDED

    await advance_until(m, latest_ran, before=T0 + 240)
    runs = m.jobs.status("every-minute").runs
    assert [(r.scheduled_at, r.state) for r in runs] == [
        (T0 + 60, RunState.SKIPPED), (T0 + 120, RunState.SKIPPED),
        (T0 + 180, RunState.SUCCEEDED)]
    assert ledger == {f"c{int(T0 + 180)}": 1}

    # Run now: one run outside the schedule, once.
    view = await m.jobs.run_now("every-minute")
    now_run = view.runs[-1].run_id
    await advance_until(m, lambda: ledger[now_run] == 1 and not m.unacked, before=T0 + 240)
    assert ledger[now_run] == 1


QUOTA_SPEC = """
name: capped
type: batch
role: batch
command: "true"
instances: 2
resources: {cpus: 0.5, mem: 16}
"""


async def test_a_waiting_instance_names_its_roles_quota_limit(
    masters: list[Master], tmp_path: Path,
) -> None:
    clock = VirtualClock(T0 + 10)
    m = Master(tmp_path / "registry.sqlite", clock, Counter())
    masters.append(m)
    await m.start()
    assert m.jobs is not None
    limit = parse_resources("cpus:0.1")
    await m.actor.run(lambda now: m.actor.state.set_quota("batch", Resources.empty(), limit))
    await m.jobs.submit(QUOTA_SPEC)
    view = m.jobs.status("capped")
    assert [i.state.value for i in view.instances] == ["WAITING", "WAITING"]
    assert view.instances[0].message.startswith("quota of role batch: limit ")
    assert view.message.startswith("instance 0: quota of role batch")
    [listed] = m.jobs.list()
    assert listed.message == view.message
