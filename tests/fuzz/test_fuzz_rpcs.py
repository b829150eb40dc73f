"""Every RPC of every service the master serves, fuzzed with requests drawn from its proto
descriptor (issue 14, "Hostile input"). For each: no hang (a deadline on every call), no
crash (the master answers afterwards), OK or a clear status with a message, and a refused
call changes nothing (the state fingerprint before and after)."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz.conftest import FuzzTarget
from tests.fuzz.harness import METHODS, Method, call, check_answer, fingerprint, still_answers
from tests.fuzz.strategies import messages

EXAMPLES = 30
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES, deadline=None, database=None,
    suppress_health_check=[
        HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture,
    ],
)


def test_every_service_of_the_master_is_fuzzed() -> None:
    services = {m.path.split("/")[1] for m in METHODS}
    assert services == {
        "mesoslite.v1.Scheduler", "mesoslite.v1.Agent", "mesoslite.v1.Operator",
        "mesoslite.v1.Jobs",
    }
    assert len(METHODS) >= 37


def fuzz_once(target: FuzzTarget, method: Method, request: Any) -> None:
    before = fingerprint(target.client)
    outcome = call(target.channel, method, request)
    check_answer(method, outcome)
    still_answers(target.client)
    if outcome.code != grpc.StatusCode.OK:
        after = fingerprint(target.client)
        assert after == before, f"{method} refused ({outcome.details!r}) but changed state"


@pytest.mark.parametrize("method", METHODS, ids=str)
def test_fuzzed_requests_get_ok_or_a_clear_status_and_refusals_change_nothing(
    fuzz_target: FuzzTarget, method: Method
) -> None:
    @FUZZ_SETTINGS
    @given(request=messages(method.input))
    def fuzz(request: Any) -> None:
        fuzz_once(fuzz_target, method, request)

    fuzz()


@FUZZ_SETTINGS
@given(data=st.data())
def test_undecodable_bytes_to_any_method_are_refused_clearly(
    fuzz_target: FuzzTarget, data: st.DataObject
) -> None:
    method = data.draw(st.sampled_from(METHODS), label="method")
    junk = data.draw(st.binary(min_size=1, max_size=256), label="bytes")
    raw = _raw_call(fuzz_target.channel, method)
    try:
        raw(junk)
    except grpc.RpcError as e:
        assert e.code() not in (grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL), e.details()
        assert e.details()
    still_answers(fuzz_target.client)


def _raw_call(channel: grpc.Channel, method: Method) -> Any:
    """Send `bytes` as they are (no serializer) to `method`, reading the first answer."""
    m = method.method
    if not m.client_streaming and not m.server_streaming:
        return lambda b: channel.unary_unary(method.path)(b, timeout=5)

    def streamed(b: bytes) -> None:
        if m.client_streaming:
            it = channel.stream_stream(method.path)(iter([b]), timeout=5)
        else:
            it = channel.unary_stream(method.path)(b, timeout=5)
        try:
            next(it, None)
        finally:
            it.cancel()

    return streamed
