"""`jobs/cron.py`: parsing, the Vixie day rule, DST, leap years, and a brute-force cross-check."""

from __future__ import annotations

import datetime as dt
import random
from zoneinfo import ZoneInfo

import pytest

from mesoslite.jobs.cron import CronSchedule

UTC = ZoneInfo("UTC")
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def ts(tz: ZoneInfo, *args: int, fold: int = 0) -> float:
    return dt.datetime(*args, tzinfo=tz, fold=fold).timestamp()  # type: ignore[arg-type,misc]


def walls(expr: str, tz: ZoneInfo, start: tuple[int, ...], count: int) -> list[str]:
    sched = CronSchedule.parse(expr)
    t = ts(tz, *start)
    out = []
    for _ in range(count):
        t = sched.next_after(t, tz)
        out.append(dt.datetime.fromtimestamp(t, tz).strftime("%Y-%m-%d %a %H:%M %Z"))
    return out


# ------------------------------------------------------------------------------- parsing


def test_fields_accept_lists_ranges_steps_and_names() -> None:
    s = CronSchedule.parse("*/15 9-17/4 1,15 JAN-mar mon-FRI")
    assert s.minutes == (0, 15, 30, 45)
    assert s.hours == (9, 13, 17)
    assert s.days == {1, 15}
    assert s.months == {1, 2, 3}
    assert s.weekdays == {1, 2, 3, 4, 5}


def test_zero_and_seven_are_both_sunday() -> None:
    assert CronSchedule.parse("0 0 * * 7").weekdays == {0}
    assert CronSchedule.parse("0 0 * * 0").weekdays == {0}
    assert CronSchedule.parse("0 0 * * 5-7").weekdays == {5, 6, 0}


def test_a_number_with_a_step_runs_from_it_to_the_maximum() -> None:
    assert CronSchedule.parse("5/20 * * * *").minutes == (5, 25, 45)


@pytest.mark.parametrize(
    ("macro", "same_as"),
    [
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
        ("@monthly", "0 0 1 * *"),
        ("@weekly", "0 0 * * 0"),
        ("@daily", "0 0 * * *"),
        ("@midnight", "0 0 * * *"),
        ("@HOURLY", "0 * * * *"),
    ],
)
def test_macros_mean_their_expressions(macro: str, same_as: str) -> None:
    a, b = CronSchedule.parse(macro), CronSchedule.parse(same_as)
    t = ts(UTC, 2026, 5, 17, 13, 7)
    assert list(a.times_between(t, t + 400 * 86400, UTC)) == list(
        b.times_between(t, t + 400 * 86400, UTC)
    )


@pytest.mark.parametrize(
    ("expr", "says"),
    [
        ("", "expected 5 fields"),
        ("* * * *", "expected 5 fields"),
        ("* * * * * *", "expected 5 fields"),
        ("60 * * * *", "minute: 60 is out of range 0-59"),
        ("* 24 * * *", "hour: 24 is out of range 0-23"),
        ("* * 0 * *", "day-of-month: 0 is out of range 1-31"),
        ("* * 32 * *", "day-of-month: 32 is out of range 1-31"),
        ("* * * 13 *", "month: 13 is out of range 1-12"),
        ("* * * * 8", "day-of-week: 8 is out of range 0-7"),
        ("* * * foo *", "month: 'foo' is not a number 1-12 or a name like jan"),
        ("* * * * funday", "day-of-week: 'funday' is not"),
        ("*/0 * * * *", "minute: step must be a whole number >= 1"),
        ("*/x * * * *", "minute: step must be a whole number >= 1"),
        ("* 5-1 * * *", "hour: range '5-1' goes backwards"),
        ("1,,2 * * * *", "minute: empty item"),
        ("-1 * * * *", "minute: '' is not a number"),
        ("@fortnightly", "unknown macro '@fortnightly'; allowed: @yearly"),
        ("0 0 30 2 *", "day-of-month: no month in '2' has day '30'"),
        ("0 0 31 4,6,9,11 *", "never run"),
    ],
)
def test_bad_expressions_say_which_field_and_why(expr: str, says: str) -> None:
    with pytest.raises(ValueError, match=None) as info:
        CronSchedule.parse(expr)
    assert says in str(info.value)


