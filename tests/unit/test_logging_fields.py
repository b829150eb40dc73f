"""JSON logs with ids as keys, and kazoo's repeats said once (`mesoslite.logging`)."""

from __future__ import annotations

import json
import logging

from mesoslite.logging import JsonFormatter, OncePer, split_fields


def record(
    msg: str, *args: object, name: str = "mesoslite.x", **extra: object
) -> logging.LogRecord:
    rec = logging.LogRecord(name, logging.INFO, __file__, 1, msg, args, None)
    rec.__dict__.update(extra)
    return rec


def test_key_value_ids_become_keys_and_leave_the_message() -> None:
    doc = json.loads(JsonFormatter().format(record(
        "task %s framework_id=%s task_id=%s: %s", "TASK_FINISHED", "fw-1", "run-1", "exit 0"
    )))
    assert doc["msg"] == "task TASK_FINISHED: exit 0"
    assert doc["task_id"] == "run-1" and doc["framework_id"] == "fw-1"


def test_extra_fields_are_keys_too() -> None:
    doc = json.loads(JsonFormatter().format(record("job started", job="nightly")))
    assert doc["msg"] == "job started" and doc["job"] == "nightly"


def test_numbers_keep_their_type_and_other_conversions_their_text() -> None:
    msg, fields = split_fields("pass took %.3fs agents=%d attributes=%r", (0.12345, 3, "r1"))
    assert msg == "pass took 0.123s"
    assert fields == {"agents": 3, "attributes": "'r1'"}


def test_a_flag_with_a_dash_is_no_key_and_reserved_names_stay_in_msg() -> None:
    assert split_fields("removed after --job-retention-s=%g", (5.0,)) == (
        "removed after --job-retention-s=5", {}
    )
    assert split_fields("odd msg=%s", ("x",)) == ("odd msg=x", {})


def test_a_template_that_does_not_match_its_args_is_left_as_logging_renders_it() -> None:
    doc = json.loads(JsonFormatter().format(record("100%% of %s", "tasks")))
    assert doc["msg"] == "100% of tasks"


def test_kazoo_repeats_are_said_once_per_period_then_counted() -> None:
    now = [0.0]
    once = OncePer("kazoo", 60.0, now=lambda: now[0])
    first = record("Connection dropped: %s", "refused", name="kazoo.client")
    assert once.filter(first)
    assert not once.filter(record("Connection dropped: %s", "refused", name="kazoo.client"))
    assert not once.filter(record("Connection dropped: %s", "refused", name="kazoo.client"))
    assert once.filter(record("Other: %s", "x", name="kazoo.client"))
    assert once.filter(record("Connection dropped: %s", "x", name="mesoslite.a"))  # not kazoo
    now[0] = 61.0
    again = record("Connection dropped: %s", "refused", name="kazoo.client")
    assert once.filter(again)
    assert again.getMessage() == "Connection dropped: refused (and 2 more like it in 60s)"
