"""`deploy/netns-cluster.sh` brings a multi-host cluster up and down cleanly, 3 times in a row.

Each round: `up` (a master and 2 agents in namespaces of their own), a task that prints its
host's address, `agent list`, a 2-instance job whose tasks would sleep for minutes, then
`down`, which must stop the daemons, have the agents kill and report those tasks, and leave
no namespace, link, mount or process behind (issue 13). The namespaces, links and subnet
have names of this test's own, and the fixture runs `down` again however the test ends.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mesoslite.local.daemon import free_port
from mesoslite.testing.eventually import assert_eventually
from mesoslite.testing.netns import NetnsAgent, netns_available

SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "netns-cluster.sh"
BIN = Path(sys.executable).parent
ROUNDS = 3
INSTANCES = 2
STEP_TIMEOUT_S = 90  # one `up`, `down` or CLI call; `up` gives up by itself after ~40 s

pytestmark = pytest.mark.timeout(ROUNDS * 4 * STEP_TIMEOUT_S)


class Cluster:
    """The script's settings for this test, and the calls a round makes."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.name = f"mlt{os.getpid() % 100000}"
        self.subnet = NetnsAgent.random_subnet()
        self.port = free_port("0.0.0.0")
        self.master = f"{self.subnet}.1:{self.port}"
        self.marker = f"299.{os.getpid()}"  # `sleep 299.PID`: this test's tasks, in ps
        env = {k: v for k, v in os.environ.items() if not k.startswith("MESOSLITE_")}
        self.env = env | {
            "NETNS_WORK": str(work),
            "NETNS_NAME": self.name,
            "NETNS_SUBNET": self.subnet,
            "NETNS_AGENTS": "2",
            "NETNS_MASTER_PORT": str(self.port),
            "MESOSLITE_BIN": str(BIN),
        }

    def script(self, verb: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", str(SCRIPT), verb], env=self.env, capture_output=True, text=True,
            timeout=STEP_TIMEOUT_S,
        )

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            [str(BIN / "mesoslite"), "--master", self.master, *args], env=self.env,
            capture_output=True, text=True, timeout=STEP_TIMEOUT_S,
        )
        assert done.returncode == 0, f"mesoslite {' '.join(args)}: {done.stderr}"
        return done.stdout

    def processes(self, needle: str, *, start: bool = False) -> list[int]:
        """PIDs whose command line contains `needle` (starts with it, if `start`)."""
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                except OSError:
                    continue
                if cmdline.startswith(needle) if start else needle in cmdline:
                    found.append(int(entry.name))
        return found

    def leftovers(self) -> list[str]:
        """What the script made or started that is still there."""
        out = []
        netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
        out += [f"namespace {ln}" for ln in netns.splitlines() if ln.startswith(self.name)]
        out += [f"link {ln}" for ln in links.splitlines() if f" {self.name}-" in ln]
        mounts = Path("/proc/self/mountinfo").read_text().splitlines()
        out += [f"mount {ln}" for ln in mounts if f"/{self.name}-" in ln]
        # The daemons, `ip netns exec` and the task wrappers name the work dir; the tasks
        # (sh -c, sleep) name the marker.
        out += [f"process {p}" for p in self.processes(str(self.work))]
        out += [f"task process {p}" for p in self.processes(f"sleep {self.marker}")]
        return out


@pytest.fixture
def netns_cluster(tmp_path: Path) -> Iterator[Cluster]:
    why = netns_available()
    if why:
        pytest.skip(f"deploy/netns-cluster.sh needs network namespaces: {why}")
    cluster = Cluster(tmp_path / "netns")
    try:
        yield cluster
    finally:
        # Idempotent: stops by recorded PID whatever is still up, deletes what is left.
        cluster.script("down")


def job_spec(path: Path, name: str, marker: str) -> Path:
    path.write_text(
        f"name: {name}\ntype: batch\ncommand: sleep {marker}\ninstances: {INSTANCES}\n"
        "resources: {cpus: 0.25, mem: 32}\nretries: {limit: 0}\n"
        "constraints: [[hostname, UNIQUE]]\n"
    )
    return path


def killed_reports(work: Path) -> int:
    """TASK_KILLED lines the agents logged so far (their logs outlive `down`)."""
    return sum(
        log.read_text().count("mesoslite.agent.task_book: task TASK_KILLED")
        for log in work.glob("agent*.log")
    )


def test_netns_cluster_starts_runs_work_and_stops_cleanly_three_times(
    netns_cluster: Cluster, tmp_path: Path
) -> None:
    c = netns_cluster
    agent_ips = {f"{c.subnet}.11", f"{c.subnet}.12"}
    for round_ in range(ROUNDS):
        up = c.script("up")
        assert up.returncode == 0, f"round {round_}: up failed:\n{up.stderr}"
        assert up.stdout.strip() == f"export MESOSLITE_MASTER={c.master}"
        pids = {p.stem: int(p.read_text().split()[0]) for p in (c.work / "pids").glob("*.pid")}
        assert sorted(pids) == ["agent1", "agent2", "master"]
        comms = {name: Path(f"/proc/{pid}/comm").read_text().strip() for name, pid in pids.items()}
        assert comms == {
            "agent1": "mesoslite-agent", "agent2": "mesoslite-agent", "master": "mesoslite-maste"
        }, "a recorded PID is not the daemon itself"

        # A task runs in its agent's namespace, so it sees that agent's address.
        assert c.cli("run", "--", "hostname", "-I").split()[0] in agent_ips
        agents = json.loads(c.cli("agent", "list", "--json"))
        assert sorted((a["hostname"], a["status"]) for a in agents) == [
            ("agent1", "active"), ("agent2", "active")
        ]

        spec = job_spec(tmp_path / f"job{round_}.yaml", f"sleeper-{round_}", c.marker)
        c.cli("job", "submit", str(spec))
        assert_eventually(
            lambda: len(c.processes(f"sleep {c.marker}", start=True)) == INSTANCES, timeout_s=30,
            message=f"the job's {INSTANCES} tasks run",
        )
        killed_before = killed_reports(c.work)

        down = c.script("down")
        assert down.returncode == 0, f"round {round_}: down failed:\n{down.stderr}"
        running = re.findall(r"stopping agent\d \(pid \d+\), with (\d+) tasks running", down.stderr)
        assert len(running) == 2 and sum(map(int, running)) >= INSTANCES, down.stderr
        assert "killing leftover" not in down.stderr, "an agent left its tasks to the script"
        assert killed_reports(c.work) - killed_before >= INSTANCES, "tasks not reported killed"
        assert c.leftovers() == [], f"round {round_}: left behind after down"
        assert not (c.work / "netns.env").exists()
