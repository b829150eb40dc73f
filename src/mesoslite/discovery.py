"""Finding the leading master: `zk://` URLs, lists of masters, and the `MasterLocator`.

A master is named three ways, everywhere a client takes `--master`:

- `HOST:PORT`: one master (standalone, or any master of an HA set: a standby redirects);
- `HOST:PORT,HOST:PORT,...`: a list; clients try them in turn and follow a standby's
  redirect to the leader it names;
- `zk://HOST:PORT[,HOST:PORT...]/PATH`: ask ZooKeeper which master leads (the contender
  with the lowest sequence under `PATH/election`, whose data is its info as JSON).

kazoo is imported only when a `zk://` URL is used, and its blocking calls run in a thread
(`asyncio.to_thread`), never on the caller's event loop. Every ZooKeeper call is bounded:
clients reconnect with a capped retry (`bounded_zk_client`), and each request waits at most
its timeout (`zk_wait`), so that a client learns of a ZooKeeper that came back within about
a second, not after kazoo's default backoff of up to a minute.

`MasterLocator` watches the election znodes: when they change (a leader died, a new one was
elected) or its ZooKeeper connection comes back, `generation` grows and `wait_changed` wakes
whoever is waiting out a backoff (see `mesoslite.leader`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mesoslite.errors import UnavailableError, ValidationError
from mesoslite.rpc import parse_address

logger = logging.getLogger(__name__)

ZK_SCHEME = "zk://"
ELECTION_DIR = "election"
CONTENDER_PREFIX = "master-"
DEFAULT_ZK_TIMEOUT_S = 5.0
# With zk://, wait at most this long between attempts: the leader ZooKeeper names may be a
# dead one whose znode lingers until its session expires, and the new leader should be
# found soon after that, not one long backoff later.
ZK_RETRY_MAX_S = 0.5
# The longest wait between a kazoo client's attempts to reconnect to ZooKeeper: a client
# learns that ZooKeeper is back within about this long.
ZK_RECONNECT_MAX_S = 1.0
# kazoo multiplies each reconnect delay by a random factor in [1 - j, 1 + j].
_KAZOO_JITTER = 0.25


@dataclass(frozen=True, slots=True)
class ZkUrl:
    """A parsed `zk://host:port[,host:port...]/path`."""

    hosts: tuple[str, ...]
    path: str

    @property
    def hosts_string(self) -> str:
        """`host:port,host:port`, as kazoo takes it."""
        return ",".join(self.hosts)

    @property
    def election_path(self) -> str:
        return f"{self.path}/{ELECTION_DIR}"

    def __str__(self) -> str:
        return f"{ZK_SCHEME}{self.hosts_string}{self.path}"


def is_zk_url(text: str) -> bool:
    return text.strip().startswith(ZK_SCHEME)


def parse_zk_url(text: str, field: str = "zk") -> ZkUrl:
    """Parse `zk://HOST:PORT[,HOST:PORT...]/PATH`.

    Raises:
        ValidationError: the URL is malformed; the message says what is wrong and what is
            allowed.
    """
    raw = text.strip()
    if not raw.startswith(ZK_SCHEME):
        raise ValidationError(
            field, f"must start with zk:// (zk://HOST:PORT[,HOST:PORT...]/PATH), got {text!r}"
        )
    rest = raw[len(ZK_SCHEME) :]
    hosts_part, slash, path = rest.partition("/")
    if not slash or not path.strip("/"):
        raise ValidationError(
            field, f"needs a path after the hosts, e.g. zk://127.0.0.1:2181/mesoslite, got {text!r}"
        )
    if not hosts_part:
        raise ValidationError(field, f"names no ZooKeeper host, got {text!r}")
    hosts = []
    for item in hosts_part.split(","):
        host, sep, port = item.strip().rpartition(":")
        if not item.strip():
            raise ValidationError(field, f"has an empty host in {text!r}")
        if not sep:
            host, port = item.strip(), "2181"
        if not host:
            raise ValidationError(field, f"has an empty host name in {item!r}")
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise ValidationError(field, f"bad port {port!r} in {item!r}: must be 1..65535")
        hosts.append(f"{host}:{port}")
    path = "/" + path.strip("/")
    for part in path.split("/")[1:]:
        if not part or part in (".", "..") or any(ch in part for ch in " \t\n"):
            raise ValidationError(field, f"bad path {path!r}: use /name[/name...]")
    return ZkUrl(tuple(hosts), path)


def parse_masters(text: str, field: str = "master") -> list[str]:
    """`HOST:PORT[,HOST:PORT...]` → the addresses (a `zk://` URL is left to `parse_zk_url`).

    Raises:
        ValidationError: an address is empty or has a bad port.
    """
    items = [t for t in (s.strip() for s in text.split(",")) if t]
    if not items:
        raise ValidationError(field, "address is empty")
    return [parse_address(t) for t in items]


def check_master_spec(text: str, field: str = "master") -> None:
    """Validate any form of `--master` (raises `ValidationError`)."""
    if is_zk_url(text):
        parse_zk_url(text, field)
    else:
        parse_masters(text, field)


def contender_sequence(name: str) -> int:
    """The sequence number of a contender znode `master-0000000007` (7)."""
    digits = name.rsplit("-", 1)[-1]
    return int(digits) if digits.isdigit() else -1


def bounded_zk_client(
    hosts: str, *, session_timeout_s: float, reconnect_max_s: float = ZK_RECONNECT_MAX_S,
    auth: Any = None,
) -> Any:
    """A kazoo client whose reconnect attempts, jitter included, wait at most
    `reconnect_max_s` apart, retried forever (kazoo's default waits up to 60 s).

    `auth` (a `security.zk_auth.ZkAuth`): digest auth on the session, and the znodes it
    creates readable by that user only unless a create names its own ACL."""
    from kazoo.client import KazooClient
    from kazoo.retry import KazooRetry

    cap = max(0.05, reconnect_max_s)
    retry = KazooRetry(
        max_tries=-1, delay=min(0.1, cap), backoff=2, max_jitter=_KAZOO_JITTER,
        max_delay=cap / (1 + _KAZOO_JITTER),
    )
    if auth is not None:
        return KazooClient(
            hosts=hosts, timeout=session_timeout_s, connection_retry=retry,
            auth_data=auth.auth_data, default_acl=auth.private_acl(),
        )
    return KazooClient(hosts=hosts, timeout=session_timeout_s, connection_retry=retry)


def zk_wait(async_result: Any, timeout_s: float) -> Any:
    """The value of a kazoo `*_async` call, waiting at most `timeout_s`.

    Raises:
        UnavailableError: no answer in time (ZooKeeper unreachable or stopped).
        kazoo's own errors (NoNodeError, ...) as the call raised them.
    """
    from kazoo.handlers.threading import KazooTimeoutError

    try:
        return async_result.get(timeout=timeout_s)
    except KazooTimeoutError:
        raise UnavailableError(f"ZooKeeper did not answer in {timeout_s:g}s") from None


def leader_info_blocking(
    client: Any,
    url: ZkUrl,
    *,
    timeout_s: float = DEFAULT_ZK_TIMEOUT_S,
    watch: Callable[[Any], None] | None = None,
) -> dict[str, Any] | None:
    """The leading contender's info (its znode's JSON, plus `node`), or None if nobody leads.

    Each ZooKeeper call waits at most `timeout_s`; `watch`, if given, is set on the election
    znodes' children. Runs kazoo calls: call it from a thread, never on an event loop.
    """
    from kazoo.exceptions import NoNodeError

    try:
        children = zk_wait(client.get_children_async(url.election_path, watch), timeout_s)
    except NoNodeError:
        return None
    for name in sorted(
        (c for c in children if c.startswith(CONTENDER_PREFIX)), key=contender_sequence
    ):
        try:
            data, _ = zk_wait(client.get_async(f"{url.election_path}/{name}"), timeout_s)
        except NoNodeError:
            continue  # it went away between the listing and the read: look at the next
        try:
            info = json.loads(data.decode())
        except ValueError:
            logger.warning("ignored a contender with malformed data node=%s", name)
            continue
        if isinstance(info, dict):
            return {**info, "node": name}
    return None


def lookup_leader(url: ZkUrl | str, timeout_s: float = DEFAULT_ZK_TIMEOUT_S) -> str:
    """Blocking: the address of the leading master registered in ZooKeeper at `url`.

    Raises:
        UnavailableError: ZooKeeper cannot be reached, or no master leads.
    """
    zk = parse_zk_url(url) if isinstance(url, str) else url
    client = bounded_zk_client(zk.hosts_string, session_timeout_s=timeout_s)
    try:
        try:
            client.start(timeout=timeout_s)
        except Exception:
            raise UnavailableError(
                f"cannot reach ZooKeeper at {zk.hosts_string} in {timeout_s:g}s"
            ) from None
        info = leader_info_blocking(client, zk, timeout_s=timeout_s)
    finally:
        _stop_client(client)
    if info is None or not info.get("address"):
        raise UnavailableError(f"no master leads in ZooKeeper at {zk}")
    return str(info["address"])


class MasterLocator:
    """Where a client should look for the leading master now; see the module docstring.

    `current()` gives the address to try; after a failure, `failed(address)` moves a list on
    to its next master, and `redirect(leader)` (from a standby's NotLeaderError) makes the
    next `current()` answer that leader. For `zk://`, `current()` asks ZooKeeper on one
    long-lived kazoo client, and leaves a watch on the election znodes.

    Args:
        spec: `HOST:PORT`, `HOST:PORT,HOST:PORT,...` or `zk://HOST:PORT[,...]/PATH`.
        zk_timeout_s: how long to wait for ZooKeeper on each call (and its session timeout).
        reconnect_max_s: the longest wait between the kazoo client's reconnect attempts.
    """

    def __init__(
        self,
        spec: str,
        *,
        zk_timeout_s: float = DEFAULT_ZK_TIMEOUT_S,
        reconnect_max_s: float = ZK_RECONNECT_MAX_S,
    ) -> None:
        self.spec = spec.strip()
        self.zk: ZkUrl | None = parse_zk_url(self.spec, "master") if is_zk_url(spec) else None
        self.addresses: list[str] = [] if self.zk else parse_masters(self.spec)
        self.zk_timeout_s = zk_timeout_s
        self.reconnect_max_s = reconnect_max_s
        self.generation = 0  # grows when ZooKeeper says the election (or our link) changed
        self._index = 0
        self._hint = ""
        self._client: Any = None
        self._client_lock = threading.Lock()
        self._changed_lock = threading.Lock()
        self._changed = threading.Condition(self._changed_lock)
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []

    @property
    def static(self) -> bool:
        """True for one fixed address (no list, no ZooKeeper)."""
        return self.zk is None and len(self.addresses) == 1

    def backoff_max_s(self, configured_s: float) -> float:
        """The longest wait between attempts: `configured_s`, capped for `zk://`."""
        return min(configured_s, ZK_RETRY_MAX_S) if self.zk else configured_s

    def describe(self) -> str:
        return str(self.zk) if self.zk else ",".join(self.addresses)

    async def current(self) -> str:
        """The address to try now.

        Raises:
            UnavailableError: ZooKeeper cannot be reached or names no leader.
        """
        hint = self._take_hint()
        if hint is not None:
            return hint
        return await asyncio.to_thread(self._lookup)

    def current_blocking(self) -> str:
        """`current()` for callers without an event loop (the CLI)."""
        hint = self._take_hint()
        return hint if hint is not None else self._lookup()

    def redirect(self, leader_address: str) -> None:
        if leader_address:
            self._hint = parse_address(leader_address)

    def failed(self, address: str) -> None:
        if self.zk is None and self.addresses[self._index % len(self.addresses)] == address:
            self._index += 1

    async def wait_changed(self, since: int, timeout_s: float) -> bool:
        """Wait up to `timeout_s` for `generation` to pass `since`; True if it did."""
        loop = asyncio.get_running_loop()
        event = asyncio.Event()
        with self._changed_lock:
            if self.generation != since:
                return True
            self._waiters.append((loop, event))
        try:
            await asyncio.wait_for(event.wait(), max(0.0, timeout_s))
            return True
        except TimeoutError:
            return False
        finally:
            with self._changed_lock:
                self._waiters = [w for w in self._waiters if w[1] is not event]

    def wait_changed_blocking(self, since: int, timeout_s: float) -> bool:
        """`wait_changed` for callers without an event loop."""
        with self._changed:
            return self._changed.wait_for(lambda: self.generation != since, max(0.0, timeout_s))

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await asyncio.to_thread(_stop_client, client)

    def close_blocking(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            _stop_client(client)

    # ------------------------------------------------------------------ in a thread

    def _take_hint(self) -> str | None:
        if self._hint:
            hint, self._hint = self._hint, ""
            return hint
        if self.zk is None:
            return self.addresses[self._index % len(self.addresses)]
        return None

    def _signal_change(self, *_: Any) -> None:
        # Called on kazoo's threads (a watch or a state change): only wake the waiters.
        with self._changed:
            self.generation += 1
            waiters = list(self._waiters)
            self._changed.notify_all()
        for loop, event in waiters:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:
                pass  # that loop is closed

    def _on_state(self, state: Any) -> None:
        if str(state) == "CONNECTED":
            self._signal_change()

    def _started_client(self) -> Any:
        assert self.zk is not None
        with self._client_lock:
            if self._client is None:
                client = bounded_zk_client(
                    self.zk.hosts_string, session_timeout_s=self.zk_timeout_s,
                    reconnect_max_s=self.reconnect_max_s,
                )
                try:
                    client.start(timeout=self.zk_timeout_s)
                except Exception:
                    _stop_client(client)
                    raise UnavailableError(
                        f"cannot reach ZooKeeper at {self.zk.hosts_string} "
                        f"in {self.zk_timeout_s:g}s"
                    ) from None
                client.add_listener(self._on_state)
                self._client = client
            return self._client

    def _lookup(self) -> str:
        assert self.zk is not None
        client = self._started_client()
        if not client.connected:
            # Do not queue a request behind the reconnection: fail now, and let the
            # follower retry when the connection is back (`_on_state` wakes it).
            raise UnavailableError(f"not connected to ZooKeeper at {self.zk} (reconnecting)")
        try:
            info = leader_info_blocking(
                client, self.zk, timeout_s=self.zk_timeout_s, watch=self._signal_change
            )
        except Exception as e:
            raise UnavailableError(
                f"cannot read the leader from ZooKeeper at {self.zk}: {e}"
            ) from None
        if info is None or not info.get("address"):
            raise UnavailableError(f"no master leads in ZooKeeper at {self.zk} yet")
        return str(info["address"])


def _stop_client(client: Any) -> None:
    try:
        client.stop()
        client.close()
    except Exception:  # closing is best effort
        logger.debug("closing a kazoo client failed", exc_info=True)
