"""Formatting of the CLI's tables, sizes, ages and JSON documents."""

from __future__ import annotations

import json

import pytest

from mesoslite.cli import _output as out
from mesoslite.cli._views import AgentView, TaskView, resource_map
from mesoslite.resources import parse_resources


def test_table_aligns_columns_with_two_spaces_and_no_trailing_blanks() -> None:
    text = out.table(("ID", "NAME", "X"), [("a", "longer name", ""), ("bbbb", "n", 1)])
    assert text.splitlines() == [
        "ID    NAME         X",
        "a     longer name",
        "bbbb  n            1",
    ]


def test_table_of_no_rows_is_the_header() -> None:
    assert out.table(("ID", "STATE"), []) == "ID  STATE"


@pytest.mark.parametrize(
    ("mb", "text"),
    [(0, "0"), (0.5, "0.5MB"), (64, "64MB"), (1023, "1023MB"), (1024, "1GB"),
     (1536, "1.5GB"), (10000, "9.8GB"), (1024 * 1024, "1TB"), (3 * 1024 * 1024 + 1, "3TB")],
)
def test_megabytes_are_shown_in_the_largest_whole_unit(mb: float, text: str) -> None:
    assert out.format_mb(mb) == text


@pytest.mark.parametrize(("value", "text"), [(2.0, "2"), (0.5, "0.5"), (1 / 3, "0.333"),
                                             (0.0, "0"), (0.0001, "0")])
def test_numbers_drop_needless_zeros(value: float, text: str) -> None:
    assert out.format_number(value) == text


def test_resources_are_human_with_cpus_mem_disk_first() -> None:
    res = parse_resources("ports:[31000-32000];disk:10000;mem:1024;cpus:2;gpus:1;zones:{b,a}")
    assert out.human_resources(res) == (
        "cpus:2 mem:1GB disk:9.8GB gpus:1 ports:[31000-32000] zones:{a,b}"
    )
    assert out.human_resources(parse_resources("")) == "-"


def test_used_of_total_shows_one_scalar_or_a_dash() -> None:
    total = parse_resources("cpus:4;mem:4096")
    used = parse_resources("cpus:0.5;mem:256")
    assert out.used_of_total(used, total, "cpus") == "0.5/4"
    assert out.used_of_total(used, total, "mem") == "256MB/4GB"
    assert out.used_of_total(parse_resources(""), total, "mem") == "0/4GB"
    assert out.used_of_total(used, total, "disk") == "-"


@pytest.mark.parametrize(
    ("ago", "text"),
    [(0, "0s ago"), (5.9, "5s ago"), (59, "59s ago"), (60, "1m ago"), (3599, "59m ago"),
     (3600, "1h ago"), (86400 * 3 + 5, "3d ago"), (-2, "0s ago")],
)
def test_ages_are_coarse_and_never_negative(ago: float, text: str) -> None:
    now = 1_700_000_000.0
    assert out.format_age(now - ago, now) == text


def test_an_unset_time_has_no_age() -> None:
    assert out.format_age(0.0, 1_700_000_000.0) == "-"


def test_labels_exit_codes_and_flags() -> None:
    assert out.format_labels({"zone": "z1", "rack": "r1"}) == "rack:r1,zone:z1"
    assert out.format_labels({}) == "-"
    assert out.format_exit_code(None) == "-" and out.format_exit_code(-9) == "-9"
    assert out.yes_no(True) == "yes" and out.yes_no(False) == "no"


def test_resources_in_json_are_numbers_in_their_unit_and_ranges_as_text() -> None:
    res = parse_resources("cpus:2;mem:1024;ports:[31000-31009,31020-31020];zones:{b,a}")
    assert resource_map(res) == {
        "cpus": 2.0, "mem": 1024.0, "ports": "[31000-31009,31020-31020]", "zones": "{a,b}",
    }


def test_json_of_views_has_stable_keys_and_plain_values() -> None:
    agent = AgentView(
        id="ag-1", hostname="h", status="active", address="", version="0.1.0",
        registered_at=1.5, total=parse_resources("cpus:4;mem:1024"),
        used=parse_resources("cpus:1"), offered=parse_resources(""), task_count=1,
        pending_updates=2, attributes={"rack": "r1"},
    )
    task = TaskView(
        id="t1", name="n", framework_id="fw", agent_id="ag-1", state="TASK_FINISHED",
        terminal=True, exit_code=0, message="", reason="COMMAND_EXITED", updated_at=2.0,
        resources=parse_resources("cpus:0.1"), command="true", labels={},
    )
    docs = json.loads(out.to_json([agent, task]))
    assert list(docs[0]) == [
        "id", "hostname", "status", "address", "version", "registered_at", "total", "used",
        "offered", "task_count", "pending_updates", "attributes",
    ]
    assert docs[0]["total"] == {"cpus": 4.0, "mem": 1024.0}
    assert docs[0]["used"] == {"cpus": 1.0} and docs[0]["offered"] == {}
    assert list(docs[1]) == [
        "id", "name", "framework_id", "agent_id", "state", "terminal", "exit_code", "message",
        "reason", "updated_at", "resources", "command", "labels",
    ]
    assert docs[1]["exit_code"] == 0 and docs[1]["resources"] == {"cpus": 0.1}
