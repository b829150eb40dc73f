"""Finding the leading master: `zk://` URLs, lists of masters, and the `MasterLocator`.

A master is named three ways, everywhere a client takes `--master`:

- `HOST:PORT`: one master (standalone, or any master of an HA set: a standby redirects);
- `HOST:PORT,HOST:PORT,...`: a list; clients try them in turn and follow a standby's
  redirect to the leader it names;
- `zk://HOST:PORT[,HOST:PORT...]/PATH`: ask ZooKeeper which master leads (the contender
  with the lowest sequence under `PATH/election`, whose data is its info as JSON).

kazoo is imported only when a `zk://` URL is used, and its blocking calls run in a thread
(`asyncio.to_thread`), never on the caller's event loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
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


def leader_info_blocking(client: Any, url: ZkUrl) -> dict[str, Any] | None:
    """The leading contender's info (its znode's JSON, plus `node`), or None if nobody leads.

    Runs kazoo calls: call it from a thread, never on an event loop.
    """
    from kazoo.exceptions import NoNodeError

    try:
        children = client.get_children(url.election_path)
    except NoNodeError:
        return None
    for name in sorted(
        (c for c in children if c.startswith(CONTENDER_PREFIX)), key=contender_sequence
    ):
        try:
            data, _ = client.get(f"{url.election_path}/{name}")
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
    from kazoo.client import KazooClient

    zk = parse_zk_url(url) if isinstance(url, str) else url
    client = KazooClient(hosts=zk.hosts_string, timeout=timeout_s)
    try:
        try:
            client.start(timeout=timeout_s)
        except Exception:
            raise UnavailableError(
                f"cannot reach ZooKeeper at {zk.hosts_string} in {timeout_s:g}s"
            ) from None
        info = leader_info_blocking(client, zk)
    finally:
        client.stop()
        client.close()
    if info is None or not info.get("address"):
        raise UnavailableError(f"no master leads in ZooKeeper at {zk}")
    return str(info["address"])


class MasterLocator:
    """Where a client should look for the leading master now; see the module docstring.

    `current()` gives the address to try; after a failure, `failed(address)` moves a list on
    to its next master, and `redirect(leader)` (from a standby's NotLeaderError) makes the
    next `current()` answer that leader. For `zk://`, `current()` asks ZooKeeper on one
    long-lived kazoo client.

    Args:
        spec: `HOST:PORT`, `HOST:PORT,HOST:PORT,...` or `zk://HOST:PORT[,...]/PATH`.
        zk_timeout_s: how long to wait for ZooKeeper on each lookup.
    """

    def __init__(self, spec: str, *, zk_timeout_s: float = DEFAULT_ZK_TIMEOUT_S) -> None:
        self.spec = spec.strip()
        self.zk: ZkUrl | None = parse_zk_url(self.spec, "master") if is_zk_url(spec) else None
        self.addresses: list[str] = [] if self.zk else parse_masters(self.spec)
        self.zk_timeout_s = zk_timeout_s
        self._index = 0
        self._hint = ""
        self._client: Any = None
        self._client_lock = threading.Lock()

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
        if self._hint:
            hint, self._hint = self._hint, ""
            return hint
        if self.zk is None:
            return self.addresses[self._index % len(self.addresses)]
        return await asyncio.to_thread(self._lookup)

    def redirect(self, leader_address: str) -> None:
        if leader_address:
            self._hint = parse_address(leader_address)

    def failed(self, address: str) -> None:
        if self.zk is None and self.addresses[self._index % len(self.addresses)] == address:
            self._index += 1

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await asyncio.to_thread(_stop_client, client)

    def _lookup(self) -> str:
        assert self.zk is not None
        with self._client_lock:
            if self._client is None:
                from kazoo.client import KazooClient

                client = KazooClient(hosts=self.zk.hosts_string, timeout=self.zk_timeout_s)
                try:
                    client.start(timeout=self.zk_timeout_s)
                except Exception:
                    _stop_client(client)
                    raise UnavailableError(
                        f"cannot reach ZooKeeper at {self.zk.hosts_string} "
                        f"in {self.zk_timeout_s:g}s"
                    ) from None
                self._client = client
            client = self._client
        try:
            info = leader_info_blocking(client, self.zk)
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
