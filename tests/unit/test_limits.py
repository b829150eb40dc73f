"""The shared input rules (`mesoslite.limits`) and the job spec loader's YAML limits."""

from __future__ import annotations

import math

import pytest

from mesoslite import limits as lim
from mesoslite.errors import ValidationError
from mesoslite.jobs.spec import parse_job_spec

SPEC = "name: ok\ntype: batch\ncommand: 'true'\n"


@pytest.mark.parametrize("value", ["t", "t-1.a:b@c_d", "A" * 255, "0"])
def test_well_formed_ids_pass(value: str) -> None:
    lim.check_id("task_id", value)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("x\n", "must be 1-255 characters"),  # `$` let this through: issue 11 item 7
        ("", "must be 1-255 characters"),
        ("-x", "must be 1-255 characters"),
        ("a b", "must be 1-255 characters"),
        ("a/b", "must be 1-255 characters"),
        ("a" * 256, "must be at most 255 characters, got 256"),
    ],
)
def test_ill_formed_ids_are_refused_naming_the_field(value: str, text: str) -> None:
    with pytest.raises(ValidationError) as err:
        lim.check_id("tasks[0].task_id", value)
    assert err.value.field == "tasks[0].task_id"
    assert text in err.value.message


def test_an_empty_id_passes_only_where_allowed() -> None:
    lim.check_id("framework_info.id", "", allow_empty=True)
    with pytest.raises(ValidationError):
        lim.check_id("framework_info.id", "x\n", allow_empty=True)


def test_a_huge_value_is_not_echoed_whole() -> None:
    with pytest.raises(ValidationError) as err:
        lim.check_id("task_id", "-" + "a" * 100)
    assert len(err.value.message) < 200
    assert "(101 characters)" in err.value.message


@pytest.mark.parametrize("role", ["*", "eng", "eng/ml", "a-b_c/d0", "r" * 255])
def test_roles_that_pass(role: str) -> None:
    lim.check_role("role", role)


@pytest.mark.parametrize(
    ("role", "allow_star", "text"),
    [
        ("eng\n", True, "must be '*' or path segments"),
        ("eng/", True, "path segments"),
        ("Eng", True, "path segments"),
        ("*", False, "must be path segments"),
        ("r" * 256, True, "at most 255 characters"),
        ("r" * (1024 * 1024), False, "at most 255 characters, got 1048576"),
    ],
)
def test_roles_that_are_refused(role: str, allow_star: bool, text: str) -> None:
    with pytest.raises(ValidationError, match="^role: ") as err:
        lim.check_role("role", role, allow_star=allow_star)
    assert text in err.value.message


def test_role_re_matches_in_full_for_callers_that_use_match() -> None:
    assert lim.ROLE_RE.match("eng/ml")
    assert not lim.ROLE_RE.match("eng/ml\n")
    assert not lim.ROLE_RE.match("r" * 256)
    assert not lim.TASK_ID_RE.match("t\n")


@pytest.mark.parametrize(
    ("begin", "end", "name", "text"),
    [
        (0, 2**64 - 1, "ports", "ends above 65535"),
        (65535, 65536, "ports", "ends above 65535"),
        (10, 9, "ports", "begin > end"),
        (10, 9, "ids", "begin > end"),
    ],
)
def test_bad_ranges_are_refused(begin: int, end: int, name: str, text: str) -> None:
    with pytest.raises(ValidationError, match=text):
        lim.check_range(f"resources.{name}", begin, end, lim.range_limit(name))


def test_good_ranges_pass() -> None:
    lim.check_range("ports", 31000, 32000, lim.range_limit("ports"))
    lim.check_range("ports", 0, 65535, lim.range_limit("ports"))
    lim.check_range("ids", 0, 2**64 - 1, lim.range_limit("ids"))


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, -1.0, 1e13, True])
def test_numbers_out_of_range_are_refused(value: float) -> None:
    with pytest.raises(ValidationError, match="^cpus: "):
        lim.check_number("cpus", value, 0, lim.MAX_SCALAR)


@pytest.mark.parametrize(
    ("value", "text"),
    [(math.nan, "finite"), (-1.0, ">= 0"), (lim.MAX_DURATION_S + 1, "a year")],
)
def test_durations_out_of_range_are_refused(value: float, text: str) -> None:
    with pytest.raises(ValidationError, match=text):
        lim.check_duration("refuse_seconds", value)


def test_string_maps_are_bounded_in_count_keys_and_values() -> None:
    lim.check_labels("labels", {"k": "v" * lim.MAX_LABEL_VALUE})
    with pytest.raises(ValidationError, match="at most 100 items, got 101"):
        lim.check_labels("labels", {str(i): "" for i in range(101)})
    with pytest.raises(ValidationError, match="^labels key: must be at most 255"):
        lim.check_labels("labels", {"k" * 256: "v"})
    with pytest.raises(ValidationError, match=r"^labels\['k'\]: must be at most 4096"):
        lim.check_labels("labels", {"k": "v" * 4097})


