"""Issue 11 item 6 on a real master: when its SQLite registry refuses a write, SetRoleWeight
answers UNAVAILABLE and the role is not listed; once the store takes writes again, it is."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from mesoslite._proto.v1 import operator_pb2, operator_pb2_grpc

from .agent_support import Daemon, start_master


@pytest.fixture
def master(tmp_path: Path) -> Iterator[tuple[Daemon, str, Path]]:
    daemon, address = start_master(tmp_path / "master")
    try:
        yield daemon, address, tmp_path / "master" / "registry.sqlite"
    finally:
        daemon.stop()


def refuse_role_writes(db: Path, refuse: bool) -> None:
    """Make the registry file itself refuse (or take again) role-weight rows: a trigger
    that another connection adds, as a full or failing disk would, without one."""
    with sqlite3.connect(db, isolation_level=None) as conn:
        if refuse:
            conn.execute(
                "CREATE TRIGGER refuse_roles BEFORE INSERT ON objects "
                "WHEN NEW.kind = 'roles' BEGIN SELECT RAISE(ABORT, 'disk refused'); END"
            )
        else:
            conn.execute("DROP TRIGGER refuse_roles")
    conn.close()


def roles(stub: operator_pb2_grpc.OperatorStub) -> dict[str, float]:
    got = stub.GetRoles(operator_pb2.GetRolesRequest(), timeout=5)
    return {r.role: r.weight for r in got.roles}


def test_a_role_weight_the_registry_refused_is_not_listed(
    master: tuple[Daemon, str, Path],
) -> None:
    _, address, db = master
    assert db.exists()
    with grpc.insecure_channel(address) as channel:
        stub = operator_pb2_grpc.OperatorStub(channel)
        refuse_role_writes(db, True)
        with pytest.raises(grpc.RpcError) as failed:
            stub.SetRoleWeight(operator_pb2.SetRoleWeightRequest(role="eng", weight=2), timeout=5)
        assert failed.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "disk refused" in failed.value.details()
        assert "eng" not in roles(stub)
        refuse_role_writes(db, False)
        stub.SetRoleWeight(operator_pb2.SetRoleWeightRequest(role="eng", weight=2), timeout=5)
        assert roles(stub)["eng"] == 2.0
