"""Limits on what a client may send, on a real local cluster (issue 14, "Limits"): a job spec
is at most 1 MB, a command under 128 KB, and a gRPC request at most 16 MB; each refusal is
clear, prompt, and changes nothing (the job list and the registry's rows are compared)."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from mesoslite._proto.v1 import jobs_pb2, jobs_pb2_grpc
from mesoslite.errors import ResourceExhaustedError, ValidationError
from mesoslite.limits import MAX_COMMAND, MAX_SPEC_BYTES
from mesoslite.rpc import MAX_REQUEST_BYTES
from mesoslite.testing import LocalCluster

SPEC = "name: {name}\ntype: batch\ncommand: {command}\nresources: {{cpus: 0.1, mem: 16}}\n"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    with LocalCluster(tmp_path_factory.mktemp("limits") / "cluster", agents=1) as c:
        yield c


def cli(cluster: LocalCluster, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mesoslite.cli", "--master", cluster.master_address, *args],
        capture_output=True, text=True, timeout=60, input=stdin,
    )


def registry_rows(cluster: LocalCluster) -> dict[tuple[str, str], str]:
    """Every object of the master's SQLite registry, as a digest of its document."""
    path = cluster.work_dir / "master" / "registry.sqlite"
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT kind, key, doc FROM objects").fetchall()
    finally:
        conn.close()
    return {(k, key): hashlib.sha256(bytes(doc, "utf-8") if isinstance(doc, str) else doc)
            .hexdigest() for k, key, doc in rows}


def settled_rows(cluster: LocalCluster) -> dict[tuple[str, str], str]:
    """The registry once the fresh cluster's own writes (an agent's record is written again
    just after it registers) have stopped: two reads 0.3 s apart agree (bounded)."""
    rows = registry_rows(cluster)
    for _ in range(20):
        time.sleep(0.3)
        again = registry_rows(cluster)
        if again == rows:
            return rows
        rows = again
    raise AssertionError("the registry kept changing with no call made")


def job_names(cluster: LocalCluster) -> list[str]:
    with cluster.client() as c:
        return sorted(v.name for v in c.jobs())


def padded(name: str, size: int) -> str:
    """A valid spec of exactly `size` bytes: a comment fills it up."""
    head = SPEC.format(name=name, command="'true'") + "# "
    return head + "x" * (size - len(head) - 1) + "\n"


def test_a_2mb_spec_is_refused_naming_1mb_and_nothing_changes(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    before = (job_names(cluster), settled_rows(cluster))
    spec = padded("huge", 2 * MAX_SPEC_BYTES)
    path = tmp_path / "huge.yaml"
    path.write_text(spec)
    for verb in ("submit", "update", "plan"):
        done = cli(cluster, "job", verb, str(path))
        assert done.returncode == 2, (verb, done.returncode, done.stderr[-500:])
        assert "over the limit of 1 MB" in done.stderr and "2097152 bytes" in done.stderr, verb
        assert len(done.stderr) < 1000  # the spec is not echoed back
    # The master refuses it too, for a client that skips the CLI's own check.
    with cluster.client() as c:
        for update in (False, True):
            with pytest.raises(ValidationError, match=r"2097152 bytes, over the limit of 1 MB"):
                c.submit_job(spec, update=update)
        with pytest.raises(ValidationError, match="over the limit of 1 MB"):
            c.plan_job(spec)
    assert (job_names(cluster), registry_rows(cluster)) == before


def test_a_200kb_command_is_refused_at_submit_naming_the_exec_limit(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    before = (job_names(cluster), settled_rows(cluster))
    spec = SPEC.format(name="longcmd", command="echo " + "x" * 200_000)
    path = tmp_path / "longcmd.yaml"
    path.write_text(spec)
    done = cli(cluster, "job", "submit", str(path))
    assert done.returncode == 2, done.stderr[-500:]
    assert "command: must be under 128 KB" in done.stderr and "200005 bytes" in done.stderr
    assert "MAX_ARG_STRLEN" in done.stderr
    with cluster.client() as c:
        with pytest.raises(ValidationError, match=r"command: must be under 128 KB.*200005 bytes"):
            c.submit_job(spec)
        with pytest.raises(ValidationError, match="must be under 128 KB"):
            c.plan_job(spec)
    assert (job_names(cluster), registry_rows(cluster)) == before


def test_a_spec_just_under_1mb_with_a_command_just_under_128kb_runs(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    # `true` ignores its arguments; the whole command is exec'd as one argument of `sh -c`.
    command = "true " + "x" * (MAX_COMMAND - 5)
    head = SPEC.format(name="bigok", command=f"'{command}'") + "# "
    spec = head + "x" * (MAX_SPEC_BYTES - len(head) - 1) + "\n"
    assert len(spec.encode()) == MAX_SPEC_BYTES
    path = tmp_path / "bigok.yaml"
    path.write_text(spec)
    done = cli(cluster, "job", "submit", "--wait", "--timeout", "60", str(path))
    assert done.returncode == 0, done.stderr[-500:]
    listed = cli(cluster, "job", "list", "--json")
    assert listed.returncode == 0, listed.stderr[-500:]
    assert "bigok" in {j["name"] for j in json.loads(listed.stdout)}


def test_an_oversized_grpc_request_gets_resource_exhausted_promptly(
    cluster: LocalCluster,
) -> None:
    big = jobs_pb2.SubmitJobRequest(spec_yaml="x" * (MAX_REQUEST_BYTES + 1024))
    # A raw client allowed to send it: the master's server refuses it on arrival.
    options = [("grpc.max_send_message_length", 4 * MAX_REQUEST_BYTES)]
    with grpc.insecure_channel(cluster.master_address, options=options) as channel:
        started = time.monotonic()
        with pytest.raises(grpc.RpcError) as err:
            jobs_pb2_grpc.JobsStub(channel).Submit(big, timeout=30)
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, err.value
        assert "larger than max" in (err.value.details() or "")
        assert time.monotonic() - started < 10  # refused, not left to the deadline
    # mesoslite's own client refuses before sending, with the limit named.
    with cluster.client() as c:
        with pytest.raises(ResourceExhaustedError, match=r"message too large: .* at most 16 MB"):
            c.submit_job(big.spec_yaml)
        assert c.jobs() is not None  # the master still answers
