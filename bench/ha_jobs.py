"""HA jobs benchmark: N batch jobs of M instances in a row on an HA cluster (issue 11).

    .venv/bin/python bench/ha_jobs.py [--jobs 20] [--instances 300] [--json out.json]
    .venv/bin/python bench/ha_jobs.py --zk-outage [--outage-s 60] [--sleep-s 150]

Default mode: a real ZooKeeper (as `mesoslite.testing` starts it), 3 masters (`--zk`) and 3
agents; the jobs, each of M `true` instances, are submitted one after the other, each once the
last has ended (the run stops at the first job that does not succeed, unless --keep-going).
Reported per job: its end state and seconds; then the largest znode under the
cluster's ZooKeeper path, the ZooKeeper java process's RSS, and whether a new job still runs.

`--zk-outage` (item 3 of the issue): a batch of 30 `sleep 150` instances runs; once all are
running, ZooKeeper is SIGKILLed for 60 s and started again. Counted: instances that succeeded
twice (from the tasks' own ledger) and stale task processes left running once the job ended.

Prints JSON and a Markdown line for bench/RESULTS.md; exits 1 if any invariant was broken.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from mesoslite.jobs.model import InstanceState, JobState
from mesoslite.testing.chaos import (
    ChaosCluster,
    FaultInjector,
    Ledger,
    client_call,
    invariant_report,
    largest_znode,
    rss_mb,
    submit,
    wait_for_job,
)
from mesoslite.testing.invariants import succeeded_twice
from mesoslite.testing.zookeeper import ZooKeeperCluster

AGENT_ARGS = ("--reconnect-backoff-max-s", "0.5")


def run_in_a_row(ha: ChaosCluster, ledger: Ledger, jobs: int, instances: int,
                 timeout_s: float, keep_going: bool) -> list[dict[str, Any]]:
    out = []
    for n in range(jobs):
        name, t0 = f"row-{n}", time.monotonic()
        try:
            submit(ha, ledger.batch_spec(name, instances=instances), timeout_s=60)
            view = wait_for_job(ha, name, timeout_s=timeout_s)
            state, message = view.state.value, view.message
        except Exception as e:  # noqa: BLE001 - a bench reports, it does not stop
            state, message = "ERROR", str(e)[:200]
        ok = sum(r.succeeded for r in ledger.records().values() if r.job == name)
        out.append({"job": name, "state": state, "seconds": round(time.monotonic() - t0, 1),
                    "instances_succeeded": ok, "message": message})
        print(json.dumps(out[-1]), file=sys.stderr, flush=True)
        if state != JobState.SUCCEEDED.value and not keep_going:
            break  # the next ones would wait out their timeout the same way
    return out


def zk_outage(ha: ChaosCluster, zk: ZooKeeperCluster, ledger: Ledger, args: argparse.Namespace
              ) -> dict[str, Any]:
    name = "outage"
    submit(ha, ledger.batch_spec(name, instances=args.outage_instances,
                                 body=f"sleep {args.sleep_s:g}"))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        view = client_call(ha, lambda c: c.job_status(name))
        if all(i.state == InstanceState.RUNNING for i in view.instances):
            break
        time.sleep(0.5)
    FaultInjector(ha, zk).zk_outage(args.outage_s)
    view = wait_for_job(ha, name, timeout_s=args.sleep_s * 2 + args.outage_s + 300)
    report = invariant_report(ha, ledger, [name], new_job="after-outage")
    return {"job_state": view.state.value, "message": view.message,
            "instances_succeeded_twice": len(succeeded_twice(ledger.records().values())),
            "stale_tasks_left": len(report["stale"]), "violations": report}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--jobs", type=int, default=20)
    p.add_argument("--instances", type=int, default=300)
    p.add_argument("--masters", type=int, default=3)
    p.add_argument("--agents", type=int, default=3)
    p.add_argument("--job-timeout-s", type=float, default=180.0)
    p.add_argument("--keep-going", action="store_true",
                   help="submit the next job even after one did not succeed")
    p.add_argument("--zk-outage", action="store_true", help="item 3's scenario instead")
    p.add_argument("--outage-s", type=float, default=60.0)
    p.add_argument("--outage-instances", type=int, default=30)
    p.add_argument("--sleep-s", type=float, default=150.0)
    p.add_argument("--json", type=Path, help="also write the result here")
    p.add_argument("--work-dir", type=Path, help="keep logs here (default: a temp dir)")
    args = p.parse_args()
    for flag in ("jobs", "instances", "masters", "agents", "outage_instances"):
        if getattr(args, flag) < 1:
            p.error(f"--{flag.replace('_', '-')}: must be >= 1, got {getattr(args, flag)}")
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="ha-jobs-"))
    ledger = Ledger(work / "ledger")
    with ZooKeeperCluster(work / "zk") as zk, ChaosCluster(
        work / "ha", zk.url(f"/ha-jobs-{int(time.time())}"), masters=args.masters,
        agents=args.agents, agent_args=AGENT_ARGS,
    ) as ha:
        if args.zk_outage:
            result: dict[str, Any] = {"mode": "zk-outage", **zk_outage(ha, zk, ledger, args)}
            ok = not any(result["violations"].values())
        else:
            rows = run_in_a_row(ha, ledger, args.jobs, args.instances, args.job_timeout_s,
                                args.keep_going)
            path = "/" + ha.zk_url.split("/", 3)[3]
            report = invariant_report(ha, ledger, [r["job"] for r in rows], new_job="after")
            node, size = largest_znode(zk.hosts, path)
            result = {
                "mode": "in-a-row", "jobs": args.jobs, "instances": args.instances,
                "succeeded": sum(r["state"] == JobState.SUCCEEDED.value for r in rows),
                "per_job": rows, "largest_znode": node, "largest_znode_bytes": size,
                "zookeeper_rss_mb": round(rss_mb(zk.servers[0].daemon.pid), 1),
                "new_job_ran": not report["new_job"], "violations": report,
            }
            ok = result["succeeded"] == args.jobs and not any(report.values())
    result["work_dir"] = str(work)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    print(markdown(result, args))
    return 0 if ok else 1


def markdown(r: dict[str, Any], args: argparse.Namespace) -> str:
    if r["mode"] == "zk-outage":
        return (f"| ZooKeeper SIGKILL {args.outage_s:g}s, {args.outage_instances} x "
                f"`sleep {args.sleep_s:g}` | job {r['job_state']} | succeeded twice "
                f"{r['instances_succeeded_twice']} | stale tasks {r['stale_tasks_left']} |")
    return (f"| {args.jobs} x {args.instances} in a row, HA | {r['succeeded']}/{args.jobs} "
            f"succeeded | largest znode {r['largest_znode_bytes']} B ({r['largest_znode']}) | "
            f"ZooKeeper RSS {r['zookeeper_rss_mb']} MB | new job ran: {r['new_job_ran']} |")


if __name__ == "__main__":
    sys.exit(main())
