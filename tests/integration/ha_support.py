"""A framework for failover tests: runs N logical tasks to completion across master failovers.

Each task appends its id to a ledger file when it starts, so the test can tell how many
times each task really ran. After every (re-)subscription the framework reconciles its
unfinished tasks until each has an answer; a task the cluster does not know (it never
reached an agent) is launched again under a new id.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import defaultdict
from pathlib import Path

from mesoslite.errors import ConflictError, NotFoundError, NotLeaderError, ValidationError
from mesoslite.scheduler_api import (
    CommandSpec,
    FrameworkId,
    MasterInfo,
    Offer,
    SchedulerDriver,
    TaskId,
    TaskSpec,
    TaskState,
    TaskStatus,
    parse_resources,
)

# Terminal states of a task that did not run (LOST: its agent re-registered without it).
NEVER_RAN = {
    TaskState.GONE, TaskState.UNKNOWN, TaskState.DROPPED, TaskState.ERROR, TaskState.LOST
}


class LedgerFramework:
    def __init__(self, count: int, ledger: Path, *, sleep_s: float = 0.3) -> None:
        self.count = count
        self.ledger = ledger
        self.sleep_s = sleep_s
        self.todo: list[int] = list(range(count))  # logical tasks waiting for an offer
        self.task_of: dict[TaskId, int] = {}  # task id -> logical task
        self.agent_of: dict[TaskId, str] = {}
        self.terminal: dict[TaskId, list[TaskState]] = defaultdict(list)
        self.finished: set[int] = set()
        self.updates: list[TaskStatus] = []
        self.subscriptions: list[FrameworkId] = []
        self.masters: list[str] = []
        self.done = asyncio.Event()
        self._attempt = itertools.count(1)
        self._reconciler: asyncio.Task[None] | None = None
        self.resources = parse_resources("cpus:0.1;mem:16")

    # -- callbacks

    async def on_subscribed(
        self, driver: SchedulerDriver, fid: FrameworkId, master: MasterInfo
    ) -> None:
        self.subscriptions.append(fid)
        self.masters.append(master.address)
        if len(self.subscriptions) > 1:
            self._start_reconciler(driver)

    def _start_reconciler(self, driver: SchedulerDriver) -> None:
        if self._reconciler is None or self._reconciler.done():
            self._reconciler = asyncio.create_task(self._reconcile(driver))

    async def on_offers(self, driver: SchedulerDriver, offers: list[Offer]) -> None:
        for offer in offers:
            n = min(len(self.todo), int(offer.resources.scalar("cpus") / 0.1 + 1e-9),
                    int(offer.resources.scalar("mem") / 16))
            if n <= 0:
                await driver.decline([offer.id], refuse_seconds=1)
                continue
            batch, self.todo = self.todo[:n], self.todo[n:]
            tasks = []
            for logical in batch:
                tid = TaskId(f"t{logical}-{next(self._attempt)}")
                self.task_of[tid] = logical
                self.agent_of[tid] = offer.agent_id
                cmd = f"echo {tid} >> {self.ledger}; sleep {self.sleep_s}"
                tasks.append(TaskSpec(tid, CommandSpec.of_shell(cmd), self.resources))
            try:
                await driver.accept([offer.id], tasks, refuse_seconds=0)
            except (NotLeaderError, NotFoundError, ConflictError, ValidationError):
                # Refused (a standby, or an offer rescinded by a failover): not launched.
                for t in tasks:
                    del self.task_of[t.task_id]
                self.todo.extend(batch)
            except Exception:
                # The master failed over under us: these tasks may or may not have been
                # launched; reconciliation finds out.
                self._start_reconciler(driver)

    def on_update(self, driver: SchedulerDriver, status: TaskStatus) -> None:
        self.updates.append(status)
        tid = status.task_id
        if tid not in self.task_of or not status.state.terminal:
            return
        # Distinct terminal states (a reconciliation answer repeats a known one).
        if status.state not in self.terminal[tid]:
            self.terminal[tid].append(status.state)
        logical = self.task_of[tid]
        if status.state == TaskState.FINISHED:
            self.finished.add(logical)
            if len(self.finished) == self.count:
                self.done.set()
        elif status.state in NEVER_RAN and logical not in self.finished:
            self.todo.append(logical)
            asyncio.ensure_future(driver.revive())

    # -- reconciliation after a failover

    def unfinished(self) -> list[TaskId]:
        return [t for t in self.task_of if not self.terminal.get(t)]

    async def _reconcile(self, driver: SchedulerDriver) -> None:
        # Until the end: a task may be launched in doubt at any time.
        while not self.done.is_set():
            pending = self.unfinished()
            try:
                if pending:
                    await driver.reconcile([(t, self.agent_of[t]) for t in pending])
            except Exception:
                pass
            await asyncio.sleep(1.0)

    # -- checks

    def describe(self) -> str:
        """What is still open, for a failure message."""
        open_ = {t: [u.state.label for u in self.updates if u.task_id == t]
                 for t in self.unfinished()}
        missing = sorted(set(range(self.count)) - self.finished)
        return f"todo={self.todo} missing={missing} unfinished={open_}"

    def ledger_counts(self) -> dict[str, int]:
        counts: dict[str, int] = defaultdict(int)
        if self.ledger.exists():
            for line in self.ledger.read_text().split():
                counts[line] += 1
        return counts


class OneSleeper:
    """Launches one long task and prints `FRAMEWORK_ID TASK_STATE` lines as it goes."""

    def __init__(self) -> None:
        self.launched = False

    async def on_offers(self, driver: SchedulerDriver, offers: list[Offer]) -> None:
        for offer in offers:
            if self.launched:
                await driver.decline([offer.id], refuse_seconds=60)
                continue
            self.launched = True
            spec = TaskSpec(TaskId("sleeper"), CommandSpec.of_shell("sleep 600"),
                            parse_resources("cpus:0.1;mem:16"))
            await driver.accept([offer.id], [spec])

    def on_update(self, driver: SchedulerDriver, status: TaskStatus) -> None:
        print(driver.framework_id, status.state.label, flush=True)


def main() -> None:
    """`python ha_support.py MASTER FAILOVER_TIMEOUT_S`: run `OneSleeper` until killed."""
    import sys

    from mesoslite.scheduler_api import FrameworkInfo

    master, failover = sys.argv[1], float(sys.argv[2])
    info = FrameworkInfo(name="sleeper", failover_timeout_s=failover)
    SchedulerDriver(OneSleeper(), info, master=master, reconnect_backoff_max_s=0.5).run()


if __name__ == "__main__":
    main()
