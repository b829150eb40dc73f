"""Sandbox paths cannot leave the agent's work dir whatever the ids contain (issue 14):
the agent's `sandbox_path` and `read_sandbox_file` with hypothesis, and the master's ways in
(HTTP `/tasks/ID/stdout`, `Operator.ReadFile` as `task logs` uses) on a running cluster."""

from __future__ import annotations

import os
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import grpc
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mesoslite._proto.v1 import operator_pb2, operator_pb2_grpc
from mesoslite.agent.sandbox import read_sandbox_file, sandbox_path
from tests.fuzz.conftest import FuzzTarget
from tests.fuzz.strategies import PATHISH

SECRET = b"SECRET-OUTSIDE-THE-SANDBOX"
ids = st.one_of(
    st.sampled_from(PATHISH),
    st.text(max_size=30),
    st.text(alphabet="./\\\x00\n\r%a-_:@", max_size=20),
    st.builds("/".join, st.lists(st.sampled_from(["..", ".", "", "a", "stdout"]), max_size=6)),
)
names = st.one_of(st.sampled_from(["stdout", "stderr", "../stdout", "/etc/passwd", ""]), ids)
SETTINGS = settings(
    max_examples=300, deadline=None, database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@SETTINGS
@given(framework_id=ids, task_id=ids)
@example("..", "..")
@example(".", "a")
@example("a\n", "b")
@example("fw", "t\x00")
@example("fw/../..", "t")
@example("fw", "t\n")
def test_sandbox_path_is_none_or_exactly_two_plain_names_below_sandboxes(
    framework_id: str, task_id: str
) -> None:
    work = Path("/work-dir")
    path = sandbox_path(work, framework_id, task_id)
    if path is None:
        return
    assert path.parent.parent == work / "sandboxes"
    assert (path.parent.name, path.name) == (framework_id, task_id)
    assert os.path.normpath(path) == str(path)
    for name in (framework_id, task_id):
        assert name not in (".", "..") and "/" not in name and "\\" not in name
        assert all(c.isprintable() and not c.isspace() for c in name), repr(name)


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An agent work dir with one real sandbox and secrets at every place `..` could reach."""
    root = tmp_path_factory.mktemp("sandbox-fuzz")
    work = root / "agent"
    sandbox = work / "sandboxes" / "fw" / "t"
    sandbox.mkdir(parents=True)
    (sandbox / "stdout").write_bytes(b"fw/t stdout")
    (sandbox / "stderr").write_bytes(b"fw/t stderr")
    _plant(root, work, work / "sandboxes", work / "sandboxes" / "fw", work / "meta")
    return work


def _plant(*dirs: Path) -> None:
    for d in dirs:
        d.mkdir(parents=True, exist_ok=True)
        for f in ("stdout", "stderr", "secret"):
            (d / f).write_bytes(SECRET)


@SETTINGS
@given(framework_id=ids, task_id=ids, name=names)
@example("..", "..", "stdout")
@example("fw", "..", "stdout")
@example("fw", "t", "../secret")
@example("fw", "t\n", "stdout")
def test_reading_a_sandbox_file_never_reads_outside_the_sandbox(
    planted: Path, framework_id: str, task_id: str, name: str
) -> None:
    data, _, _ = read_sandbox_file(planted, framework_id, task_id, name, 0, 1 << 20)
    assert SECRET not in data
    assert data in (b"", b"fw/t stdout", b"fw/t stderr")


TRAVERSALS = [
    ("..", ""), ("../..", ""), ("%2e%2e", ""), ("..%2f..%2fmeta", ""), ("t", ".."),
    ("..", ".."), (".", "."), ("t\n", "fw"), ("t%00", ""), ("%2e%2e%2f%2e%2e", "%2e%2e"),
]


def test_the_masters_http_task_files_never_leave_the_sandbox(fuzz_target: FuzzTarget) -> None:
    base = fuzz_target.cluster.http_url()
    work = fuzz_target.cluster.agent_work_dirs[0]
    _plant(work.parent, work, work / "sandboxes")
    for task_id, fid in TRAVERSALS + [(p, "") for p in PATHISH]:
        quoted = urllib.parse.quote(task_id, safe="%")
        url = f"{base}tasks/{quoted}/stdout?framework_id={urllib.parse.quote(fid, safe='%')}"
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                body, status = r.read(), r.status
        except urllib.error.HTTPError as e:
            body, status = e.read(), e.code
        assert status in (400, 404), (task_id, status, body[:200])
        assert SECRET not in body and body.strip(), (task_id, body[:200])


def test_operator_read_file_never_leaves_the_sandbox(fuzz_target: FuzzTarget) -> None:
    stub = operator_pb2_grpc.OperatorStub(fuzz_target.channel)
    work = fuzz_target.cluster.agent_work_dirs[0]
    _plant(work.parent, work, work / "sandboxes")
    for task_id, fid in TRAVERSALS + [(p, p) for p in PATHISH]:
        for name in ("stdout", "../stdout", "../../stdout"):
            request = operator_pb2.ReadFileRequest(task_id=task_id, framework_id=fid, name=name)
            try:
                reply = stub.ReadFile(request, timeout=5)
            except grpc.RpcError as e:
                assert e.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND)
                assert e.details() and "SECRET" not in e.details()
                continue
            raise AssertionError(f"read {task_id!r}/{name!r}: {reply.data[:100]!r}")