def test_hostnames_are_bounded_and_one_line() -> None:
    lim.check_hostname("agent_info.hostname", "h" * 253)
    with pytest.raises(ValidationError, match="at most 253"):
        lim.check_hostname("agent_info.hostname", "h" * 254)
    with pytest.raises(ValidationError, match="one line"):
        lim.check_hostname("agent_info.hostname", "host\n")


# ------------------------------------------------------------------ job specs (YAML)


@pytest.mark.parametrize(
    "nested",
    [
        "labels: " + "[" * 5000 + "]" * 5000,  # flow style
        "labels: " + "{a: " * 5000 + "}" * 5000,
        "labels:\n" + "".join("  " * i + "-\n" for i in range(1, 200)),  # block style
    ],
    ids=["flow-sequences", "flow-mappings", "block-sequences"],
)
def test_a_spec_nested_too_deep_is_refused_cleanly(nested: str) -> None:
    # It was RecursionError inside PyYAML (INTERNAL over gRPC).
    with pytest.raises(ValidationError, match="nested more than 64 levels deep"):
        parse_job_spec(SPEC + nested)


def test_a_spec_nested_within_the_limit_is_parsed_as_usual() -> None:
    # 60 levels parse; the usual type check then says what is wrong with them.
    nested = "labels: " + "[" * 60 + "]" * 60
    with pytest.raises(ValidationError, match="labels") as err:
        parse_job_spec(SPEC + nested)
    assert "nested" not in err.value.message


def test_a_spec_over_1mb_is_refused_before_parsing() -> None:
    with pytest.raises(ValidationError, match=r"over the limit of 1 MB \(1048576 bytes\)"):
        parse_job_spec(SPEC + "#" + "x" * lim.MAX_SPEC_BYTES)
    # Counted in bytes: 300,000 three-byte characters are 900,000 bytes plus the rest.
    parse_job_spec(SPEC + "#" + "€" * 300_000)
    with pytest.raises(ValidationError, match="over the limit"):
        parse_job_spec(SPEC + "#" + "€" * 400_000)


def test_a_job_name_with_a_trailing_newline_is_refused() -> None:
    with pytest.raises(ValidationError, match="DNS label"):
        parse_job_spec('name: "ok\\n"\ntype: batch\ncommand: "true"\n')


def test_a_job_command_over_128kb_is_refused_naming_the_limit_and_its_size() -> None:
    # issue 14: a 5 MB command was accepted and failed at launch, the reason only in history.
    big = "echo " + "x" * 200_000
    with pytest.raises(ValidationError, match=r"command: must be under 128 KB.*got 200005 bytes"):
        parse_job_spec(SPEC.replace("'true'", big))
    argv = "command: [echo, " + ", ".join(["x" * 50_000] * 3) + "]\n"
    with pytest.raises(ValidationError, match=r"command: .*\(all of argv\), got 150004 bytes"):
        parse_job_spec(SPEC.replace("command: 'true'\n", argv))
    # Counted in bytes, as exec counts: 50,000 three-byte characters are 150,000 bytes.
    with pytest.raises(ValidationError, match="got 150005 bytes"):
        parse_job_spec(SPEC.replace("'true'", "echo " + "€" * 50_000))
    parse_job_spec(SPEC.replace("'true'", "x" * lim.MAX_COMMAND))


def test_a_job_environment_over_256kb_in_all_is_refused() -> None:
    env = "env:\n" + "".join(f"  V{i}: {'x' * 30_000}\n" for i in range(9))
    with pytest.raises(ValidationError, match=r"env: must be at most 256 KB .*ARG_MAX"):
        parse_job_spec(SPEC + env)
    parse_job_spec(SPEC + "env:\n" + "".join(f"  V{i}: {'x' * 30_000}\n" for i in range(8)))


def test_a_task_command_is_held_to_the_same_byte_limit_as_a_job_command() -> None:
    from mesoslite.master.validation import check_command
    from mesoslite.model import CommandSpec

    check_command("c", CommandSpec.of_shell("x" * lim.MAX_COMMAND))
    with pytest.raises(ValidationError, match=r"c.value: must be under 128 KB.*got 131072"):
        check_command("c", CommandSpec.of_shell("x" * (lim.MAX_COMMAND + 1)))
    with pytest.raises(ValidationError, match=r"c.argv: must be under 128 KB"):
        check_command("c", CommandSpec.of_argv(["echo", "€" * 44_000]))
    env = {f"V{i}": "x" * 30_000 for i in range(9)}
    with pytest.raises(ValidationError, match=r"^c.environment: must be at most 256 KB"):
        check_command("c", CommandSpec.of_shell("true", environment=env))
