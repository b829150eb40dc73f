"""ZooKeeper servers on free loopback ports, standalone or an ensemble, for `mesoslite local --ha`.

This starts the ZooKeeper that is installed on the host (Debian's
`zookeeper` package: `/usr/share/java/zookeeper.jar`, or `$ZOOKEEPER_CLASSPATH`) with
`java` directly, each server with its own config and data dir under a temp dir, never the
system service::

    with ZooKeeperCluster(tmp_path / "zk", size=3) as zk:
        url = zk.url("/mesoslite")            # zk://127.0.0.1:p1,127.0.0.1:p2,.../mesoslite
        zk.kill(0)                            # SIGKILL member 0; zk.start(0) brings it back

Every server is ended by its own PID when the cluster stops, however the `with` block
ends, and once more at interpreter exit. `mesoslite.testing.zookeeper` adds what only
tests need (expiring a session, a proxy to cut one client off).
"""

from __future__ import annotations

import atexit
import math
import os
import socket
import time
import uuid
from pathlib import Path
from types import TracebackType
from typing import Self

from mesoslite.errors import MesosliteError
from mesoslite.local.daemon import Daemon, free_port

CLASSPATH_ENV = "ZOOKEEPER_CLASSPATH"
DEBIAN_JARS = ("/usr/share/java/zookeeper.jar",)
# A logging binding, so the server's log goes to its log file rather than nowhere.
DEBIAN_LOG_JARS = ("/usr/share/java/slf4j-simple.jar", "/usr/share/java/slf4j-nop.jar")
MAIN_CLASS = "org.apache.zookeeper.server.quorum.QuorumPeerMain"
# ZooKeeper expires sessions in buckets of one tick: a dead leader's znode goes up to one
# tick after its session timeout, so the tick bounds how late a failover begins (#15).
DEFAULT_TICK_MS = 100
# initLimit and syncLimit count ticks; these keep them in seconds whatever the tick.
INIT_LIMIT_S = 10.0
SYNC_LIMIT_S = 5.0
# Sessions may last 2 ticks to this (ZooKeeper's own maximum is only 20 ticks).
MAX_SESSION_TIMEOUT_MS = 60_000
# Sized from bench/bench_registry.py (bench/RESULTS.md, "Registry"). ZooKeeper keeps its
# last 500 writes in memory (its commit log; `zookeeper.commitLogCount` cannot go lower),
# each ~3x its size: 600 writes of 136 KB job documents held 200 MB of a 256 MB heap (the
# OOM of issue 11). Records are now compressed and at most 256 KB a transaction, so the
# worst case is ~400 MB and a typical load ~16 MB: HEAP_MB covers the worst case (the JVM
# commits only what it uses). Snapshots every SNAP_COUNT transactions (or
# SNAP_SIZE_LIMIT_KB of log), and an hourly purge keeps the newest SNAP_RETAIN_COUNT
# snapshots and their logs, so a long `mesoslite local --ha` does not fill its disk.
HEAP_MB = 512
SNAP_COUNT = 10_000
SNAP_SIZE_LIMIT_KB = 64 * 1024
SNAP_RETAIN_COUNT = 3
PURGE_INTERVAL_H = 1
PREALLOC_KB = 4 * 1024
DEFAULT_START_TIMEOUT_S = 60.0


class ZooKeeperNotInstalledError(MesosliteError):
    """Raised when no ZooKeeper server (jar) or `java` is found on this host."""


class ZooKeeperStartError(MesosliteError):
    """Raised when a ZooKeeper server does not start serving in time; has its log's end."""


