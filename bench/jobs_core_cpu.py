"""The jobs framework's own CPU per instance, in process, without sockets (issue 15, masterpath).

    .venv/bin/python bench/jobs_core_cpu.py [--instances 1000] [--agents 4] [--slots 80]
        [--batch 10] [--repeat 5]

Replays the shape of a batch job of `--instances` `true` instances on `--agents` agents of
`--slots` tasks each through `JobsCore`, as the master's jobs framework sees it: offers of
the free slots, placement, then the agents' updates in batches of `--batch` (RUNNING, then
FINISHED, which frees slots offered again), and after each batch what the framework does per
batch: the job's document (`job_to_doc`, one registry write) and the watch's summary (`job
submit --wait`). Prints the CPU (process_time) of each step per instance, the median of
`--repeat` replays. The network, the agents and the master's own state are not in it: it
is the part of the master's CPU that the jobs framework adds, measured without the noise of
a loaded machine (A/B: run it with `PYTHONPATH=OTHER/src`).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from mesoslite.ids import AgentId, FrameworkId, OfferId
from mesoslite.jobs.core import JobsCore
from mesoslite.jobs.documents import job_to_doc
from mesoslite.jobs.spec import parse_job_spec
from mesoslite.jobs.watch import summarise
from mesoslite.model import Offer, StatusSource, TaskSpec, TaskState, TaskStatus
from mesoslite.resources import parse_resources

FW = FrameworkId("jobs")


def replay(n: int, agents: int, slots: int, batch: int) -> dict[str, float]:
    cpu: dict[str, float] = defaultdict(float)

    def timed(step: str, fn: Callable[[], Any]) -> Any:
        t = time.process_time()
        try:
            return fn()
        finally:
            cpu[step] += time.process_time() - t

    core = JobsCore()
    text = (f'name: tl\ntype: batch\ncommand: "true"\ninstances: {n}\n'
            "resources: {cpus: 0.05, mem: 16}\n")
    core.submit(parse_job_spec(text), text, 0.0)
    job = core.jobs["tl"]
    free = dict.fromkeys(range(agents), slots)
    running: list[tuple[int, TaskSpec]] = []
    now, k = 1.0, 0

    def status(agent: int, task: TaskSpec, state: TaskState) -> TaskStatus:
        return TaskStatus(task.task_id, FW, AgentId(f"a{agent}"), state,
                          source=StatusSource.AGENT, exit_code=0 if state.terminal else None,
                          uuid=b"u")

    while True:
        offers = [Offer(id=OfferId(f"o{k}-{a}"), framework_id=FW, agent_id=AgentId(f"a{a}"),
                        hostname=f"host-{a}",
                        resources=parse_resources(f"cpus:{0.05 * s:.2f};mem:{16 * s}"))
                  for a, s in free.items() if s > 0]
        k += 1
        if offers:
            placement = timed("place", lambda o=offers, t=now: core.place(o, t))
            for offer, tasks in placement.launches:
                a = int(offer.agent_id[1:])
                free[a] -= len(tasks)
                running += [(a, t) for t in tasks]
        if not running:
            break
        done, running = running[:batch], running[batch:]
        for state in (TaskState.RUNNING, TaskState.FINISHED):
            now += 0.001
            ups = [status(a, t, state) for a, t in done]
            timed("on_updates", lambda u=ups, t=now: core.on_updates(u, t))
            timed("job_to_doc", lambda: job_to_doc(job))
            timed("summarise", lambda: summarise(job))
        for a, _ in done:
            free[a] += 1
    assert job.state.terminal, job.state
    assert all(i.state.value == "SUCCEEDED" for i in job.runs[-1].instances) if job.runs else True
    return dict(cpu)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--instances", type=int, default=1000)
    ap.add_argument("--agents", type=int, default=4)
    ap.add_argument("--slots", type=int, default=80)
    ap.add_argument("--batch", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    runs = [replay(args.instances, args.agents, args.slots, args.batch)
            for _ in range(args.repeat)]
    n = args.instances
    print(f"{n} instances, {args.agents} agents x {args.slots} slots, batches of {args.batch}; "
          f"CPU ms per 1,000 instances, median of {args.repeat}")
    steps = sorted(runs[0], key=lambda s: -runs[0][s])
    for step in [*steps, "total"]:
        vals = [sum(r.values()) if step == "total" else r.get(step, 0.0) for r in runs]
        print(f"  {step:12s} {statistics.median(vals) / n * 1e6:8.1f}")


if __name__ == "__main__":
    main()
