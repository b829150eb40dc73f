"""Where the ZooKeeper registry keeps each object, and reading them all (blocking).

Shared by the leader's store (`registry.zookeeper`) and a standby's mirror
(`registry.standby`), which read the same layout.
"""

from __future__ import annotations

from urllib.parse import quote, unquote

from mesoslite.master.registry.base import KINDS, META, ObjectKey
from mesoslite.master.registry.bounded import BoundedCalls


def node_name(key: str) -> str:
    # A role may be `eng/ml`; `.` and `..` are not znode names.
    return quote(key, safe="").replace(".", "%2E")


def object_path(path: str, key: ObjectKey) -> str:
    """The znode of object `key` under the registry at `path`."""
    kind, name = key
    return f"{path}/meta" if kind == META else f"{path}/{kind}/{node_name(name)}"


def read_objects(zk: BoundedCalls, path: str, deadline: float) -> dict[ObjectKey, bytes]:
    """Every object's record under the registry at `path`, `meta` included if present:
    the listings, then every object, each step's calls pipelined."""
    from kazoo.exceptions import NoNodeError

    client = zk.client
    kinds = zk.wait_all(
        [client.get_children_async(f"{path}/{k}") for k in KINDS],
        deadline, "list the registry", (NoNodeError,),
    )
    keys: list[ObjectKey] = [(META, "")]
    for kind, names in zip(KINDS, kinds, strict=True):
        if not isinstance(names, Exception):
            keys += [(kind, unquote(n)) for n in names]
    results = [client.get_async(object_path(path, k)) for k in keys]
    values = zk.wait_all(results, deadline, "read the registry", (NoNodeError,))
    return {
        key: bytes(v[0] or b"")
        for key, v in zip(keys, values, strict=True) if not isinstance(v, Exception)
    }
