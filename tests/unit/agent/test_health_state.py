"""`HealthState`: grace period, consecutive failures, reporting only changes (issue 6)."""

from __future__ import annotations

import pytest

from mesoslite import convert
from mesoslite.agent.health import HealthState
from mesoslite.errors import ValidationError
from mesoslite.ids import TaskId
from mesoslite.model import CommandSpec, HealthCheckSpec, TaskSpec
from mesoslite.resources import parse_resources

HC = HealthCheckSpec("tcp", port=80, grace_period_s=10, consecutive_failures=3)


def test_failures_in_the_grace_period_do_not_count_until_a_check_passed() -> None:
    st = HealthState(HC, started_at=100.0)
    assert st.record(False, 105.0) == (False, False)
    assert st.failures == 0 and st.healthy is None
    assert st.record(True, 106.0) == (True, False)
    # Once it passed, the grace period is over.
    assert st.record(False, 107.0) == (True, False)
    assert st.record(False, 108.0) == (False, False)
    assert st.record(False, 109.0) == (False, True)


def test_a_pass_resets_the_consecutive_failures() -> None:
    st = HealthState(HC, started_at=0.0)
    assert st.record(False, 20.0) == (True, False)
    assert st.record(False, 21.0) == (False, False)
    assert st.record(True, 22.0) == (True, False)
    assert st.record(True, 23.0) == (False, False)
    assert [st.record(False, t)[1] for t in (24.0, 25.0, 26.0)] == [False, False, True]


def test_a_health_check_survives_the_wire_and_zero_values_take_the_defaults() -> None:
    spec = TaskSpec(
        TaskId("t"), CommandSpec.of_shell("x"), parse_resources("cpus:1"),
        health_check=HealthCheckSpec("http", port=8080, path="/ok", interval_s=2),
    )
    assert convert.task_from_pb(convert.task_to_pb(spec)) == spec
    msg = convert.task_to_pb(spec)
    msg.health_check.interval_s = 0
    msg.health_check.path = ""
    back = convert.task_from_pb(msg).health_check
    assert back is not None and (back.interval_s, back.path) == (10.0, "/")


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"type": 0}, "task.health_check.type: must be COMMAND, HTTP or TCP"),
        ({"port": 0}, "task.health_check.port: must be 1 to 65535, got 0"),
        ({"timeout_s": -1}, "task.health_check.timeout_s: must be 0 to 86400, got -1"),
    ],
)
def test_a_bad_health_check_is_refused_naming_the_field(
    change: dict[str, object], error: str
) -> None:
    spec = TaskSpec(
        TaskId("t"), CommandSpec.of_shell("x"), parse_resources("cpus:1"),
        health_check=HealthCheckSpec("tcp", port=80),
    )
    msg = convert.task_to_pb(spec)
    for k, v in change.items():
        setattr(msg.health_check, k, v)
    with pytest.raises(ValidationError) as e:
        convert.task_from_pb(msg)
    assert str(e.value.message) == error
