"""What joining a cgroup v1 costs a new process, by how it joins, back to back and after idle.

Usage (root, cgroup v1 memory hierarchy): python bench/bench_cgroup_join.py [--runs 9]

A forked child joins a scratch memory cgroup under this process's own in one of four ways (a
pid or `0`, to `cgroup.procs` or `tasks`) and times its `write`; median and max of `--runs`,
with no pause between runs and after 0.1 s of idle. Writing a pid (or to `cgroup.procs`)
takes the kernel's global threadgroup lock, which waits for an RCU grace period: fast on a
busy machine, 5-15 ms on an idle one. `0` to `tasks` moves only the calling thread and skips
it (Linux >= 6.0). This is why the task supervisor and the wrapper join with `0` to `tasks`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

WAYS: list[tuple[str, Callable[[int], str]]] = [
    ("cgroup.procs", str),
    ("tasks", str),
    ("cgroup.procs", lambda _pid: "0"),
    ("tasks", lambda _pid: "0"),
]


def memory_cgroup() -> str:
    """This process's memory cgroup directory (v1)."""
    with open("/proc/self/mountinfo") as f:
        mounts = [line.split() for line in f if " - cgroup " in line]
    mount = next(m[4] for m in mounts if "memory" in m[-1].split(","))
    with open("/proc/self/cgroup") as f:
        rel = next(line.split(":", 2)[2].strip() for line in f if ":memory:" in line)
    return mount + rel


def join_ms(cgroup: str, name: str, what: Callable[[int], str]) -> float:
    """Milliseconds a forked child spends writing itself into `cgroup` through `name`."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        start = time.perf_counter()
        with open(os.path.join(cgroup, name), "w") as f:
            f.write(what(os.getpid()))
        os.write(w, str(time.perf_counter() - start).encode())
        os._exit(0)
    os.waitpid(pid, 0)
    os.close(w)
    with os.fdopen(r) as f:
        return float(f.read()) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    cgroup = os.path.join(memory_cgroup(), f"bench-join-{os.getpid()}")
    os.mkdir(cgroup)
    try:
        print("| write | idle before each | median ms | max ms |")
        print("| --- | --- | --- | --- |")
        for idle in (0.0, 0.1):
            for name, what in WAYS:
                times = []
                for _ in range(args.runs):
                    time.sleep(idle)
                    times.append(join_ms(cgroup, name, what))
                label = f"{'pid' if what(1) == '1' else '0'} to `{name}`"
                print(f"| {label} | {idle} s | {statistics.median(times):.2f} |"
                      f" {max(times):.2f} |")
    finally:
        os.rmdir(cgroup)


if __name__ == "__main__":
    main()
