"""Priority tiers and preemption on real daemons (#16).

A low tier (`batch`, preemptible) fills a one-agent cluster with long tasks: an SDK
framework's task and a batch job's two instances. A high-tier job (`urgent`) that needs the
whole agent arrives; after the master's grace (1 s here) the low tier's tasks are
preempted: the SDK framework hears PREEMPTION before its task's TASK_KILLED (reason
PREEMPTED), the high-tier job runs and succeeds, and the preempted batch instances run again
(not counted as failures: the low job has no retries) and the low job still SUCCEEDS.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from mesoslite.jobs.model import JobState
from mesoslite.scheduler_api import (
    CommandSpec,
    FrameworkInfo,
    Offer,
    SchedulerDriver,
    TaskId,
    TaskSpec,
    TaskState,
    TaskStatus,
    parse_resources,
)
from mesoslite.testing import LocalCluster, assert_eventually_async

MASTER_ARGS = ("--preemption-grace-s", "1", "--allocation-interval-s", "0.2")

LOW_JOB = """
name: low
type: batch
command: sleep 6
resources: {cpus: 0.5, mem: 64}
instances: 2
role: batch
retries: 0
kill_grace_period_s: 0.5
"""

HIGH_JOB = """
name: high
type: batch
command: sleep 0.5
resources: {cpus: 2, mem: 128}
role: urgent
priority: 10
"""


class LongTask:
    """Runs one long 1-cpu task in role `batch`; records events in the order they came."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []  # (kind, task id, state or deadline)
        self.states: dict[str, TaskState] = {}
        self.launched = False

    async def on_offers(self, driver: SchedulerDriver, offers: list[Offer]) -> None:
        for offer in offers:
            if self.launched:
                await driver.decline([offer.id], refuse_seconds=60)
                continue
            self.launched = True
            task = TaskSpec(
                TaskId("long"),
                CommandSpec.of_shell("sleep 600"),
                parse_resources("cpus:1;mem:64"),
                kill_grace_period_s=0.5,
            )
            await driver.accept([offer.id], [task], refuse_seconds=60)

    def on_update(self, driver: SchedulerDriver, status: TaskStatus) -> None:
        self.states[status.task_id] = status.state
        self.events.append(("update", status.task_id, f"{status.state.label}/{status.reason}"))

    def on_preemption(
        self, driver: SchedulerDriver, task_ids: list[TaskId], deadline: float
    ) -> None:
        for t in task_ids:
            self.events.append(("preemption", t, f"{deadline - time.time():.1f}"))


async def test_a_high_tier_job_preempts_a_full_low_tier_which_still_succeeds(
    tmp_path: Path,
) -> None:
    with LocalCluster(
        tmp_path / "cluster",
        agents=1,
        agent_resources="cpus:2;mem:512",
        master_args=MASTER_ARGS,
    ) as cluster:

        def call(fn_name: str, *args: object) -> object:
            with cluster.client() as c:
                return getattr(c, fn_name)(*args)

        async def job(name: str) -> object:
            return await asyncio.to_thread(call, "job_status", name)

        await asyncio.to_thread(call, "set_role_priority", "batch", 0, True)
        await asyncio.to_thread(call, "set_role_priority", "urgent", 10, False)
        fw = LongTask()
        info = FrameworkInfo(name="long", role="batch")
        async with SchedulerDriver(fw, info, master=cluster.master_address):
            await assert_eventually_async(
                lambda: fw.states.get("long") == TaskState.RUNNING, timeout_s=30
            )
            await asyncio.to_thread(call, "submit_job", LOW_JOB)

            async def low_running() -> bool:
                view = await job("low")
                assert [i.state.value for i in view.instances] == ["RUNNING", "RUNNING"]  # type: ignore[attr-defined]
                return True

            await assert_eventually_async(low_running, timeout_s=30)
            # The cluster is full; the high tier's job fits only if the low tier goes.
            await asyncio.to_thread(call, "submit_job", HIGH_JOB)

            async def succeeded(name: str) -> bool:
                view = await job(name)
                assert view.state == JobState.SUCCEEDED, (view.state, view.message)  # type: ignore[attr-defined]
                return True

            await assert_eventually_async(lambda: succeeded("high"), timeout_s=30)
            kinds = [(k, t) for k, t, _ in fw.events if t == "long"]
            told = kinds.index(("preemption", "long"))
            killed = next(
                i
                for i, (k, t, s) in enumerate(fw.events)
                if k == "update" and s == "TASK_KILLED/PREEMPTED"
            )
            assert told < killed, fw.events
            await assert_eventually_async(lambda: succeeded("low"), timeout_s=40)
        history = await asyncio.to_thread(call, "job_history", "low")
        preempted = [a for a in history if "PREEMPTED" in a.message]  # type: ignore[attr-defined]
        assert len(preempted) == 2, history