def test_feb_30_with_a_weekday_is_possible_by_the_or_rule() -> None:
    # Both restricted: the weekday alone makes days match.
    assert walls("0 0 30 2 mon", UTC, (2026, 2, 1), 2) == [
        "2026-02-02 Mon 00:00 UTC",
        "2026-02-09 Mon 00:00 UTC",
    ]


# ------------------------------------------------------------------------------- matching


def test_next_after_is_strictly_after() -> None:
    s = CronSchedule.parse("0 * * * *")
    t = ts(UTC, 2026, 1, 1, 10, 0)
    assert s.next_after(t, UTC) == t + 3600
    assert s.next_after(t - 0.5, UTC) == t
    assert s.next_after(t + 0.5, UTC) == t + 3600


def test_day_of_month_or_day_of_week_when_both_are_restricted() -> None:
    # Vixie: the 13th OR a Friday.
    assert walls("0 12 13 * fri", UTC, (2026, 2, 1), 4) == [
        "2026-02-06 Fri 12:00 UTC",
        "2026-02-13 Fri 12:00 UTC",
        "2026-02-20 Fri 12:00 UTC",
        "2026-02-27 Fri 12:00 UTC",
    ]
    assert walls("0 12 13 * fri", UTC, (2026, 3, 7), 2) == [
        "2026-03-13 Fri 12:00 UTC",
        "2026-03-20 Fri 12:00 UTC",
    ]
    assert walls("0 0 1 * mon", UTC, (2026, 5, 28), 3) == [
        "2026-06-01 Mon 00:00 UTC",
        "2026-06-08 Mon 00:00 UTC",
        "2026-06-15 Mon 00:00 UTC",
    ]


def test_a_star_with_a_step_in_day_of_month_means_both_must_match() -> None:
    # Vixie: a field starting with `*` is not "restricted", so odd days AND Mondays.
    assert walls("0 0 */2 * mon", UTC, (2026, 6, 1), 3) == [
        "2026-06-15 Mon 00:00 UTC",
        "2026-06-29 Mon 00:00 UTC",
        "2026-07-13 Mon 00:00 UTC",
    ]


def test_steps_and_weekday_names() -> None:
    assert walls("*/20 9 * * sat,sun", UTC, (2026, 1, 1), 4) == [
        "2026-01-03 Sat 09:00 UTC",
        "2026-01-03 Sat 09:20 UTC",
        "2026-01-03 Sat 09:40 UTC",
        "2026-01-04 Sun 09:00 UTC",
    ]


def test_leap_day_waits_for_the_next_leap_year() -> None:
    assert walls("0 0 29 feb *", UTC, (2026, 1, 1), 2) == [
        "2028-02-29 Tue 00:00 UTC",
        "2032-02-29 Sun 00:00 UTC",
    ]
    # 2100 is not a leap year: from 2096 the next Feb 29 is in 2104.
    assert walls("0 0 29 2 *", UTC, (2096, 3, 1), 1) == ["2104-02-29 Fri 00:00 UTC"]


def test_the_31st_skips_short_months() -> None:
    assert walls("0 6 31 * *", UTC, (2026, 1, 31, 7), 3) == [
        "2026-03-31 Tue 06:00 UTC",
        "2026-05-31 Sun 06:00 UTC",
        "2026-07-31 Fri 06:00 UTC",
    ]


