"""Calling any RPC of the master generically and judging its answer, for the fuzz tests and
`bench/fuzz_rpcs.py`.

`METHODS` lists every method of every service the master serves (Scheduler, Agent,
Operator, Jobs), from the proto descriptors: a new RPC is fuzzed without a line here.
`call` sends one request with a deadline and returns the outcome; `check_answer` holds the
properties (no hang, OK or a clear status); `fingerprint` is the state a refused call must
leave as it was.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import descriptor as d
from google.protobuf import message_factory

from mesoslite._proto.v1 import agent_pb2, jobs_pb2, operator_pb2, scheduler_pb2
from mesoslite.cli._client import BlockingOperatorClient

CALL_TIMEOUT_S = 5.0
JOBS_FRAMEWORK = "mesoslite-jobs"
# Statuses that say the master broke or hung rather than refused the input.
BAD_CODES = (
    grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL, grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.DATA_LOSS,
)
SERVICES = (
    (scheduler_pb2, "Scheduler"), (agent_pb2, "Agent"),
    (operator_pb2, "Operator"), (jobs_pb2, "Jobs"),
)


@dataclass(frozen=True, slots=True)
class Method:
    path: str  # /mesoslite.v1.Scheduler/Accept
    method: d.MethodDescriptor

    @property
    def input(self) -> d.Descriptor:
        return self.method.input_type

    def __str__(self) -> str:
        return self.path.rsplit(".", 1)[-1]


def _methods() -> list[Method]:
    out = []
    for module, name in SERVICES:
        service = module.DESCRIPTOR.services_by_name[name]
        out += [Method(f"/{service.full_name}/{m.name}", m) for m in service.methods]
    return out


METHODS = _methods()


@dataclass(frozen=True, slots=True)
class Outcome:
    code: grpc.StatusCode  # OK, or the status of the refusal
    details: str


def call(channel: grpc.Channel, method: Method, request: Any) -> Outcome:
    """Send `request` (unary or streamed: one message) and read the first answer."""
    m = method.method
    ser = message_factory.GetMessageClass(m.input_type).SerializeToString
    de = message_factory.GetMessageClass(m.output_type).FromString
    try:
        if not m.client_streaming and not m.server_streaming:
            channel.unary_unary(method.path, ser, de)(request, timeout=CALL_TIMEOUT_S)
        elif not m.client_streaming:
            _first(channel.unary_stream(method.path, ser, de)(request, timeout=CALL_TIMEOUT_S))
        elif not m.server_streaming:
            channel.stream_unary(method.path, ser, de)(iter([request]), timeout=CALL_TIMEOUT_S)
        else:
            calls = channel.stream_stream(method.path, ser, de)
            _first(calls(iter([request]), timeout=CALL_TIMEOUT_S))
    except grpc.RpcError as e:
        return Outcome(e.code(), e.details() or "")
    return Outcome(grpc.StatusCode.OK, "")


def _first(responses: Any) -> None:
    """Read a stream's first answer (or its clean end), then hang up."""
    try:
        next(responses, None)
    finally:
        responses.cancel()


def check_answer(method: Method, outcome: Outcome) -> None:
    """OK, or a status that refuses the input with a message: not a crash, not a hang."""
    assert outcome.code not in BAD_CODES, f"{method}: {outcome.code.name} {outcome.details!r}"
    # UNIMPLEMENTED is fine when mesoslite says why (Scheduler/Message), not gRPC's own.
    assert outcome.details != "Method not found!", f"{method}: not served"
    if outcome.code not in (grpc.StatusCode.OK, grpc.StatusCode.CANCELLED):
        assert outcome.details.strip(), f"{method}: {outcome.code.name} with no message"


def fingerprint(client: BlockingOperatorClient) -> Any:
    """What only a call can change: frameworks ever registered, tasks of frameworks other
    than the jobs framework (which launches on its own), roles' settings, jobs' specs and
    agents. Statuses that move with time (a framework's failover, a job's run) are left out.
    """
    frameworks = client.frameworks(include_completed=True)
    jobs_fw = {f.id for f in frameworks if f.name == JOBS_FRAMEWORK}
    tasks = client.tasks(include_completed=True)
    return (
        sorted(f.id for f in frameworks),
        sorted((t.id, t.framework_id) for t in tasks if t.framework_id not in jobs_fw),
        sorted(
            (r.role, r.weight, str(r.guarantee), str(r.limit), r.priority, r.preemptible)
            for r in client.roles()
            if r.weight != 1 or not r.guarantee.is_empty() or r.limit is not None or r.priority
        ),
        sorted(
            (j.name, j.version, hashlib.sha256(j.spec_yaml.encode()).hexdigest())
            for j in client.jobs()
        ),
        sorted(a.id for a in client.agents()),
    )


def still_answers(client: BlockingOperatorClient) -> None:
    """The master is alive and serving after a call."""
    assert client.master_address()
