"""`mesoslite master list`: which master leads and which stand by, with their addresses.

With `--master zk://...` the masters are the contenders in ZooKeeper's election znodes, in
their order (the first leads); with `HOST:PORT[,HOST:PORT...]` they are the addresses given.
Each is asked its gRPC health (`grpc.health.v1`): SERVING while it leads, NOT_SERVING as a
standby, or unreachable. A leader's znode outlives a master killed with SIGKILL until its
ZooKeeper session expires: HEALTH shows that it no longer answers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import click

from mesoslite.cli import CliConfig
from mesoslite.cli._watch import watchable

MASTER_HEADERS = ("ROLE", "ADDRESS", "HEALTH", "ID", "VERSION", "PID")
# How long each master's health check and each ZooKeeper call may take.
PROBE_TIMEOUT_S = 2.0


@dataclass(frozen=True, slots=True)
class MasterRow:
    # "leader", "standby", or "unknown" (a listed address that does not answer).
    role: str
    address: str
    # "SERVING", "NOT_SERVING" or "UNREACHABLE" (gRPC health of "").
    health: str
    id: str = ""
    version: str = ""
    pid: int | None = None


@click.group()
def master() -> None:
    """See the masters: which one leads, which stand by."""


@master.command("list")
@watchable
@click.option("--json", "as_json", is_flag=True, help="print a JSON array (keys: see below)")
@click.pass_obj
def list_masters(cfg: CliConfig, as_json: bool) -> None:
    """List the masters, the leader first, with their addresses and health.

    With --master zk://..., the masters contending in ZooKeeper; with a list of addresses,
    those (a standalone master is the leader of a list of one).

    \b
    JSON keys: role ("leader", "standby", "unknown"), address, health ("SERVING",
    "NOT_SERVING", "UNREACHABLE"), id, version, pid (null when not known).
    """
    import json

    from mesoslite.cli import _output as out
    from mesoslite.discovery import is_zk_url

    rows = _from_zookeeper(cfg.master) if is_zk_url(cfg.master) else _from_list(cfg.master)
    if as_json:
        click.echo(json.dumps([asdict(r) for r in rows], indent=2))
        return
    table = [
        (r.role, r.address, r.health, r.id or out.NONE, r.version or out.NONE,
         out.NONE if r.pid is None else r.pid)
        for r in rows
    ]
    click.echo(out.table(MASTER_HEADERS, table))


def _from_zookeeper(text: str) -> list[MasterRow]:
    from mesoslite.discovery import parse_zk_url

    docs = contenders(parse_zk_url(text))
    return [
        MasterRow(
            role="leader" if i == 0 else "standby",
            address=str(d.get("address", "")),
            health=health_of(str(d.get("address", ""))),
            id=str(d.get("id", "")),
            version=str(d.get("version", "")),
            pid=d["pid"] if isinstance(d.get("pid"), int) else None,
        )
        for i, d in enumerate(docs)
    ]


def _from_list(text: str) -> list[MasterRow]:
    from mesoslite.discovery import parse_masters

    rows = []
    for address in parse_masters(text):
        health = health_of(address)
        role = {"SERVING": "leader", "NOT_SERVING": "standby"}.get(health, "unknown")
        rows.append(MasterRow(role=role, address=address, health=health))
    rows.sort(key=lambda r: r.role != "leader")
    return rows


def contenders(url: Any, timeout_s: float = PROBE_TIMEOUT_S) -> list[dict[str, Any]]:
    """Every contender's info (its znode's JSON), in election order: the first leads.

    Raises:
        UnavailableError: ZooKeeper cannot be reached in `timeout_s`.
    """
    import json

    from kazoo.exceptions import NoNodeError

    from mesoslite.discovery import (
        CONTENDER_PREFIX,
        bounded_zk_client,
        contender_sequence,
        zk_wait,
    )
    from mesoslite.errors import UnavailableError

    client = bounded_zk_client(url.hosts_string, session_timeout_s=max(timeout_s, 2.0))
    try:
        try:
            client.start(timeout=timeout_s)
        except Exception:
            raise UnavailableError(
                f"cannot reach ZooKeeper at {url.hosts_string} in {timeout_s:g}s"
            ) from None
        try:
            children = zk_wait(client.get_children_async(url.election_path), timeout_s)
        except NoNodeError:
            return []
        docs = []
        names = sorted(
            (c for c in children if c.startswith(CONTENDER_PREFIX)), key=contender_sequence
        )
        for name in names:
            try:
                data, _ = zk_wait(client.get_async(f"{url.election_path}/{name}"), timeout_s)
                doc = json.loads(data.decode())
            except (NoNodeError, ValueError):
                continue  # gone since the listing, or not a master's info
            if isinstance(doc, dict):
                docs.append(doc)
        return docs
    finally:
        try:
            client.stop()
            client.close()
        except Exception:  # noqa: BLE001 - closing is best effort
            pass


def health_of(address: str, timeout_s: float = PROBE_TIMEOUT_S) -> str:
    """The gRPC health of "" at `address`: SERVING, NOT_SERVING, or UNREACHABLE."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from mesoslite.tls_settings import client_security
    from mesoslite.transport import open_channel

    if not address:
        return "UNREACHABLE"
    with open_channel(address, client_security(), aio=False, options=[]) as channel:
        stub: Any = health_pb2_grpc.HealthStub(channel)
        try:
            reply = stub.Check(
                health_pb2.HealthCheckRequest(service=""), timeout=timeout_s
            )
        except grpc.RpcError:
            return "UNREACHABLE"
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))