def test_rare_schedules_are_found_quickly() -> None:
    # Feb 29 AND a Sunday (`*/7` starts with `*`, so both must match): 28 or 40 years apart.
    sched = CronSchedule.parse("0 0 29 2 */7")
    t = ts(UTC, 2026, 1, 1)
    years = []
    for _ in range(9):
        t = sched.next_after(t, UTC)
        years.append(dt.datetime.fromtimestamp(t, UTC).year)
    assert years == [2032, 2060, 2088, 2128, 2156, 2184, 2224, 2252, 2280]


def test_wall_clock_of_the_time_zone_is_used() -> None:
    assert walls("0 9 * * *", NEW_YORK, (2026, 7, 1), 1) == ["2026-07-01 Wed 09:00 EDT"]
    s = CronSchedule.parse("0 9 * * *")
    assert s.next_after(ts(UTC, 2026, 7, 1), NEW_YORK) == ts(UTC, 2026, 7, 1, 13)


# ------------------------------------------------------------------------------- DST


def test_spring_forward_gap_runs_once_at_the_end_of_the_gap_berlin() -> None:
    # 2026-03-29: Berlin goes from 02:00 CET to 03:00 CEST; 02:30 does not exist.
    assert walls("30 2 * * *", BERLIN, (2026, 3, 28, 12), 3) == [
        "2026-03-29 Sun 03:00 CEST",
        "2026-03-30 Mon 02:30 CEST",
        "2026-03-31 Tue 02:30 CEST",
    ]


def test_several_times_in_the_gap_run_once_together() -> None:
    # 02:00, 02:15, 02:30, 02:45 and 03:00 all fall on the first instant after the gap.
    sched = CronSchedule.parse("*/15 2,3 29 3 *")
    a = ts(BERLIN, 2026, 3, 29, 0)
    got = [
        dt.datetime.fromtimestamp(x, BERLIN).strftime("%H:%M %Z")
        for x in sched.times_between(a, a + 86400, BERLIN)
    ]
    assert got == ["03:00 CEST", "03:15 CEST", "03:30 CEST", "03:45 CEST"]


def test_spring_forward_gap_new_york() -> None:
    # 2026-03-08: New York goes from 02:00 EST to 03:00 EDT.
    assert walls("30 2 * * *", NEW_YORK, (2026, 3, 7, 12), 2) == [
        "2026-03-08 Sun 03:00 EDT",
        "2026-03-09 Mon 02:30 EDT",
    ]


def test_fall_back_runs_an_ambiguous_time_once_at_its_first_occurrence() -> None:
    # 2026-10-25: Berlin goes from 03:00 CEST back to 02:00 CET; 02:30 happens twice.
    assert walls("30 2 * * *", BERLIN, (2026, 10, 24, 12), 2) == [
        "2026-10-25 Sun 02:30 CEST",
        "2026-10-26 Mon 02:30 CET",
    ]
    # 2026-11-01: New York repeats 01:00-02:00.
    assert walls("30 1 * * *", NEW_YORK, (2026, 10, 31, 12), 2) == [
        "2026-11-01 Sun 01:30 EDT",
        "2026-11-02 Mon 01:30 EST",
    ]


def test_from_inside_the_repeated_hour_the_next_time_is_after_it() -> None:
    # At 01:10 EST (the second 01:10), 01:30 already ran in EDT: the next is at 02:00 EST.
    sched = CronSchedule.parse("*/30 * * * *")
    t = ts(NEW_YORK, 2026, 11, 1, 1, 10, fold=1)
    nxt = sched.next_after(t, NEW_YORK)
    assert dt.datetime.fromtimestamp(nxt, NEW_YORK).strftime("%H:%M %Z") == "02:00 EST"
    assert nxt - t == 50 * 60


