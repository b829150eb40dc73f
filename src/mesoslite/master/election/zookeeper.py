"""`ZooKeeperContender`: leader election with ephemeral sequential znodes, via kazoo.

Design:
- Each master creates `PATH/election/master-<seq>` (ephemeral, sequential) holding its info
  as JSON (id, address, host, port, version, pid). The lowest sequence leads; everybody
  watches the children of `PATH/election` and re-reads them when they change.
- kazoo runs its own threads. Its callbacks (the connection listener and child watches)
  only do `loop.call_soon_threadsafe(...)`; every kazoo call runs in a thread through
  `asyncio.to_thread`, never on the loop.
- A leader stops acting as leader at SUSPENDED (kazoo's read timeout is 2/3 of the session
  timeout, so this comes before the server expires the session and lets another master
  lead). If the connection comes back within the session (CONNECTED), it leads again
  (RESUMED); if not within the session timeout, or on LOST, it is DEPOSED for good.
- A standby that loses its session joins again with a new znode once reconnected.
- `close()` deletes our znode before it ends the session, so that on an orderly stop the
  next master is elected at once by its watch, not after our session times out.
- ZooKeeper grants a session timeout within its `minSessionTimeout`..`maxSessionTimeout`
  (by default 2 and 20 ticks), which may not be the one asked for. The granted one is what
  decides when a dead leader's znode goes, so it is logged (a warning if it differs) and
  is the one our own step-down timer uses (`granted_session_timeout_s`).
- ZooKeeper that cannot be reached at start is retried forever with capped, jittered
  backoff, and each failed attempt is logged with the hosts and what to check.
- Every ZooKeeper call is bounded: the client reconnects at most `ZK_RECONNECT_MAX_S` apart
  and each request waits at most the session timeout (`zk_wait`), so that no step of the
  election sits in a kazoo call while ZooKeeper is away.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from typing import Any

from mesoslite.discovery import (
    CONTENDER_PREFIX,
    ZkUrl,
    bounded_zk_client,
    contender_sequence,
    leader_info_blocking,
    zk_wait,
)
from mesoslite.leader import Backoff
from mesoslite.master.election.base import Change, LeadershipChange

logger = logging.getLogger(__name__)

CONNECT_BACKOFF_MIN_S = 0.5
CONNECT_BACKOFF_MAX_S = 10.0
# How long closing the kazoo client may take before we stop waiting for it.
CLOSE_TIMEOUT_S = 2.0


class ZooKeeperContender:
    """See the module docstring.

    Args:
        url: the ZooKeeper hosts and this cluster's path.
        info: this master's info, stored as JSON in its znode (`address` is required).
        session_timeout_s: the ZooKeeper session timeout asked for.
    """

    def __init__(
        self, url: ZkUrl, info: dict[str, Any], *, session_timeout_s: float, auth: Any = None
    ) -> None:
        self.url = url
        self.auth = auth  # `security.zk_auth.ZkAuth` or None (`--zk-auth-file`)
        self.info = info
        self.session_timeout_s = session_timeout_s
        self.client: Any = None
        self.node = ""  # our znode's name under the election path, once created
        self._loop: asyncio.AbstractEventLoop | None = None
        self._changes: asyncio.Queue[LeadershipChange] = asyncio.Queue()
        self._wake = asyncio.Event()
        self._connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._leader_address = ""
        self._epoch = 0
        self._leading = False
        self._suspended = False
        self._deposed = False
        self._suspend_timer: asyncio.TimerHandle | None = None
        self._granted_s = 0.0
        # A watch fired and `_observe` has not acted on it yet (see `settled`).
        self._observing = False
        self._observed = asyncio.Event()
        self._observed.set()

    @property
    def elected(self) -> bool:
        """True from our election (before the master has recovered) until suspended or
        closed."""
        return self._leading and not self._deposed

    def look_again(self) -> None:
        """Read the election again now (a client called us as if we led, see `settled`)."""
        if self._connected.is_set() and not self._deposed:
            self._changed()

    async def settled(self, timeout_s: float) -> None:
        """Wait (at most `timeout_s`) until the election as ZooKeeper has it is acted on.

        A client that found this master in ZooKeeper the moment the leader's znode went can
        call before our own watch has made us leader; the guard has us `look_again` and
        waits for this first, rather than redirect it to the dead leader (and have it wait
        a backoff, #15)."""
        if self._observing and not self._deposed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._observed.wait(), timeout_s)

    @property
    def granted_session_timeout_s(self) -> float:
        """The session timeout ZooKeeper granted (0 until the first session)."""
        return self._granted_s

    @property
    def leader_address(self) -> str:
        return self._leader_address

    @property
    def epoch(self) -> int:
        return self._epoch

    @property
    def call_timeout_s(self) -> float:
        """The longest any one ZooKeeper call may take."""
        return self.session_timeout_s

    @property
    def node_path(self) -> str:
        return f"{self.url.election_path}/{self.node}" if self.node else ""

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.create_task(self._run(), name="zk-election")

    async def next_change(self) -> LeadershipChange:
        return await self._changes.get()

    async def close(self) -> None:
        self._deposed = True  # a clean stop is not a loss of leadership
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        client, self.client = self.client, None
        if client is not None:
            node = self.node_path
            try:
                await asyncio.wait_for(asyncio.to_thread(_resign, client, node), CLOSE_TIMEOUT_S)
            except TimeoutError:
                logger.warning("closing the ZooKeeper client took over %gs", CLOSE_TIMEOUT_S)

    # ------------------------------------------------------------------ on the loop

    async def _run(self) -> None:
        await self._connect()
        while not self._deposed:
            await self._connected.wait()
            try:
                if not self.node:
                    await self._join()
                await self._observe()
            except asyncio.CancelledError:
                raise
            except Exception as e:
                # Connection loss mid-call: wait for the next state change and look again.
                logger.debug("election step failed: %s", e)
                self._settle()
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), 1.0)
                except TimeoutError:
                    pass

    async def _connect(self) -> None:
        backoff = Backoff(CONNECT_BACKOFF_MIN_S, CONNECT_BACKOFF_MAX_S)
        attempt = 0
        while True:
            attempt += 1
            client = bounded_zk_client(
                self.url.hosts_string, session_timeout_s=self.session_timeout_s, auth=self.auth
            )
            client.add_listener(self._listener)
            _on_granted_timeout(client, self._granted_threadsafe)
            try:
                await asyncio.to_thread(client.start, self.session_timeout_s + 1.0)
            except Exception as e:
                await asyncio.to_thread(_stop, client)
                delay = backoff.next()
                logger.error(
                    "cannot reach ZooKeeper at %s (attempt %d: %s): is it running and is "
                    "--zk right? retrying in %.1fs",
                    self.url.hosts_string, attempt, type(e).__name__, delay,
                )
                await asyncio.sleep(delay)
                continue
            self.client = client
            self._connected.set()
            logger.info(
                "connected to ZooKeeper hosts=%s path=%s session_timeout_s=%g",
                self.url.hosts_string, self.url.path, self.session_timeout_s,
            )
            return

    async def _join(self) -> None:
        data = json.dumps(self.info, sort_keys=True).encode()
        client, timeout = self.client, self.call_timeout_s
        # A create that timed out may still have happened: adopt that znode rather than
        # add a second one of ours, which would stand in the line as a leader nobody is.
        mine = await asyncio.to_thread(self._own_node_blocking, client, timeout)
        if mine:
            self.node = mine
            logger.info("found our election znode from an earlier attempt node=%s", mine)
            return
        path = await asyncio.to_thread(
            lambda: zk_wait(
                client.create_async(
                    f"{self.url.election_path}/{CONTENDER_PREFIX}", data,
                    ephemeral=True, sequence=True, makepath=True,
                    # With auth, still readable by all: agents and the CLI find the leader here.
                    acl=self.auth.readable_acl() if self.auth is not None else None,
                ),
                timeout,
            )
        )
        self.node = path.rsplit("/", 1)[-1]
        logger.info("joined the election node=%s", self.node)

    def _own_node_blocking(self, client: Any, timeout: float) -> str:
        """The name of a contender znode that this session owns, or ''. In a thread."""
        from kazoo.exceptions import NoNodeError

        session_id = client.client_id[0] if client.client_id else None
        try:
            children = zk_wait(client.get_children_async(self.url.election_path), timeout)
        except NoNodeError:
            return ""
        for name in children:
            if not name.startswith(CONTENDER_PREFIX):
                continue
            try:
                _, stat = zk_wait(client.get_async(f"{self.url.election_path}/{name}"), timeout)
            except NoNodeError:
                continue
            if session_id is not None and stat.ephemeralOwner == session_id:
                return str(name)
        return ""

    async def _observe(self) -> None:
        """Read the contenders, act on what changed, and wait for the next change."""
        self._wake.clear()
        client, timeout = self.client, self.call_timeout_s
        children = await asyncio.to_thread(
            lambda: zk_wait(client.get_children_async(self.url.election_path, self._watch), timeout)
        )
        ours = [c for c in children if c.startswith(CONTENDER_PREFIX)]
        if self.node not in ours:
            # Our znode is gone: the session that owned it expired.
            self._settle()
            if self._leading or self._suspended:
                self._depose("our election znode is gone (the ZooKeeper session expired)")
                return
            logger.warning("our election znode is gone; joining again node=%s", self.node)
            self.node = ""
            return
        lowest = min(ours, key=contender_sequence)
        if lowest == self.node:
            self._leader_address = str(self.info.get("address", ""))
            if not self._leading and not self._suspended and not self._deposed:
                self._leading = True
                self._epoch = contender_sequence(self.node)
                logger.info("elected leader node=%s epoch=%d", self.node, self._epoch)
                self._changes.put_nowait(LeadershipChange(Change.ELECTED, f"node {self.node}"))
        else:
            info = await asyncio.to_thread(
                lambda: leader_info_blocking(client, self.url, timeout_s=timeout)
            )
            address = str(info.get("address", "")) if info else ""
            if address != self._leader_address:
                logger.info("leader is %s node=%s", address or "unknown", lowest)
            self._leader_address = address
        self._settle()
        await self._wake.wait()

    def _changed(self) -> None:
        self._observing = True
        self._observed.clear()
        self._wake.set()

    def _settle(self) -> None:
        self._observing = False
        self._observed.set()

    def _on_state(self, state: str) -> None:
        if self._deposed:
            return
        if state == "SUSPENDED":
            self._connected.clear()
            if self._leading:
                self._leading = False
                self._suspended = True
                logger.error("lost contact with ZooKeeper: not leading until it comes back")
                self._changes.put_nowait(
                    LeadershipChange(Change.SUSPENDED, "lost contact with ZooKeeper")
                )
                assert self._loop is not None
                timeout_s = self._granted_s or self.session_timeout_s
                self._suspend_timer = self._loop.call_later(
                    timeout_s, self._depose,
                    f"no contact with ZooKeeper for the session timeout "
                    f"({timeout_s:g}s): the session has expired",
                )
        elif state == "CONNECTED":
            self._connected.set()
            if self._suspended and not self._deposed:
                self._cancel_suspend_timer()
                self._suspended = False
                self._leading = True
                logger.info("contact with ZooKeeper is back within the session: leading again")
                self._changes.put_nowait(LeadershipChange(Change.RESUMED, "ZooKeeper is back"))
        elif state == "LOST":
            self._connected.clear()
            if self._leading or self._suspended:
                self._depose("the ZooKeeper session expired")
            else:
                self.node = ""
        self._wake.set()

    def _granted(self, granted_s: float) -> None:
        if granted_s == self._granted_s:
            return
        self._granted_s = granted_s
        if abs(granted_s - self.session_timeout_s) > 0.001:
            logger.warning(
                "ZooKeeper granted a session timeout of %gs, not the %gs asked (its "
                "minSessionTimeout/maxSessionTimeout): a dead leader is replaced after %gs",
                granted_s, self.session_timeout_s, granted_s,
            )
        else:
            logger.info("ZooKeeper granted session_timeout_s=%g", granted_s)

    def _depose(self, reason: str) -> None:
        if self._deposed:
            return
        self._cancel_suspend_timer()
        self._deposed = True
        self._leading = False
        self._suspended = False
        logger.error("no longer leading: %s", reason)
        self._changes.put_nowait(LeadershipChange(Change.DEPOSED, reason))
        self._wake.set()

    def _cancel_suspend_timer(self) -> None:
        if self._suspend_timer is not None:
            self._suspend_timer.cancel()
            self._suspend_timer = None

    # ------------------------------------------------------------------ kazoo's threads

    def _listener(self, state: Any) -> None:
        # Rule 9: kazoo's threads only hand events to the loop.
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._on_state, str(state))

    def _watch(self, event: Any) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._changed)

    def _granted_threadsafe(self, granted_s: float) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._granted, granted_s)


