"""A leader whose ZooKeeper goes away while registry writes are in flight exits with status 1
within its session timeout and a few seconds, whatever call it is stuck in (issue 11, item
5: it logged "master stopping" and sat in a kazoo call until ZooKeeper came back).

ZooKeeper is SIGSTOPped, not killed: its port stays open and answers nothing, so the
master's kazoo calls hang rather than fail at once, which is the case that hung.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

from mesoslite.cli._client import BlockingOperatorClient
from mesoslite.errors import MesosliteError
from mesoslite.master.main import EXIT_GRACE_S
from mesoslite.testing.ha_cluster import HACluster
from mesoslite.testing.pytest_plugin import require_zookeeper
from mesoslite.testing.zookeeper import ZooKeeperCluster

SESSION_TIMEOUT_S = 4.0
# kazoo notices a silent server after 2/3 of the session timeout, then the contender
# deposes the leader after the session timeout, then the orderly shutdown has its grace.
EXIT_BOUND_S = SESSION_TIMEOUT_S * 2 / 3 + SESSION_TIMEOUT_S + EXIT_GRACE_S + 3.0
WRITERS = 3
WRITES_EACH = 200


def keep_writing(address: str, stop: threading.Event, n: int) -> None:
    """Registry writes, one after another, until the master stops answering (bounded)."""
    for i in range(WRITES_EACH):
        if stop.is_set():
            return
        try:
            with BlockingOperatorClient(address, timeout_s=1.0) as c:
                c.set_role_weight(f"w{n}", 1.0 + i % 5)
        except MesosliteError:
            time.sleep(0.05)


def test_a_leader_cut_off_from_zookeeper_mid_write_exits_1_within_its_session_timeout(
    tmp_path: Path,
) -> None:
    require_zookeeper()
    with ZooKeeperCluster(tmp_path / "zk", size=1) as zk:
        ha = HACluster(
            tmp_path / "ha", zk.url("/deposed"), masters=1, agents=0,
            session_timeout_s=SESSION_TIMEOUT_S,
        )
        with ha:
            master = ha.masters[0]
            address = ha.addresses[0]
            stop = threading.Event()
            writers = [
                threading.Thread(target=keep_writing, args=(address, stop, n), daemon=True)
                for n in range(WRITERS)
            ]
            for w in writers:
                w.start()
            zk_pid = zk.servers[0].daemon.pid
            assert zk_pid is not None
            time.sleep(0.5)  # writes are flowing
            os.kill(zk_pid, signal.SIGSTOP)
            cut = time.monotonic()
            try:
                exited = master.wait(EXIT_BOUND_S + 10.0)
                took = time.monotonic() - cut
            finally:
                os.kill(zk_pid, signal.SIGCONT)
                stop.set()
                for w in writers:
                    w.join(15.0)
            assert exited, f"the deposed leader still runs {took:.1f}s after ZooKeeper went away"
            assert master.returncode == 1, master.describe_exit()
            assert took < EXIT_BOUND_S, f"exited after {took:.1f}s, bound {EXIT_BOUND_S:.1f}s"
            log = master.log_path.read_text()
            assert "no longer leading" in log
        print(f"deposed leader exited 1 after {took:.2f}s (bound {EXIT_BOUND_S:.1f}s)")
