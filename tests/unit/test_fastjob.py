"""`mesoslite job submit|update|wait`'s fast path (`fastjob.py`, `fastjob_text.py`): what it
takes and what it leaves to the click command, and that the text and codes it shares with
the click path are the click path's."""

from __future__ import annotations

import datetime
import itertools
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mesoslite import fastjob, fastjob_text
from mesoslite.cli import exit_codes
from mesoslite.cli.job_wait import summary_line
from mesoslite.fastrun import _command
from mesoslite.jobs.model import InstanceState, JobState, JobType
from mesoslite.jobs.summary import JobSummary
from mesoslite.limits import JOB_NAME_RE, MAX_SPEC_BYTES

M = "127.0.0.1:5050"


def parsed(*argv: str) -> tuple[str, str, str, bool, float] | None:
    call = fastjob.parse(list(argv), M)
    return None if call is None else (call.master, call.verb, call.arg, call.wait, call.timeout_s)


def test_parse_takes_submit_update_and_wait_with_their_options() -> None:
    assert parsed("job", "submit", "a.yaml") == (M, "submit", "a.yaml", False, 0.0)
    assert parsed("job", "submit", "--wait", "a.yaml") == (M, "submit", "a.yaml", True, 0.0)
    assert parsed("job", "update", "a.yaml", "--wait", "--timeout", "2.5") == (
        M, "update", "a.yaml", True, 2.5)
    assert parsed("--master", "h:1", "job", "submit", "--timeout=3", "a.yaml") == (
        "h:1", "submit", "a.yaml", False, 3.0)
    # `--master` after the command wins, as on the click path.
    assert parsed("--master=h:1", "job", "wait", "web", "--master", "h:2") == (
        "h:2", "wait", "web", True, 0.0)


@pytest.mark.parametrize("argv", [
    ("job", "submit", "-"),  # stdin: it could not be read again after a fallback
    ("job", "submit", "--help"),
    ("job", "submit"),
    ("job", "submit", "a.yaml", "b.yaml"),
    ("job", "submit", "--wait=yes", "a.yaml"),
    ("job", "submit", "--timeout", "-1", "a.yaml"),
    ("job", "submit", "--timeout", "nan", "a.yaml"),
    ("job", "submit", "--timeout", "inf", "a.yaml"),
    ("job", "submit", "--timeout", "soon", "a.yaml"),
    ("job", "submit", "--json", "a.yaml"),
    ("job", "submit", "--", "a.yaml"),
    ("job", "submit", "a.yaml", "--timeout"),
    ("job", "wait", "--wait", "web"),
    ("job", "wait", "Web"),  # not a DNS label: click words the refusal
    ("job", "wait", "-web"),
    ("job", "wait", "a" * 64),
    ("job", "status", "web"),
    ("job", "run-now", "web"),
    ("--json", "job", "submit", "a.yaml"),
    ("--master", "zk://h:2181/m", "job", "submit", "a.yaml"),
    ("--master", "h:1,h:2", "job", "submit", "a.yaml"),
    ("--master", "h", "job", "submit", "a.yaml"),
])
def test_parse_leaves_the_rest_to_the_click_command(argv: tuple[str, ...]) -> None:
    assert parsed(*argv) is None


def test_a_job_name_is_what_the_click_path_accepts() -> None:
    for name in ("a", "web-1", "0", "a" * 63, "a-", "-a", "A", "a_b", "a.b", "", "a" * 64, "é"):
        assert fastjob._job_name(name) == bool(JOB_NAME_RE.match(name)), name


def test_the_command_word_is_found_after_the_master_options() -> None:
    assert _command(["job", "submit", "run"]) == "job"
    assert _command(["--master", "h:1", "run", "--", "job"]) == "run"
    assert _command(["--master=h:1", "job"]) == "job"
    assert _command(["--master"]) == ""


def test_the_spec_is_read_as_click_file_reads_it(tmp_path: Path) -> None:
    f = tmp_path / "s.yaml"
    f.write_bytes(b"name: a\r\ncommand: \xc3\xa9\rx: 1\n")
    assert fastjob._read_spec(str(f)) == "name: a\ncommand: \u00e9\nx: 1\n"
    f.write_bytes(b"name: \xff\n")
    assert fastjob._read_spec(str(f)) is None  # not UTF-8
    f.write_bytes(b"#" * (MAX_SPEC_BYTES + 1))
    assert fastjob._read_spec(str(f)) is None  # over the limit: the click path says so
    assert fastjob._read_spec(str(tmp_path / "missing.yaml")) is None
    assert fastjob._read_spec(str(tmp_path)) is None
    assert fastjob.MAX_SPEC_BYTES == MAX_SPEC_BYTES


def test_exit_codes_are_the_click_path_s() -> None:
    assert fastjob.EXIT_BY_STATUS == exit_codes._BY_STATUS
    assert (fastjob.EXIT_USAGE, fastjob.EXIT_UNAVAILABLE, fastjob.EXIT_INTERNAL,
            fastjob.EXIT_TEMPFAIL, fastjob.EXIT_INTERRUPTED) == (
        exit_codes.EXIT_USAGE, exit_codes.EXIT_UNAVAILABLE, exit_codes.EXIT_INTERNAL,
        exit_codes.EXIT_TEMPFAIL, exit_codes.EXIT_INTERRUPTED)
    assert (fastjob_text.EXIT_OK, fastjob_text.EXIT_FAILURE) == (
        exit_codes.EXIT_OK, exit_codes.EXIT_FAILURE)


