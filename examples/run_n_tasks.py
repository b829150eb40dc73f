"""A complete framework: run N copies of a command to completion, then exit.

    python examples/run_n_tasks.py --count 100 --command 'echo hi' --master 127.0.0.1:5050

It packs as many tasks into each offer as fit, acknowledges every update (implicitly, through
the driver), suppresses offers once everything is launched, and exits 0 when every task
finished, 1 when some failed. The integration tests and `bench/bench_launch.py` run it.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time

from mesoslite.scheduler_api import (
    CommandSpec,
    FrameworkInfo,
    Offer,
    Resources,
    SchedulerDriver,
    TaskId,
    TaskSpec,
    TaskState,
    TaskStatus,
    parse_resources,
)


def fits(offer: Resources, task: Resources) -> int:
    """How many tasks of shape `task` fit in `offer` (scalars only, as our tasks use)."""
    counts = [
        int(offer.scalar(name) // task.scalar(name))
        for name in task.scalars
        if task.scalar(name) > 0
    ]
    return min(counts) if counts else 0


class RunNTasks:
    """Launches `count` tasks running `command`; `done` is set when all are terminal."""

    def __init__(
        self, count: int, command: str, resources: Resources, prefix: str = "task"
    ) -> None:
        self.count = count
        self.command = command
        self.resources = resources
        self.prefix = prefix
        self.launched = 0
        self.states: dict[TaskId, TaskState] = {}
        self.exit_codes: dict[TaskId, int | None] = {}
        self.updates: list[TaskStatus] = []
        self.done = asyncio.Event()
        # Counted as updates come: counting `states` per update made a run O(n^2).
        self.terminal = 0
        self.finished = 0
        self.first_accept_at: float | None = None
        self.last_terminal_at: float | None = None

    async def on_subscribed(
        self, driver: SchedulerDriver, framework_id: str, master: object
    ) -> None:
        logging.info("subscribed as %s", framework_id)
        if self.launched >= self.count:
            await driver.suppress()

    async def on_offers(self, driver: SchedulerDriver, offers: list[Offer]) -> None:
        calls = []
        unused = []
        for offer in offers:
            n = min(fits(offer.resources, self.resources), self.count - self.launched)
            if n <= 0:
                unused.append(offer.id)
                continue
            tasks = []
            for _ in range(n):
                self.launched += 1
                task_id = TaskId(f"{self.prefix}-{self.launched}")
                self.states[task_id] = TaskState.STAGING
                tasks.append(TaskSpec(task_id, CommandSpec.of_shell(self.command), self.resources))
            if self.first_accept_at is None:
                self.first_accept_at = time.monotonic()
            calls.append(driver.accept([offer.id], tasks, refuse_seconds=0.0))
        if unused:
            calls.append(driver.decline(unused, refuse_seconds=30.0))
        # One round trip for all the offers of the event, not one after the other.
        await asyncio.gather(*calls)
        if self.launched >= self.count:
            await driver.suppress()

    async def on_update(self, driver: SchedulerDriver, status: TaskStatus) -> None:
        self.updates.append(status)
        previous = self.states.get(status.task_id)
        if previous is not None and previous.terminal:
            return  # a repeat of an update we already have (delivery is at least once)
        self.states[status.task_id] = status.state
        if status.state.terminal:
            self.terminal += 1
            self.finished += status.state == TaskState.FINISHED
            self.exit_codes[status.task_id] = status.exit_code
            if status.state != TaskState.FINISHED:
                logging.warning("%s %s: %s", status.task_id, status.state.label, status.message)
            if self.terminal == self.count:
                self.last_terminal_at = time.monotonic()
                self.done.set()

    def on_error(self, driver: SchedulerDriver, message: str) -> None:
        logging.error("master: %s", message)
        self.done.set()

    def terminal_count(self) -> int:
        return self.terminal

    def finished_count(self) -> int:
        return self.finished


async def main_async(args: argparse.Namespace) -> int:
    framework = RunNTasks(args.count, args.command, parse_resources(args.resources))
    driver = SchedulerDriver(
        framework,
        FrameworkInfo(name=args.name, failover_timeout_s=args.failover_timeout),
        master=args.master,
        connect_timeout_s=10.0,
    )
    async with driver:
        waiter = asyncio.create_task(framework.done.wait())
        stopped = asyncio.create_task(driver.join())
        await asyncio.wait({waiter, stopped}, timeout=args.timeout, return_when="FIRST_COMPLETED")
        waiter.cancel()
        stopped.cancel()
    finished = framework.finished_count()
    elapsed = 0.0
    if framework.first_accept_at and framework.last_terminal_at:
        elapsed = framework.last_terminal_at - framework.first_accept_at
    rate = f", {finished / elapsed:.0f} tasks/s" if elapsed > 0 else ""
    print(f"{finished}/{args.count} tasks finished in {elapsed:.2f}s{rate}")
    return 0 if finished == args.count else 1


def main() -> None:
    parser = argparse.ArgumentParser(description="Run N copies of a command on mesoslite.")
    parser.add_argument(
        "--master",
        default=os.environ.get("MESOSLITE_MASTER", "127.0.0.1:5050"),
        help="master HOST:PORT (default: $MESOSLITE_MASTER or 127.0.0.1:5050)",
    )
    parser.add_argument("--count", type=int, default=20, help="how many tasks")
    parser.add_argument("--command", default="true", help="shell command each task runs")
    parser.add_argument("--resources", default="cpus:0.1;mem:16", help="each task's resources")
    parser.add_argument("--name", default="run-n-tasks", help="framework name")
    parser.add_argument("--failover-timeout", type=float, default=0.0, help="seconds")
    parser.add_argument("--timeout", type=float, default=300.0, help="give up after (s)")
    args = parser.parse_args()
    if args.count < 1:
        parser.error(f"--count must be >= 1, got {args.count}")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    sys.exit(asyncio.run(main_async(args)))


if __name__ == "__main__":
    main()