def find_classpath() -> str:
    """The classpath of the installed ZooKeeper server.

    Raises:
        ZooKeeperNotInstalledError: neither `$ZOOKEEPER_CLASSPATH` nor Debian's jar, or no
            `java` on PATH.
    """
    from shutil import which

    if which("java") is None:
        raise ZooKeeperNotInstalledError(
            "java is not on PATH (install Debian's zookeeper package: "
            "scripts/install_test_deps.sh)"
        )
    env = os.environ.get(CLASSPATH_ENV, "")
    if env:
        return env
    jars = [j for j in DEBIAN_JARS if os.path.exists(j)]
    if not jars:
        raise ZooKeeperNotInstalledError(
            "ZooKeeper is not installed: no /usr/share/java/zookeeper.jar and no "
            f"${CLASSPATH_ENV} (install Debian's zookeeper package: scripts/install_test_deps.sh)"
        )
    logs = [j for j in DEBIAN_LOG_JARS if os.path.exists(j)][:1]
    return ":".join(jars + logs)


def zookeeper_available() -> bool:
    try:
        find_classpath()
    except ZooKeeperNotInstalledError:
        return False
    return True


def four_letter(port: int, word: str, timeout_s: float = 1.0) -> str:
    """Send a ZooKeeper four-letter command (`srvr`, `ruok`) and return the answer ('' if none)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as s:
            s.sendall(word.encode())
            chunks = []
            while True:
                data = s.recv(4096)
                if not data:
                    break
                chunks.append(data)
    except OSError:
        return ""
    return b"".join(chunks).decode(errors="replace")


class _Server:
    def __init__(self, index: int, root: Path, client_port: int, classpath: str) -> None:
        self.index = index
        self.dir = root / f"server-{index}"
        self.data_dir = self.dir / "data"
        self.client_port = client_port
        self.peer_port = free_port()
        self.election_port = free_port()
        self.config = self.dir / "zoo.cfg"
        argv = [
            "java", f"-Xmx{HEAP_MB}m", "-XX:+UseSerialGC", "-Dzookeeper.admin.enableServer=false",
            "-Dzookeeper.4lw.commands.whitelist=*", "-cp", classpath, MAIN_CLASS,
            str(self.config),
        ]
        self.daemon = Daemon(f"zookeeper {index}", argv, self.dir / "zookeeper.log", os.environ)


class ZooKeeperCluster:
    """`size` ZooKeeper servers (1: standalone, 3: an ensemble) in `work_dir`.

    Args:
        work_dir: where each server keeps its config, data and log (`server-<i>/`).
        size: how many servers; 1 runs standalone.
        tick_ms: ZooKeeper's `tickTime`; sessions may last 2 ticks to 60 s.
        start_timeout_s: how long a server (or the ensemble's quorum) may take to serve.
    """

    def __init__(
        self,
        work_dir: str | os.PathLike[str],
        size: int = 1,
        *,
        tick_ms: int = DEFAULT_TICK_MS,
        start_timeout_s: float = DEFAULT_START_TIMEOUT_S,
    ) -> None:
        if size < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        self.work_dir = Path(work_dir).resolve()
        self.size = size
        self.tick_ms = tick_ms
        self.start_timeout_s = start_timeout_s
        classpath = find_classpath()
        self.servers = [_Server(i, self.work_dir, free_port(), classpath) for i in range(size)]
        self._atexit = False

    # -- addresses

    @property
    def hosts(self) -> str:
        """`127.0.0.1:p1,127.0.0.1:p2,...`, for kazoo."""
        return ",".join(f"127.0.0.1:{s.client_port}" for s in self.servers)

    def url(self, path: str = "/mesoslite") -> str:
        """`zk://HOSTS/PATH`, for `--zk` and `--master`."""
        return f"zk://{self.hosts}/{path.strip('/')}"

    def chroot_url(self) -> str:
        """A URL under a fresh path `/mesoslite-test-<uuid>`, so tests do not see each other."""
        return self.url(f"/mesoslite-test-{uuid.uuid4().hex[:12]}")

    def client_port(self, i: int) -> int:
        return self.servers[i].client_port

    # -- lifecycle

    def start(self, i: int | None = None, *, wait: bool = True) -> Self:
        """Start every server (or server `i`) and wait until it serves."""
        if not self._atexit:
            atexit.register(self.stop)
            self._atexit = True
        targets = self.servers if i is None else [self.servers[i]]
        try:
            for s in targets:
                self._write_config(s)
                s.daemon.start()
            if wait:
                for s in targets:
                    self.wait_serving(s.index)
        except BaseException:
            if i is None:
                self.stop()
            raise
        return self

    def stop(self, i: int | None = None) -> None:
        """Stop every server (or server `i`): SIGTERM, then SIGKILL; wait for each."""
        targets = self.servers if i is None else [self.servers[i]]
        for s in targets:
            s.daemon.stop(grace_s=5.0)
        if i is None and self._atexit:
            atexit.unregister(self.stop)
            self._atexit = False

    def kill(self, i: int) -> None:
        """SIGKILL server `i` and wait for it to exit."""
        import signal

        self.servers[i].daemon.stop(signal.SIGKILL)

    def restart(self, i: int | None = None) -> None:
        """Stop and start again every server (or server `i`), keeping its data."""
        self.stop(i)
        self.start(i)

    def alive(self, i: int) -> bool:
        return self.servers[i].daemon.alive

    def wait_serving(self, i: int, timeout_s: float | None = None) -> None:
        s = self.servers[i]
        deadline = time.monotonic() + (timeout_s or self.start_timeout_s)
        while True:
            answer = four_letter(s.client_port, "srvr")
            if "Mode:" in answer:
                return
            if not s.daemon.alive:
                raise ZooKeeperStartError(
                    f"zookeeper {i} (pid {s.daemon.pid}) {s.daemon.describe_exit()}; "
                    f"the end of {s.daemon.log_path}:\n{s.daemon.log_tail()}"
                )
            if time.monotonic() > deadline:
                raise ZooKeeperStartError(
                    f"zookeeper {i} did not serve on port {s.client_port} in "
                    f"{timeout_s or self.start_timeout_s:g}s; the end of "
                    f"{s.daemon.log_path}:\n{s.daemon.log_tail()}"
                )
            time.sleep(0.1)

    def mode(self, i: int) -> str:
        """`standalone`, `leader`, `follower`, or '' if server `i` is not serving."""
        for line in four_letter(self.servers[i].client_port, "srvr").splitlines():
            if line.startswith("Mode:"):
                return line.split(":", 1)[1].strip()
        return ""

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def logs(self, lines: int = 60) -> str:
        return "\n".join(
            f"==== {s.daemon.name} (pid {s.daemon.pid}, {s.daemon.describe_exit()})\n"
            + s.daemon.log_tail(lines)
            for s in self.servers
        )

    # -- internals

    def _write_config(self, s: _Server) -> None:
        s.data_dir.mkdir(parents=True, exist_ok=True)
        lines = [
            f"tickTime={self.tick_ms}",
            f"initLimit={math.ceil(INIT_LIMIT_S * 1000 / self.tick_ms)}",
            f"syncLimit={math.ceil(SYNC_LIMIT_S * 1000 / self.tick_ms)}",
            f"dataDir={s.data_dir}",
            f"clientPort={s.client_port}",
            "clientPortAddress=127.0.0.1",
            f"minSessionTimeout={2 * self.tick_ms}",
            f"maxSessionTimeout={max(MAX_SESSION_TIMEOUT_MS, 2 * self.tick_ms)}",
            "maxClientCnxns=0",
            "admin.enableServer=false",
            "4lw.commands.whitelist=*",
            f"snapCount={SNAP_COUNT}",
            f"snapSizeLimitInKb={SNAP_SIZE_LIMIT_KB}",
            f"preAllocSize={PREALLOC_KB}",
            f"autopurge.snapRetainCount={SNAP_RETAIN_COUNT}",
            f"autopurge.purgeInterval={PURGE_INTERVAL_H}",
        ]
        if self.size > 1:
            (s.data_dir / "myid").write_text(f"{s.index + 1}\n")
            for o in self.servers:
                lines.append(f"server.{o.index + 1}=127.0.0.1:{o.peer_port}:{o.election_port}")
        s.config.write_text("\n".join(lines) + "\n")