def test_hourly_through_both_changes_has_no_duplicates_or_holes_in_utc() -> None:
    sched = CronSchedule.parse("@hourly")
    a = ts(BERLIN, 2026, 3, 29, 0)
    spring = list(sched.times_between(a, a + 6 * 3600, BERLIN))
    assert [x - a for x in spring] == [3600 * i for i in range(1, 7)]  # 02:00 is 03:00
    b = ts(BERLIN, 2026, 10, 25, 0)
    fall = list(sched.times_between(b, b + 6 * 3600, BERLIN))
    # 01:00, 02:00 (CEST), 03:00, 04:00, 05:00: the second 02:00 (CET) does not run again.
    assert [(x - b) / 3600 for x in fall] == [1, 2, 4, 5, 6]


def test_half_hour_dst_changes_lord_howe() -> None:
    # Lord Howe Island moves its clocks by 30 minutes: 02:00 -> 02:30 on 2026-10-04, and
    # 02:00 -> 01:30 on 2026-04-05.
    lord_howe = ZoneInfo("Australia/Lord_Howe")
    assert walls("15 2 * * *", lord_howe, (2026, 10, 3, 12), 2) == [
        "2026-10-04 Sun 02:30 +11",
        "2026-10-05 Mon 02:15 +11",
    ]
    assert walls("45 1 * * *", lord_howe, (2026, 4, 4, 12), 2) == [
        "2026-04-05 Sun 01:45 +11",
        "2026-04-06 Mon 01:45 +1030",
    ]


# ------------------------------------------------------------------------------- cross-check


def reference(sched: CronSchedule, a: float, b: float, tz: ZoneInfo) -> list[float]:
    """Every minute instant in (a, b], checked one by one against the documented rules."""
    out: list[float] = []
    m = (int(a) // 60 + 1) * 60
    while m <= b:
        wall = dt.datetime.fromtimestamp(m, tz)
        due = wall.fold == 0 and sched.matches(wall)
        if not due:
            before = dt.datetime.fromtimestamp(m - 60, tz)
            gap = (wall.utcoffset() or dt.timedelta()) - (before.utcoffset() or dt.timedelta())
            if gap > dt.timedelta(0):
                # m is the first instant after a gap: wall times skipped by the jump run now.
                skipped = before.replace(tzinfo=None) + dt.timedelta(minutes=1)
                while skipped < wall.replace(tzinfo=None):
                    due = due or sched.matches(skipped)
                    skipped += dt.timedelta(minutes=1)
        if due:
            out.append(float(m))
        m += 60
    return out


def random_field(rng: random.Random, lo: int, hi: int) -> str:
    kind = rng.randrange(6)
    if kind == 0:
        return "*"
    if kind == 1:
        return f"*/{rng.randint(2, 7)}"
    if kind == 2:
        a = rng.randint(lo, hi)
        return f"{a}-{rng.randint(a, hi)}"
    if kind == 3:
        a = rng.randint(lo, hi)
        return f"{a}-{rng.randint(a, hi)}/{rng.randint(1, 4)}"
    return ",".join(str(rng.randint(lo, hi)) for _ in range(rng.randint(1, 3)))


@pytest.mark.parametrize("seed", range(40))
def test_matches_a_minute_by_minute_reference(seed: int) -> None:
    rng = random.Random(seed)
    tz = [UTC, BERLIN, NEW_YORK][seed % 3]
    expr = " ".join(
        [
            random_field(rng, 0, 59),
            random_field(rng, 0, 23),
            random_field(rng, 1, 31),
            rng.choice(["*", "*", "3", "3,10,11", "*/2"]),
            random_field(rng, 0, 7),
        ]
    )
    try:
        sched = CronSchedule.parse(expr)
    except ValueError:
        pytest.skip(f"impossible expression {expr!r}")
    # Four days around a DST change (or a plain stretch), at a random offset.
    starts = [ts(tz, 2026, 3, 27), ts(tz, 2026, 10, 23), ts(tz, 2026, 3, 6), ts(tz, 2026, 10, 30)]
    a = rng.choice(starts) + rng.randint(0, 86400)
    b = a + 4 * 86400
    assert list(sched.times_between(a, b, tz)) == reference(sched, a, b, tz), expr
