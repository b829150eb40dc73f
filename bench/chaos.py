"""Chaos soak: random faults on a real HA cluster while jobs run, invariants after each (#11).

    .venv/bin/python bench/chaos.py --minutes 30 [--seed 1] [--max-faults 120] [--json out.json]

A real ZooKeeper, 3 masters (`--zk`, small ping timeouts), 3 agents, and, where this host can
make network namespaces, one more agent in a namespace of its own. A cron job runs every
minute throughout. Until the time or the fault budget is spent, one round: a batch job of
10-40 instances of `sleep 1-6 s` is submitted, and while it runs one fault, drawn at random,
is injected: leader SIGKILL (then restarted), ZooKeeper SIGKILL for 5-20 s, agent SIGKILL for
1-6 s, agent SIGSTOP for 1-6 s, or a partition of the namespaced agent for 1-8 s. When the job
has ended, the invariants are checked (`mesoslite.testing.chaos.invariant_report`): no
instance succeeded twice, no update lost, no stale task process; the next round's job is the
"new job still runs" check, and the cron job (every time once) and a last new job are checked
at the end. Faults are at most --max-faults (4 a minute by default), a round waits at most
3 min for its job, and no round starts once the minutes are spent.

Prints JSON (faults by kind, tasks run, lost, run twice, violations) and a Markdown line for
bench/RESULTS.md; exits 1 if any invariant was broken.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from mesoslite.jobs.model import JobState
from mesoslite.testing.chaos import (
    ChaosCluster,
    FaultInjector,
    Ledger,
    NetnsAgent,
    invariant_report,
    netns_available,
    submit,
    task_processes,
    wait_for_job,
)
from mesoslite.testing.invariants import succeeded_twice, twice_while_cut_off
from mesoslite.testing.zookeeper import ZooKeeperCluster

MASTER_ARGS = (
    "--agent-ping-interval-s", "0.5", "--agent-ping-timeout-s", "1",
    "--max-agent-ping-timeouts", "2", "--agent-reregister-timeout-s", "3",
)
AGENT_ARGS = ("--reconnect-backoff-max-s", "0.5", "--status-update-retry-s", "1")
ROUND_TIMEOUT_S = 180.0
# After a fault ends: the time a returning agent takes to re-register and kill stale tasks.
SETTLE_S = 5.0


class Soak:
    def __init__(self, ha: ChaosCluster, zk: ZooKeeperCluster, ledger: Ledger,
                 netns: NetnsAgent | None, rng: random.Random) -> None:
        self.ha, self.ledger, self.netns, self.rng = ha, ledger, netns, rng
        self.faults = FaultInjector(ha, zk)
        self.violations: dict[str, list[str]] = {}
        self.jobs: Counter[str] = Counter()

    def fault(self) -> None:
        kinds = ["leader", "zookeeper", "agent_kill", "agent_stop"] + (
            ["partition"] if self.netns else [])
        kind, r = self.rng.choice(kinds), self.rng
        agent = r.randrange(len(self.ha.agents))
        print(f"{time.strftime('%H:%M:%S')} fault {kind} (agent {agent})", file=sys.stderr,
              flush=True)
        if kind == "leader":
            self.faults.kill_leader()
        elif kind == "zookeeper":
            self.faults.zk_outage(r.uniform(5, 20))
        elif kind == "agent_kill":
            self.faults.kill_agent(agent, down_s=r.uniform(1, 6))
        elif kind == "agent_stop":
            self.faults.pause(self.ha.agents[agent], r.uniform(1, 6), "agent_SIGSTOP")
        elif self.netns is not None:
            self.faults.partition(self.netns, r.uniform(1, 8))

    def round(self, n: int) -> None:
        name = f"soak-{n}"
        try:
            submit(self.ha, self.ledger.batch_spec(
                name, instances=self.rng.randint(10, 40),
                body=f"sleep {self.rng.uniform(1, 6):.1f}"), timeout_s=120)
            time.sleep(self.rng.uniform(0.5, 3))
            self.faults.revive_masters()
            self.fault()
            view = wait_for_job(self.ha, name, timeout_s=ROUND_TIMEOUT_S)
            self.jobs[view.state.value] += 1
            if view.state != JobState.SUCCEEDED:
                self.add("job_failed", [f"{name} ended {view.state.value}: {view.message}"])
        except (AssertionError, Exception) as e:  # noqa: BLE001 - a soak counts and goes on
            self.add("new_job", [f"{name}: {e}"[:300]])
            return
        self.merge(invariant_report(self.ha, self.ledger, [name], new_job=""))

    def fault_count(self) -> int:
        return sum(v for k, v in self.faults.counts.items() if k != "master_restarted")

    def add(self, kind: str, found: list[str]) -> None:
        self.violations.setdefault(kind, []).extend(found)
        for v in found:
            print(f"VIOLATION {kind}: {v}", file=sys.stderr, flush=True)

    def merge(self, report: dict[str, list[str]]) -> None:
        for kind, found in report.items():
            if found:
                self.add(kind, found)


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    rng = random.Random(args.seed)
    ledger = Ledger(work / "ledger")
    why = "" if args.no_netns else netns_available()
    netns = None if args.no_netns or why else NetnsAgent(
        f"mls{uuid.uuid4().hex[:6]}", work / "netns-agent", subnet=NetnsAgent.random_subnet(),
        masters=[], marker="", resources="cpus:4;mem:4096;disk:1000;ports:[41000-41999]",
        agent_args=AGENT_ARGS)
    with contextlib.ExitStack() as stack:
        if netns is not None:
            stack.callback(netns.close)
            netns.create()  # before the masters: they advertise its root-side address
        zk = stack.enter_context(ZooKeeperCluster(work / "zk"))
        ha = stack.enter_context(ChaosCluster(
            work / "ha", zk.url(f"/chaos-{uuid.uuid4().hex[:8]}"), masters=3,
            agents=args.agents, master_args=MASTER_ARGS, agent_args=AGENT_ARGS,
            advertise_host=netns.host_ip if netns else ""))
        if netns is not None:
            netns.daemon.env["MESOSLITE_LOCAL_CLUSTER"] = ha.marker
            netns.daemon.argv[netns.daemon.argv.index("--master") + 1] = ",".join(ha.advertised)
            ha.add_netns_agent(netns)
            ha.wait_for_agents(args.agents + 1, timeout_s=60)
        soak = Soak(ha, zk, ledger, netns, rng)
        submit(ha, ledger.cron_spec("soak-cron"))
        end, n = time.monotonic() + args.minutes * 60, 0
        while time.monotonic() < end and soak.fault_count() < args.max_faults:
            n += 1
            soak.round(n)
        soak.merge(invariant_report(ha, ledger, [], cron_jobs=["soak-cron"], new_job="last"))
        marker = ha.marker
    faults = {k: v for k, v in soak.faults.counts.items() if k != "master_restarted"}
    left = task_processes(marker)
    if left:
        soak.add("left_after_stop", [f"pid {p.pid} task {p.task_id}" for p in left])
    records = ledger.records()
    twice = succeeded_twice(records.values())
    unseen, not_killed = twice_while_cut_off(records.values(), soak.faults.windows, SETTLE_S)
    return {
        "minutes": args.minutes, "seed": args.seed, "rounds": n,
        "netns": "yes" if netns else f"no ({why or '--no-netns'})",
        "faults": faults, "faults_total": sum(faults.values()),
        "masters_restarted": soak.faults.counts["master_restarted"],
        "jobs": dict(soak.jobs),
        "tasks_run": sum(r.starts for r in records.values()),
        "tasks_succeeded": sum(r.succeeded for r in records.values()),
        "lost": len(soak.violations.get("lost", [])),
        "run_twice": len(twice),
        # Of those, the ones where an original was still running when its replacement
        # started (it should have been killed), rather than ended while cut off.
        "run_twice_overlapping": sum(", overlapping " in t for t in twice),
        # Of those, the ones whose first run ended while its agent was cut off (nobody could
        # know it had ended: at least once, docs/concepts.md), and the rest.
        "run_twice_ended_while_cut_off": unseen,
        "run_twice_not_killed": not_killed,
        "violations": sum(len(v) for v in soak.violations.values()),
        "violations_by_kind": soak.violations, "work_dir": str(work),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--minutes", type=float, default=2.0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--max-faults", type=int, default=0, help="default: 4 per minute")
    p.add_argument("--agents", type=int, default=3)
    p.add_argument("--no-netns", action="store_true", help="no partition faults")
    p.add_argument("--json", type=Path)
    p.add_argument("--work-dir", type=Path, help="keep logs here (default: a temp dir)")
    args = p.parse_args()
    if args.minutes <= 0 or args.minutes > 24 * 60:
        p.error(f"--minutes: must be > 0 and <= 1440, got {args.minutes:g}")
    if args.agents < 1:
        p.error(f"--agents: must be >= 1, got {args.agents}")
    args.max_faults = args.max_faults or max(1, int(args.minutes * 4))
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="chaos-soak-"))
    result = run(args, work)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    faults = ", ".join(f"{k} {v}" for k, v in sorted(result["faults"].items()))
    print(f"| soak {args.minutes:g} min, seed {args.seed} | {result['faults_total']} faults "
          f"({faults}) | tasks run {result['tasks_run']} | lost {result['lost']} | run twice "
          f"{result['run_twice']} ({result['run_twice_overlapping']} overlapping, "
          f"{result['run_twice_ended_while_cut_off']} ended while cut off, "
          f"{result['run_twice_not_killed']} not killed) | violations "
          f"{result['violations']} |")
    return 0 if result["violations"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
