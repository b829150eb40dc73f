"""Id prefixes (`cli/_ids.py`) and the watch loop (`cli/_watch.py`), without a master."""

from __future__ import annotations

import pytest

from mesoslite.cli._ids import MAX_SHOWN, AmbiguousIdError, unique_match
from mesoslite.cli._watch import watch_loop
from mesoslite.errors import UnavailableError

IDS = ["run-abc1", "run-abc2", "run-xyz", "fw-1"]


def test_a_unique_prefix_names_its_id() -> None:
    assert unique_match("task id", "run-x", IDS) == "run-xyz"
    assert unique_match("task id", "fw", IDS) == "fw-1"


def test_an_exact_id_wins_over_longer_ids_it_starts() -> None:
    assert unique_match("task id", "a", ["a", "ab", "ac"]) == "a"


def test_an_ambiguous_prefix_lists_the_candidates() -> None:
    with pytest.raises(AmbiguousIdError) as e:
        unique_match("task id", "run-abc", IDS)
    assert e.value.message == (
        "task id: 'run-abc' is the start of 2 ids: run-abc1, run-abc2; give more of it"
    )
    assert e.value.status == "INVALID_ARGUMENT"


def test_a_long_list_of_candidates_is_cut() -> None:
    many = [f"t{i:02d}" for i in range(MAX_SHOWN + 5)]
    with pytest.raises(AmbiguousIdError, match=r"and 5 more; give more of it"):
        unique_match("task id", "t", many)


def test_a_prefix_of_nothing_is_passed_on_for_the_masters_not_found() -> None:
    assert unique_match("task id", "nope", IDS) == "nope"
    assert unique_match("task id", "", IDS) == ""


def test_the_watch_loop_draws_count_times_and_survives_a_failed_drawing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    calls: list[int] = []
    slept: list[float] = []

    def draw() -> None:
        calls.append(1)
        if len(calls) == 2:
            raise UnavailableError("master gone")
        print(f"table {len(calls)}")

    assert watch_loop(draw, 0.5, 3, sleep=slept.append) == 3
    out, err = capsys.readouterr()
    assert out == "table 1\n\n\ntable 3\n"
    assert err == "mesoslite: master gone\n"
    assert slept == [0.5, 0.5]


def test_ctrl_c_ends_the_watch_loop_quietly() -> None:
    def sleep(_: float) -> None:
        raise KeyboardInterrupt

    assert watch_loop(lambda: None, 1.0, None, sleep=sleep) == 1
