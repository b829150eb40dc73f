"""`_client`: wire messages become views, and failed calls become the right errors."""

from __future__ import annotations

import grpc
import pytest

from mesoslite._proto.v1 import common_pb2 as pb
from mesoslite._proto.v1 import operator_pb2
from mesoslite.cli import _client
from mesoslite.errors import (
    DeadlineExceededError,
    NotFoundError,
    UnavailableError,
    ValidationError,
)


class FakeRpcError(grpc.RpcError):  # type: ignore[misc]
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


def test_resources_sum_scalars_and_keep_ranges_and_sets() -> None:
    res = _client.resources([
        pb.Resource(name="cpus", kind=pb.Resource.SCALAR, scalar=1.5),
        pb.Resource(name="cpus", scalar=0.5),
        pb.Resource(name="ports", kind=pb.Resource.RANGES,
                    ranges=[pb.Range(begin=31000, end=31009)]),
        pb.Resource(name="zones", kind=pb.Resource.SET, set=["b", "a"]),
    ])
    assert str(res) == "cpus:2;ports:[31000-31009];zones:{a,b}"


def test_a_task_view_has_its_state_label_and_exit_code_only_when_set() -> None:
    summary = operator_pb2.TaskSummary(
        task_info=pb.TaskInfo(task_id="t1", name="n", agent_id="ag-1",
                              command=pb.CommandInfo(shell=False, argv=["echo", "hi"])),
        framework_id="fw-1",
        status=pb.TaskStatus(task_id="t1", state=pb.TASK_FAILED, has_exit_code=True,
                             exit_code=-9, timestamp=5.0),
    )
    view = _client.task_view(summary)
    assert (view.state, view.terminal, view.exit_code) == ("TASK_FAILED", True, -9)
    assert view.command == "echo hi" and view.agent_id == "ag-1"
    summary.status.has_exit_code = False
    summary.status.exit_code = 0
    summary.status.state = pb.TASK_RUNNING
    view = _client.task_view(summary)
    assert (view.state, view.terminal, view.exit_code) == ("TASK_RUNNING", False, None)


@pytest.mark.parametrize(
    ("code", "details", "error", "message"),
    [
        (grpc.StatusCode.UNAVAILABLE, "failed to connect to all addresses; last error: "
         "UNKNOWN: ipv4:127.0.0.1:5050: Failed to connect to remote host: Connection refused",
         UnavailableError, "cannot reach the master at 127.0.0.1:5050: is it running? "
         "(set --master or MESOSLITE_MASTER)"),
        (grpc.StatusCode.UNAVAILABLE, "registry is down", UnavailableError, "registry is down"),
        (grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded", DeadlineExceededError,
         "the master at 127.0.0.1:5050 did not answer in 10s"),
        (grpc.StatusCode.NOT_FOUND, "task 'x' is not known", NotFoundError,
         "task 'x' is not known"),
        (grpc.StatusCode.INVALID_ARGUMENT, "name: must be one of stdout, stderr",
         ValidationError, "name: must be one of stdout, stderr"),
    ],
)
def test_failed_calls_become_errors_that_say_what_to_do(
    code: grpc.StatusCode, details: str, error: type[Exception], message: str
) -> None:
    err = _client._map_error(FakeRpcError(code, details), "127.0.0.1:5050", 10.0)
    assert type(err) is error
    assert err.message == message


def test_master_addresses_get_the_default_port() -> None:
    assert _client.resolve_master("example.org") == "example.org:5050"
    assert _client.resolve_master("grpc://h:1234/") == "h:1234"
    with pytest.raises(ValidationError):
        _client.resolve_master("h:0")
