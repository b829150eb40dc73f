"""A small complete framework: run N `echo` tasks, follow their updates, exit.

    python docs/examples/hello_framework.py --master 127.0.0.1:5050 --tasks 4
    python docs/examples/hello_framework.py --master 127.0.0.1:5050 --explicit-acks

docs/sdk.md walks through it. Exit status: 0 when every task finished, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from mesoslite.scheduler_api import (
    CommandSpec,
    FrameworkId,
    FrameworkInfo,
    MasterInfo,
    MesosliteError,
    Offer,
    OfferId,
    SchedulerDriver,
    TaskId,
    TaskSpec,
    TaskState,
    TaskStatus,
    parse_resources,
)

TASK_RESOURCES = parse_resources("cpus:0.1;mem:32")


class Hello:
    """Launches `count` tasks, one per offer at most, and records how each ended."""

    def __init__(self, count: int, explicit_acks: bool) -> None:
        self.count = count
        self.explicit_acks = explicit_acks
        self.pending = [TaskId(f"hello-{i}") for i in range(count)]
        self.states: dict[TaskId, TaskState] = {}
        self.done = asyncio.Event()

    async def on_subscribed(
        self, driver: SchedulerDriver, framework_id: FrameworkId, master: MasterInfo
    ) -> None:
        print(f"subscribed as {framework_id} to {master.address}")
        if self.states:
            # A re-subscription (the master restarted or the stream broke): ask for the
            # latest state of every task we launched.
            await driver.reconcile()

    async def on_offers(self, driver: SchedulerDriver, offers: list[Offer]) -> None:
        for offer in offers:
            if not self.pending or not offer.resources.contains(TASK_RESOURCES):
                # Don't offer me this agent again for a minute.
                await driver.decline([offer.id], refuse_seconds=60)
                continue
            task_id = self.pending.pop(0)
            command = CommandSpec.of_shell('echo "hello from $MESOSLITE_TASK_ID on $(hostname)"')
            task = TaskSpec(task_id, command, TASK_RESOURCES, name="hello")
            try:
                # The rest of the offer goes back to the pool; refuse_seconds=0 lets the
                # master offer it again at once.
                await driver.accept([offer.id], [task], refuse_seconds=0)
            except MesosliteError as e:
                print(f"accept failed ({type(e).__name__}): {e}")
                self.pending.insert(0, task_id)
                continue
            self.states[task_id] = TaskState.STAGING
            print(f"launching {task_id} on {offer.hostname} ({offer.agent_id})")
        if not self.pending:
            await driver.suppress()  # everything is launched: no more offers, please

    def on_rescinded(self, driver: SchedulerDriver, offer_id: OfferId) -> None:
        print(f"offer {offer_id} rescinded")

    async def on_update(self, driver: SchedulerDriver, status: TaskStatus) -> None:
        print(f"{status.task_id}: {status.state.label} {status.message}".rstrip())
        self.states[status.task_id] = status.state
        if self.explicit_acks:
            # Without this the agent resends the update every --status-update-retry-s.
            await driver.acknowledge(status)
        if len(self.states) == self.count and all(s.terminal for s in self.states.values()):
            self.done.set()

    def on_error(self, driver: SchedulerDriver, message: str) -> None:
        print(f"the master ended the subscription: {message}")


async def main(master: str, count: int, explicit_acks: bool) -> int:
    framework = Hello(count, explicit_acks)
    driver = SchedulerDriver(
        framework,
        FrameworkInfo(name="hello", failover_timeout_s=0),
        master=master,
        implicit_acknowledgements=not explicit_acks,
        connect_timeout_s=10,
    )
    async with driver:  # start(); on the way out stop(), which tears the framework down
        done = asyncio.create_task(framework.done.wait())
        stopped = asyncio.create_task(driver.join())  # raises if the master refuses us
        await asyncio.wait({done, stopped}, timeout=60, return_when=asyncio.FIRST_COMPLETED)
        done.cancel()
        if stopped.done():
            stopped.result()  # re-raise the error that stopped the driver
        stopped.cancel()
    finished = sum(1 for s in framework.states.values() if s == TaskState.FINISHED)
    print(f"{finished}/{count} tasks finished")
    return 0 if finished == count else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--master", default="127.0.0.1:5050")
    parser.add_argument("--tasks", type=int, default=3)
    parser.add_argument("--explicit-acks", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        sys.exit(asyncio.run(main(args.master, args.tasks, args.explicit_acks)))
    except MesosliteError as e:
        print(f"hello: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(2)
