"""What keeping the registry warm costs a standby master (issue 15).

    .venv/bin/python bench/bench_failover_standby.py [--writes 300]

3 masters with a real ZooKeeper; the CPU time (utime+stime from /proc) of each standby
while idle for 10 s, then while the leader makes `--writes` registry writes (role weights,
one object each, through the Operator API) and 1 s after.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from mesoslite.cli._client import BlockingOperatorClient
from mesoslite.testing.ha_cluster import HACluster
from mesoslite.testing.zookeeper import ZooKeeperCluster

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--writes", type=int, default=300)
    args = p.parse_args()
    if args.writes < 1:
        p.error(f"--writes: must be >= 1, got {args.writes}")
    with tempfile.TemporaryDirectory() as tmp, ZooKeeperCluster(Path(tmp) / "zk") as zk:
        with HACluster(Path(tmp) / "ha", zk.chroot_url(), masters=3, agents=1,
                       session_timeout_s=10) as ha:
            lead = ha.wait_for_leader()
            time.sleep(3)
            pids = [d.pid for i, d in enumerate(ha.masters) if i != lead and d.pid]
            before = [cpu_s(pid) for pid in pids]
            time.sleep(10)
            idle = [cpu_s(pid) - b for pid, b in zip(pids, before, strict=True)]
            before = [cpu_s(pid) for pid in pids]
            started = time.monotonic()
            with BlockingOperatorClient(ha.addresses[lead], timeout_s=5.0) as c:
                for i in range(args.writes):
                    c.set_role_weight(f"r{i % 50}", 1.5 + i % 7)
            wall = time.monotonic() - started
            time.sleep(1.0)
            busy = [cpu_s(pid) - b for pid, b in zip(pids, before, strict=True)]
    print(f"standby CPU idle 10 s: {', '.join(f'{x:.2f}' for x in idle)} s; "
          f"{args.writes} leader writes in {wall:.2f} s (+1 s): "
          f"{', '.join(f'{x:.2f}' for x in busy)} s; load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
