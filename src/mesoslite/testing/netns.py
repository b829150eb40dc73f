"""An agent in a network namespace of its own, so a test can partition it (needs root and
iproute2; `netns_available()` says whether this host can).

The namespace `<name>` is joined to the root namespace by a veth pair: `<name>-h`
(10.<a>.<b>.1/24, root side) and `<name>-n` (10.<a>.<b>.2/24, inside). Masters listen on
0.0.0.0 and advertise 10.<a>.<b>.1 (see `ChaosCluster(advertise_host=...)`), which is
reachable from both sides. `cut()` takes the inner link down, so the agent can reach nobody
and nobody can reach it, while the masters still reach each other on 10.<a>.<b>.1; `heal()`
brings it back. Like `deploy/netns-cluster.sh`, every process is ended by its PID, and the
namespace and links are deleted at `close()`, however the test ends.
"""

from __future__ import annotations

import atexit
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from mesoslite.local.base import MARKER_ENV
from mesoslite.local.daemon import Daemon


class NetnsError(RuntimeError):
    """Raised when a namespace or link cannot be made (names the `ip` command and its error)."""


def netns_available() -> str:
    """'' if this process can make network namespaces, else why not (for a skip reason)."""
    if os.geteuid() != 0:
        return "network namespaces need root (this process is not uid 0)"
    if shutil.which("ip") is None:
        return "network namespaces need iproute2's `ip`, which is not on PATH"
    name = f"mlprobe{os.getpid() % 100000}"
    probe = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"`ip netns add` fails here: {probe.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", name], capture_output=True)
    return ""


def _ip(*args: str, ns: str = "") -> None:
    argv = ["ip", *(["netns", "exec", ns, "ip"] if ns else []), *args]
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        raise NetnsError(f"{' '.join(argv)}: {done.stderr.strip()}")


class NetnsAgent:
    """One `mesoslite-agent` in namespace `name`, following `masters` (`HOST:PORT` list).

    Args:
        work_dir: the agent's work dir; its log is `work_dir.with_suffix('.log')`.
        masters: the masters' advertised addresses on this namespace's subnet.
        marker: the cluster's `MESOSLITE_LOCAL_CLUSTER` marker, inherited by the tasks.
        subnet: the first three octets, e.g. `10.213.7`; `random_subnet()` picks one.
        agent_args: extra `mesoslite-agent` flags.
    """

    def __init__(
        self, name: str, work_dir: Path, *, subnet: str, masters: Sequence[str], marker: str,
        resources: str, agent_args: Sequence[str] = (),
    ) -> None:
        self.name = name
        self.subnet = subnet
        self.work_dir = work_dir
        self.host_ip = f"{subnet}.1"
        argv = [
            "ip", "netns", "exec", name, sys.executable, "-m", "mesoslite.agent.main",
            "--master", ",".join(masters), "--work-dir", str(work_dir),
            "--resources", resources, "--hostname", name, *agent_args,
        ]
        env = {**os.environ, "PYTHONUNBUFFERED": "1", MARKER_ENV: marker}
        self.daemon = Daemon(f"netns agent {name}", argv, work_dir.with_suffix(".log"), env)
        self._made = False

    @staticmethod
    def random_subnet() -> str:
        return f"10.{random.randint(100, 250)}.{random.randint(0, 255)}"

    def create(self) -> None:
        """Make the namespace and the veth pair (before the masters start listening)."""
        atexit.register(self.close)
        self._made = True
        h, n = f"{self.name}-h", f"{self.name}-n"
        _ip("netns", "add", self.name)
        _ip("link", "add", h, "type", "veth", "peer", "name", n)
        _ip("link", "set", n, "netns", self.name)
        _ip("addr", "add", f"{self.host_ip}/24", "dev", h)
        _ip("link", "set", h, "up")
        _ip("addr", "add", f"{self.subnet}.2/24", "dev", n, ns=self.name)
        _ip("link", "set", n, "up", ns=self.name)
        _ip("link", "set", "lo", "up", ns=self.name)

    def start(self) -> None:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.daemon.start()

    def cut(self) -> None:
        """Partition: the agent's side of the link goes down (its sockets see no peer)."""
        _ip("link", "set", f"{self.name}-n", "down", ns=self.name)

    def heal(self) -> None:
        _ip("link", "set", f"{self.name}-n", "up", ns=self.name)

    def partition(self, seconds: float) -> None:
        """Cut the agent off for `seconds`, then heal, whatever happens meanwhile."""
        self.cut()
        try:
            time.sleep(seconds)
        finally:
            self.heal()

    def pids_inside(self) -> list[int]:
        done = subprocess.run(["ip", "netns", "pids", self.name], capture_output=True, text=True)
        return [int(p) for p in done.stdout.split() if p.isdigit()]

    def close(self) -> None:
        """Stop the agent, SIGKILL what is left in the namespace (by PID), delete it all."""
        self.daemon.stop(signal.SIGTERM, 5.0)
        if not self._made:
            return
        for pid in self.pids_inside():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        subprocess.run(["ip", "link", "del", f"{self.name}-h"], capture_output=True)
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)
        self._made = False
        atexit.unregister(self.close)
