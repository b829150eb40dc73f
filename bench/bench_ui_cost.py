"""What serving the web UI and metrics costs the master while tasks run (issue 13).

    .venv/bin/python bench/bench_ui_cost.py [--tasks 2000] [--agents 4] [--rounds 3]

Runs N `true` tasks (the example framework, as bench_launch.py) on a fresh local cluster,
in rounds that alternate two modes: "plain" (nothing reads HTTP) and "ui" (a page's
`/events` stream is open and read the whole time, and `/metrics` is scraped every second,
as Prometheus would). The master's CPU seconds (psutil `cpu_times`) are counted over the run
only, and the medians compared: "added" is (ui - plain) / plain. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import psutil
from bench_launch import cpu_seconds, end_to_end

from mesoslite.testing import LocalCluster

RESOURCES = "cpus:16;mem:16384;disk:10000;ports:[31000-32000]"


class UiClient:
    """An open `/events` stream read to the end, and a `/metrics` scrape every second."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.stop = threading.Event()
        self.events_bytes = 0
        self.scrapes = 0
        self._conn: http.client.HTTPConnection | None = None
        self._threads = [threading.Thread(target=self._events, daemon=True),
                         threading.Thread(target=self._scrape, daemon=True)]

    def __enter__(self) -> UiClient:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        if self._conn is not None and self._conn.sock is not None:
            self._conn.sock.shutdown(socket.SHUT_RDWR)  # ends the blocked read
        for t in self._threads:
            t.join(timeout=5)

    def _events(self) -> None:
        self._conn = conn = http.client.HTTPConnection(self.host, self.port)
        conn.request("GET", "/events")
        response = conn.getresponse()
        while not self.stop.is_set():
            try:
                chunk = response.read1(65536)
            except (OSError, http.client.HTTPException):
                break
            if not chunk:
                break
            self.events_bytes += len(chunk)
        conn.close()

    def _scrape(self) -> None:
        while not self.stop.wait(1.0):
            conn = http.client.HTTPConnection(self.host, self.port, timeout=5)
            conn.request("GET", "/metrics")
            conn.getresponse().read()
            conn.close()
            self.scrapes += 1


def one_round(tasks: int, agents: int, ui: bool) -> tuple[float, float, str]:
    """(master CPU seconds during the run, tasks/s, what the UI client read)."""
    with tempfile.TemporaryDirectory(prefix="mesoslite-bench-ui-") as tmp:
        with LocalCluster(Path(tmp), agents=agents, agent_resources=RESOURCES) as cluster:
            master = [cluster.master_pid or 0]
            if ui:
                with UiClient(cluster.http_url()) as client:
                    before = cpu_seconds(master)
                    elapsed, done, _ = asyncio.run(end_to_end(cluster.master_address, tasks))
                    cpu = cpu_seconds(master) - before
                note = f"{client.events_bytes / 1e6:.1f} MB of events, {client.scrapes} scrapes"
            else:
                before = cpu_seconds(master)
                elapsed, done, _ = asyncio.run(end_to_end(cluster.master_address, tasks))
                cpu = cpu_seconds(master) - before
                note = ""
            assert done == tasks, f"{done} of {tasks} tasks finished"
            if ui:
                note += "; " + request_costs(cluster.http_url(), master)
    return cpu, done / elapsed, note


def request_costs(url: str, master: list[int], n: int = 100) -> str:
    """The master's CPU per request, the cluster idle after the run (a load-free figure)."""
    parts = urlsplit(url)
    out = []
    for path in ("/state?completed=100", "/metrics"):
        before = cpu_seconds(master)
        for _ in range(n):
            conn = http.client.HTTPConnection(parts.hostname or "", parts.port or 80, timeout=10)
            conn.request("GET", path)
            conn.getresponse().read()
            conn.close()
        out.append(f"{path} {(cpu_seconds(master) - before) / n * 1000:.1f} ms")
    return "master CPU per request: " + ", ".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--agents", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    cpu: dict[str, list[float]] = {"plain": [], "ui": []}
    rate: dict[str, list[float]] = {"plain": [], "ui": []}
    for i in range(args.rounds):
        for mode in ("plain", "ui") if i % 2 == 0 else ("ui", "plain"):
            c, r, note = one_round(args.tasks, args.agents, mode == "ui")
            cpu[mode].append(c)
            rate[mode].append(r)
            print(f"round {i + 1} {mode}: master cpu {c:.2f}s, {r:.0f} tasks/s {note}",
                  flush=True)
    plain, ui = statistics.median(cpu["plain"]), statistics.median(cpu["ui"])
    print(f"\n{args.tasks} `true` tasks, {args.agents} agents, {args.rounds} rounds per mode "
          f"(medians); {psutil.cpu_count()} cpus; {time.strftime('%Y-%m-%d %H:%M')} UTC\n")
    print("| mode | master CPU s | tasks/s |\n| --- | --- | --- |")
    for mode in ("plain", "ui"):
        print(f"| {mode} | {statistics.median(cpu[mode]):.2f} "
              f"({', '.join(f'{c:.2f}' for c in cpu[mode])}) | "
              f"{statistics.median(rate[mode]):.0f} |")
    print(f"\nadded by the UI and scrapes: {(ui - plain) / plain:+.1%} of the master's CPU")


if __name__ == "__main__":
    main()