def _on_granted_timeout(client: Any, report: Callable[[float], None]) -> None:
    """Call `report(seconds)` with the session timeout ZooKeeper grants, at each connect.

    kazoo does not keep it: its connection's `_connect` returns a read timeout of 2/3 of it
    and moves on, so that method is wrapped (on this client only). Without that private
    method (another kazoo), nothing is reported and the asked timeout is used."""
    connection: Any = getattr(client, "_connection", None)
    connect = getattr(connection, "_connect", None)
    if connect is None:
        logger.debug("cannot learn the granted session timeout from this kazoo")
        return

    def connect_and_report(*args: Any, **kwargs: Any) -> Any:
        read_timeout_ms, connect_timeout_ms = connect(*args, **kwargs)
        report(round(read_timeout_ms * 1.5) / 1000.0)
        return read_timeout_ms, connect_timeout_ms

    connection._connect = connect_and_report


def _resign(client: Any, node_path: str) -> None:
    """Delete our election znode, then end the session. In a thread.

    The explicit delete fires the standbys' child watches one round trip before the session
    close would, and does not depend on the close reaching the server (issue #15: SIGTERM
    hands leadership over at once, not a session timeout later)."""
    if node_path:
        try:
            zk_wait(client.delete_async(node_path), CLOSE_TIMEOUT_S)
            logger.info("deleted our election znode node=%s", node_path)
        except Exception as e:  # gone already, or ZooKeeper away: the close still ends it
            logger.debug("deleting our election znode failed: %r", e)
    _stop(client)


def _stop(client: Any) -> None:
    try:
        client.stop()
        client.close()
    except Exception:
        logger.debug("stopping the kazoo client failed", exc_info=True)