def test_the_verdict_of_each_state_and_type() -> None:
    done = {
        (JobType.BATCH, JobState.SUCCEEDED): 0, (JobType.SERVICE, JobState.HEALTHY): 0,
        (JobType.SERVICE, JobState.SUCCEEDED): 0, (JobType.CRON, JobState.SUCCEEDED): 0,
        (JobType.CRON, JobState.SCHEDULED): 0, (JobType.CRON, JobState.SUSPENDED): 0,
    }
    for t, s in itertools.product(JobType, JobState):
        want = 1 if s in (JobState.FAILED, JobState.KILLED) else done.get((t, s))
        assert fastjob_text.verdict(s.value, t.value) == want, (t, s)
    assert fastjob_text.TERMINAL == tuple(s.value for s in JobState if s.terminal)
    assert set(fastjob_text.COUNTED) | {"RUNNING"} == {s.value for s in InstanceState}


@pytest.fixture
def zone(request: pytest.FixtureRequest) -> Iterator[None]:
    old = os.environ.get("TZ")
    os.environ["TZ"] = request.param
    time.tzset()
    yield
    if old is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = old
    time.tzset()


@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata"],
                         indirect=True)
def test_times_are_formatted_as_datetime_formats_them(zone: None) -> None:
    for ts in (1.0, 1_700_000_000.0, 1_711_846_800.5, 1_730_000_000.0, 4_102_444_800.0):
        want = datetime.datetime.fromtimestamp(ts).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
        assert fastjob_text.format_time(ts) == want
    assert fastjob_text.format_time(0) == fastjob_text.format_time(None) == "-"


def test_relative_times() -> None:
    now = 1_000_000.0
    cases = {now: "now", now - 0.5: "now", now - 5: "5s ago", now - 300: "5m ago",
             now - 7200: "2h ago", now - 3 * 86400: "3d ago", now + 30: "in 30s",
             now + 240: "in 4m", now + 7200: "in 2h", now + 86400 * 2: "in 2d"}
    for ts, want in cases.items():
        assert fastjob_text.format_relative(ts, now) == want


def test_the_summary_line_of_a_watched_summary() -> None:
    s = JobSummary(
        name="web", type=JobType.SERVICE, state=JobState.DEPLOYING, message="waiting for room",
        instances_wanted=3, counts={InstanceState.RUNNING: 2, InstanceState.WAITING: 1},
        unhealthy=1,
    )
    assert summary_line(s, 0) == "web: 2/3 running (1 unhealthy), 1 waiting: waiting for room"
    cron = JobSummary(name="c", type=JobType.CRON, state=JobState.SCHEDULED,
                      next_run_at=1_000_240.0)
    line = summary_line(cron, 1_000_000.0)
    assert line == f"c: SCHEDULED, next run {fastjob_text.format_time(1_000_240.0)} (in 4m)"
    ended = JobSummary(name="b", type=JobType.BATCH, state=JobState.FAILED, message="m",
                       counts={InstanceState.FAILED: 1}, next_run_at=5.0)
    assert summary_line(ended, 0) == "b: FAILED: m"
    assert fastjob_text.problem_line("f.yaml", "name", "bad") == "mesoslite: f.yaml: name: bad"
    assert fastjob_text.problem_line("f.yaml", "", "f.yaml: line 1") == "mesoslite: f.yaml: line 1"


def test_escape_sequences_are_dropped_as_click_drops_them() -> None:
    from click._compat import strip_ansi

    for text in ("plain", "\x1b[31mred\x1b[0m", "a\x1b[1;2Hb", "\x1b[?25lx", "\x1b[ q",
                 "\x1b[", "\x1b[12", "x\x1b[\x7f", "\x1b]0;title\x07", "\x1b[\x1b[Km", "é\x1b[Kü"):
        assert fastjob.strip_ansi(text) == strip_ansi(text), repr(text)


def test_a_broken_watch_hands_the_rest_of_the_wait_to_the_click_job_wait(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    call = fastjob.parse(["job", "submit", "--wait", "--timeout", "30", "a.yaml"], M)
    assert call is not None
    answer = fastjob._Answer.__new__(fastjob._Answer)
    answer.call, answer.name, answer.clock = call, "web", time
    answer.deadline = time.monotonic() + 12.5
    monkeypatch.setattr("sys.argv", ["mesoslite", "job", "submit", "--wait", "a.yaml"])
    assert answer._lost() is fastjob.FALLBACK
    import sys

    argv = sys.argv[1:]
    assert argv[:5] == ["--master", M, "job", "wait", "web"]
    assert argv[5] == "--timeout" and 12 < float(argv[6]) <= 12.5
    assert argv[7:] == ["--timeout-given", "30.0"]
