"""Registry benchmark: what a write costs in ZooKeeper, and what ZooKeeper then holds.

    .venv/bin/python bench/bench_registry.py [--jobs 20] [--instances 300] [--writes 30]
        [--heap-mb 256]

Starts one ZooKeeper (`mesoslite.testing.zookeeper`, its settings as `mesoslite local --ha`
uses them, heap `--heap-mb`) and writes, through `ZooKeeperRegistryStore`, what the jobs
framework writes for J batch jobs of N instances run one after another: each job's document
(`mesoslite.jobs.records.job_to_doc`, real attempts and history) rewritten W times as its
instances go from STAGING to SUCCEEDED, in batches with the agents' and frameworks' records.

Measures: bytes written per op (records that changed), and what the single-znode registry
(layout 1) would have written for the same ops; the largest znode; write latency p50/p99;
ZooKeeper's RSS, heap in use (after a full GC, `jcmd GC.heap_info`) and data dir size.
Prints a Markdown block for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import platform
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
from kazoo.client import KazooClient

from mesoslite.discovery import parse_zk_url
from mesoslite.ids import AgentId
from mesoslite.jobs.model import AttemptView, InstanceState, JobState, RunState
from mesoslite.jobs.records import HISTORY_KEEP, Attempt, Instance, Job, Run, job_to_doc
from mesoslite.jobs.spec import parse_job_spec
from mesoslite.local import zookeeper as zk_testing
from mesoslite.master.registry.base import AdmitAgent, PutJob, RegistryOp, RegistrySnapshot
from mesoslite.master.registry.codec import diff, encode_object, snapshot_to_doc
from mesoslite.master.registry.zookeeper import ZooKeeperRegistryStore
from mesoslite.model import AgentInfo
from mesoslite.resources import parse_resources
from mesoslite.testing.zookeeper import ZooKeeperCluster


@dataclass
class Session:
    client: Any
    node_path: str
    epoch: int


def make_job(name: str, n: int, done: int, now: float) -> Job:
    """A batch job of `n` instances of which `done` succeeded and the rest run."""
    spec_yaml = f"name: {name}\ntype: batch\ninstances: {n}\ncommand: \"true\"\n"
    job = Job(spec=parse_job_spec(spec_yaml), spec_yaml=spec_yaml, state=JobState.RUNNING,
              submitted_at=now, updated_at=now)
    run = Run(run_id=f"{name}-r1", started_at=now)
    for i in range(n):
        ok = i < done
        attempt = Attempt(
            task_id=f"{name}.{i}.1", number=1, agent_id=f"ag-{i % 3}",
            hostname=f"host-{i % 3}.example", attributes={"rack": f"r{i % 3}"},
            state="TASK_FINISHED" if ok else "TASK_RUNNING", launched_at=now + i * 0.01,
            finished_at=now + 1 + i * 0.01 if ok else None, exit_code=0 if ok else None,
        )
        state = InstanceState.SUCCEEDED if ok else InstanceState.RUNNING
        run.instances.append(Instance(index=i, state=state, attempts=1, current=attempt))
    job.runs.append(run)
    if done == n:
        run.state, run.finished_at, job.state = RunState.SUCCEEDED, now + 2, JobState.SUCCEEDED
    # The jobs framework keeps the last HISTORY_KEEP ended attempts for `job history`.
    job.history.extend(
        AttemptView(run_id=run.run_id, instance=i, attempt=1, task_id=f"{name}.{i}.1",
                    state="TASK_FINISHED", hostname=f"host-{i % 3}.example", started_at=now,
                    finished_at=now + 1, exit_code=0)
        for i in range(max(0, done - HISTORY_KEEP), done)
    )
    return job


def agent(i: int) -> AgentInfo:
    return AgentInfo(id=AgentId(f"ag-{i}"), hostname=f"host-{i}.example",
                     resources=parse_resources("cpus:8;mem:8192;ports:[31000-32000]"),
                     attributes={"rack": f"r{i}"}, address=f"127.0.0.1:{5051 + i}")


def zk_memory(pid: int, data_dir: Path) -> dict[str, float]:
    rss = psutil.Process(pid).memory_info().rss / 2**20
    subprocess.run(["jcmd", str(pid), "GC.run"], capture_output=True, timeout=30)
    info = subprocess.run(["jcmd", str(pid), "GC.heap_info"], capture_output=True, text=True,
                          timeout=30).stdout
    used_kb = sum(int(w[:-1]) for line in info.splitlines() if "used" in line
                  for w in line.split()[line.split().index("used") + 1:][:1] if w.endswith("K"))
    disk = sum(f.stat().st_size for f in data_dir.rglob("*") if f.is_file()) / 2**20
    return {"rss_mb": rss, "heap_used_mb": used_kb / 1024, "data_dir_mb": disk}


def largest_znode(client: KazooClient, root: str) -> tuple[int, str, int]:
    """(largest data length, its path, znode count) under `root`."""
    best, path, count = 0, "", 0
    stack = [root]
    while stack:
        p = stack.pop()
        stat = client.exists(p)
        count += 1
        if stat.dataLength > best:
            best, path = stat.dataLength, p
        stack += [f"{p}/{c}" for c in client.get_children(p)]
    return best, path, count


async def run(args: argparse.Namespace) -> dict[str, Any]:
    zk_testing.HEAP_MB = args.heap_mb
    with tempfile.TemporaryDirectory() as tmp, ZooKeeperCluster(tmp) as zk:
        url = parse_zk_url(zk.chroot_url())
        client = KazooClient(hosts=zk.hosts)
        client.start(timeout=10)
        try:
            node = client.create(f"{url.election_path}/master-", b"{}", ephemeral=True,
                                 sequence=True, makepath=True)
            store = ZooKeeperRegistryStore(Session(client, node, 1), url, writer={"id": "b"},
                                           on_fenced=print)
            await store.load()
            out = await write_jobs(store, args)
            out["largest"], out["largest_path"], out["znodes"] = largest_znode(client, url.path)
            pid = zk.servers[0].daemon.pid or 0
            out.update(zk_memory(pid, zk.servers[0].data_dir))
        finally:
            client.stop()
            client.close()
    return out


async def write_jobs(store: ZooKeeperRegistryStore, args: argparse.Namespace) -> dict[str, Any]:
    latencies: list[float] = []
    new_bytes = old_bytes = ops_n = 0
    snap = RegistrySnapshot()
    now = time.time()
    noise = base64.b64encode(os.urandom(args.noise_kb * 768)).decode()
    for a in range(3):
        await store.apply([AdmitAgent(agent(a))])
    for j in range(args.jobs):
        name = f"grow-{j}"
        for w in range(1, args.writes + 1):
            done = args.instances * w // args.writes
            doc = job_to_doc(make_job(name, args.instances, done, now))
            if noise:
                doc = doc[:-1] + f',"noise":"{noise[w % 2:]}"}}'
            ops: list[RegistryOp] = [PutJob(name, doc)]
            before = store._snapshot  # noqa: SLF001
            started = time.perf_counter()
            await store.apply(ops)
            latencies.append(time.perf_counter() - started)
            after = store._snapshot  # noqa: SLF001
            new_bytes += sum(len(encode_object(after, key) or b"")
                             for key in diff(before, after, [k for op in ops for k in op.keys()]))
            snap = after
            old_bytes += len(json.dumps(snapshot_to_doc(snap), sort_keys=True))
            ops_n += len(ops)
    latencies.sort()
    return {
        "writes": len(latencies), "ops": ops_n,
        "bytes_per_op": new_bytes / ops_n, "old_bytes_per_op": old_bytes / ops_n,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
        "job_doc_bytes": len(snap.jobs[f"grow-{args.jobs - 1}"]),
        "job_record_bytes": len(encode_object(snap, ("jobs", f"grow-{args.jobs - 1}")) or b""),
        "registry_bytes": len(json.dumps(snapshot_to_doc(snap))),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--jobs", type=int, default=20)
    p.add_argument("--instances", type=int, default=300)
    p.add_argument("--writes", type=int, default=30, help="writes of each job's document")
    p.add_argument("--heap-mb", type=int, default=zk_testing.HEAP_MB)
    p.add_argument("--noise-kb", type=int, default=0,
                   help="pad each job document with this much random (incompressible) text")
    args = p.parse_args()
    r = asyncio.run(run(args))
    noise = f", +{args.noise_kb} KB noise" if args.noise_kb else ""
    print(f"### Registry: {args.jobs} jobs x {args.instances} instances{noise}, "
          f"{args.writes} writes each ({platform.node()}, {time.strftime('%Y-%m-%d')})\n")
    print("| measure | value |\n| --- | --- |")
    print(f"| writes (PutJob) | {r['writes']} |")
    print(f"| bytes written per op (records that changed) | {r['bytes_per_op']:,.0f} |")
    print(f"| what layout 1 (one znode) would write per op | {r['old_bytes_per_op']:,.0f} |")
    print(f"| a finished job's document / its record (zlib) | {r['job_doc_bytes']:,} / "
          f"{r['job_record_bytes']:,} bytes |")
    print(f"| whole registry (layout 1 would be one znode of) | {r['registry_bytes']:,} bytes |")
    print(f"| largest znode | {r['largest']:,} bytes ({r['largest_path'].rsplit('/', 2)[-2]}) |")
    print(f"| znodes under the cluster path | {r['znodes']} |")
    print(f"| write latency p50 / p99 | {r['p50_ms']:.1f} ms / {r['p99_ms']:.1f} ms |")
    print(f"| ZooKeeper RSS (-Xmx{args.heap_mb}m) | {r['rss_mb']:.0f} MiB |")
    print(f"| ZooKeeper heap in use after a full GC | {r['heap_used_mb']:.1f} MiB |")
    print(f"| ZooKeeper data dir (snapshots + logs) | {r['data_dir_mb']:.0f} MiB |")


if __name__ == "__main__":
    main()
