"""Real ZooKeeper servers for tests: `mesoslite.local.zookeeper`'s launcher, plus what only
tests need.

Like `kazoo.testing`::

    with ZooKeeperCluster(tmp_path / "zk", size=3) as zk:
        url = zk.url("/mesoslite")            # zk://127.0.0.1:p1,127.0.0.1:p2,.../mesoslite
        zk.kill(0)                            # SIGKILL member 0; zk.start(0) brings it back
        zk.expire_session(kazoo_client)       # expire an in-process client's session

`ZooKeeperProxy` sits between one client and ZooKeeper so a test can cut that client off
(`cut()`) while others stay connected.
"""

from __future__ import annotations

import select
import socket
import threading
from collections.abc import Sequence
from typing import Any

from mesoslite.local import zookeeper as _local
from mesoslite.local.zookeeper import (
    CLASSPATH_ENV,
    DEFAULT_START_TIMEOUT_S,
    DEFAULT_TICK_MS,
    HEAP_MB,
    ZooKeeperNotInstalledError,
    ZooKeeperStartError,
    find_classpath,
    four_letter,
    zookeeper_available,
)

__all__ = [
    "CLASSPATH_ENV", "DEFAULT_START_TIMEOUT_S", "DEFAULT_TICK_MS", "HEAP_MB",
    "ZooKeeperCluster", "ZooKeeperNotInstalledError", "ZooKeeperProxy", "ZooKeeperStartError",
    "find_classpath", "four_letter", "zookeeper_available",
]


class ZooKeeperCluster(_local.ZooKeeperCluster):
    """`mesoslite.local.zookeeper.ZooKeeperCluster` with `expire_session` for tests."""

    def expire_session(self, client: Any, timeout_s: float = 10.0) -> None:
        """Expire an in-process kazoo client's session (as `kazoo.testing` does): another
        client joins the same session and closes it; `client` then sees LOST."""
        from kazoo.client import KazooClient
        from kazoo.protocol.states import KazooState

        lost = threading.Event()

        def watch(state: KazooState) -> None:
            if state == KazooState.LOST:
                lost.set()

        client.add_listener(watch)
        session_id, password = client.client_id
        other = KazooClient(hosts=self.hosts, client_id=(session_id, password), timeout=timeout_s)
        other.start(timeout=timeout_s)
        other.stop()
        other.close()
        if not lost.wait(timeout_s):
            raise ZooKeeperStartError(f"the session did not expire in {timeout_s:g}s")


class ZooKeeperProxy:
    """A TCP proxy from a free loopback port to ZooKeeper, to cut one client off.

    `cut()` closes every connection through it and refuses new ones until `heal()`: the
    client behind it sees ZooKeeper vanish while everybody else stays connected.

    Args:
        targets: `host:port` of each ZooKeeper server; a connection goes to the first
            that accepts.
    """

    def __init__(self, targets: Sequence[str]) -> None:
        self.targets = list(targets)
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = int(self._listener.getsockname()[1])
        self._cut = False
        self._closed = False
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._thread = threading.Thread(target=self._accept, name="zk-proxy", daemon=True)
        self._thread.start()

    @property
    def hosts(self) -> str:
        return f"127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return f"zk://{self.hosts}/{path.strip('/')}"

    def cut(self) -> None:
        with self._lock:
            self._cut = True
            pairs, self._pairs = self._pairs, []
        for a, b in pairs:
            _close(a)
            _close(b)

    def heal(self) -> None:
        with self._lock:
            self._cut = False

    def close(self) -> None:
        self._closed = True
        self.cut()
        _close(self._listener)
        self._thread.join(timeout=2)

    def __enter__(self) -> ZooKeeperProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                ready, _, _ = select.select([self._listener], [], [], 0.2)
                if not ready:
                    continue
                conn, _ = self._listener.accept()
            except OSError:
                return
            if self._cut:
                _close(conn)
                continue
            upstream = None
            for target in self.targets:
                host, _, port = target.rpartition(":")
                try:
                    upstream = socket.create_connection((host, int(port)), timeout=2)
                    upstream.settimeout(None)
                    break
                except OSError:
                    continue
            if upstream is None:
                _close(conn)
                continue
            with self._lock:
                self._pairs.append((conn, upstream))
            for a, b in ((conn, upstream), (upstream, conn)):
                threading.Thread(target=_pump, args=(a, b), daemon=True).start()


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        _close(src)
        _close(dst)


def _close(s: socket.socket) -> None:
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        s.close()
    except OSError:
        pass
