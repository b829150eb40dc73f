"""Cron schedules: parse a 5-field expression and find its times on a time zone's wall clock.

Syntax (Vixie cron's): `minute hour day-of-month month day-of-week`, each field a comma list
of `*`, `N`, `A-B`, `*/S`, `A-B/S` or `N/S` (from N to the field's maximum, every S).
Months may be named `jan`..`dec` and weekdays `sun`..`sat` (any case); 0 and 7 are both
Sunday. The macros are `@yearly` (= `@annually`, `0 0 1 1 *`), `@monthly` (`0 0 1 * *`),
`@weekly` (`0 0 * * 0`), `@daily` (= `@midnight`, `0 0 * * *`) and `@hourly` (`0 * * * *`).

Day matching follows Vixie cron: when both day-of-month and day-of-week are restricted (their
text does not start with `*`), a day matches if EITHER matches (`0 0 1 * mon` runs on the 1st
and on every Monday); when either starts with `*` (including `*/2`), a day must match both.

Impossible expressions (`0 0 30 2 *`, `0 0 31 4,6 *`) raise `ValueError` in `parse`, so
`next_after` always finds a time: the Gregorian calendar repeats every 400 years (146097 days,
a whole number of weeks), and the search covers that much.

Time zones: times are wall-clock times in the zone given to `next_after`. Around DST changes:

- a wall time that does not exist (the spring-forward gap, e.g. 02:30 on the day Berlin goes
  from 02:00 to 03:00) runs once, at the first instant after the gap (03:00 local); several
  scheduled times in one gap all fall on that instant and so run once together;
- a wall time that occurs twice (fall back, e.g. 02:30 when Berlin goes from 03:00 back to
  02:00) runs once, at its first occurrence.

Pure: `datetime` and `zoneinfo` arithmetic only, no clock.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

# name, minimum, maximum (day-of-week accepts 7 for Sunday and folds it to 0)
_FIELDS = (
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day-of-month", 1, 31),
    ("month", 1, 12),
    ("day-of-week", 0, 7),
)
_MONTH_NAMES = {
    name: i + 1
    for i, name in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    )
}
_DOW_NAMES = {name: i for i, name in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}
MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
# The longest month of each month number, counting leap years (Feb 29 exists).
_MAX_DAYS = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
# The calendar repeats after this many years, so a longer search cannot find anything new.
_SEARCH_YEARS = 401
_UTC = dt.UTC


def _parse_value(text: str, field: str, lo: int, hi: int) -> int:
    names = _MONTH_NAMES if field == "month" else _DOW_NAMES if field == "day-of-week" else {}
    low = text.lower()
    if low in names:
        return names[low]
    if not text.isdigit():
        allowed = f"a number {lo}-{hi}"
        if names:
            allowed += " or a name like " + ("jan" if field == "month" else "mon")
        raise ValueError(f"{field}: {text!r} is not {allowed}")
    value = int(text)
    if not lo <= value <= hi:
        raise ValueError(f"{field}: {value} is out of range {lo}-{hi}")
    return value


def _parse_field(text: str, field: str, lo: int, hi: int) -> frozenset[int]:
    values: set[int] = set()
    for item in text.split(","):
        if not item:
            raise ValueError(f"{field}: empty item in {text!r}")
        body, slash, step_text = item.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) == 0:
                raise ValueError(f"{field}: step must be a whole number >= 1, got {step_text!r}")
            step = int(step_text)
        if body == "*":
            begin, end = lo, hi
        elif "-" in body:
            a, _, b = body.partition("-")
            begin, end = _parse_value(a, field, lo, hi), _parse_value(b, field, lo, hi)
            if begin > end:
                raise ValueError(f"{field}: range {body!r} goes backwards")
        else:
            begin = _parse_value(body, field, lo, hi)
            end = hi if slash else begin  # `N/S`: from N to the maximum, every S
        values.update(range(begin, end + 1, step))
    return frozenset(values)


@dataclass(frozen=True, slots=True)
class CronSchedule:
    """A parsed cron expression; build it with `CronSchedule.parse`."""

    expr: str
    minutes: tuple[int, ...]  # sorted
    hours: tuple[int, ...]  # sorted
    days: frozenset[int]  # days of the month, 1-31
    months: frozenset[int]  # 1-12
    weekdays: frozenset[int]  # 0-6, 0 is Sunday
    day_restricted: bool  # day-of-month text does not start with `*`
    weekday_restricted: bool  # day-of-week text does not start with `*`

    @staticmethod
    def parse(expr: str) -> CronSchedule:
        """Parse a 5-field expression or a macro.

        Raises:
            ValueError: naming the field and what is wrong, e.g.
                "hour: 24 is out of range 0-23", or saying no date can ever match.
        """
        if not isinstance(expr, str):
            raise ValueError(f"expected a string, got {expr!r}")
        text = expr.strip()
        if text.startswith("@"):
            if text.lower() not in MACROS:
                raise ValueError(f"unknown macro {text!r}; allowed: {', '.join(MACROS)}")
            text = MACROS[text.lower()]
        parts = text.split()
        if len(parts) != 5:
            raise ValueError(
                "expected 5 fields (minute hour day-of-month month day-of-week) or a macro "
                f"like @daily, got {len(parts)} in {expr!r}"
            )
        sets = [
            _parse_field(p, name, lo, hi) for p, (name, lo, hi) in zip(parts, _FIELDS, strict=True)
        ]
        weekdays = frozenset(d % 7 for d in sets[4])
        sched = CronSchedule(
            expr=expr,
            minutes=tuple(sorted(sets[0])),
            hours=tuple(sorted(sets[1])),
            days=sets[2],
            months=sets[3],
            weekdays=weekdays,
            day_restricted=not parts[2].startswith("*"),
            weekday_restricted=not parts[4].startswith("*"),
        )
        # With the OR rule some weekday always comes; otherwise the day of the month must exist.
        needs_day = not (sched.day_restricted and sched.weekday_restricted)
        if needs_day and not any(d <= _MAX_DAYS[m] for m in sched.months for d in sched.days):
            raise ValueError(
                f"day-of-month: no month in {parts[3]!r} has day {parts[2]!r}, "
                "so the schedule would never run"
            )
        return sched

    def matches_day(self, day: dt.date) -> bool:
        """Whether `day` is a day the schedule runs on (month, day-of-month, day-of-week)."""
        if day.month not in self.months:
            return False
        dom = day.day in self.days
        dow = (day.isoweekday() % 7) in self.weekdays
        if self.day_restricted and self.weekday_restricted:
            return dom or dow
        return dom and dow

    def matches(self, wall: dt.datetime) -> bool:
        """Whether the wall-clock minute `wall` (naive or aware; its fields are used) is due."""
        return (
            wall.minute in self.minutes
            and wall.hour in self.hours
            and self.matches_day(wall.date())
        )

    def _walls_from(self, start: dt.datetime) -> Iterator[dt.datetime]:
        """Naive scheduled wall times >= `start` (a naive whole minute), in order."""
        year, month, day = start.year, start.month, start.day
        start_day = start.date()
        for _ in range(_SEARCH_YEARS * 12):
            if month in self.months:
                last = calendar.monthrange(year, month)[1]
                for d in range(day, last + 1):
                    date = dt.date(year, month, d)
                    if not self.matches_day(date):
                        continue
                    same_day = date == start_day
                    for h in self.hours:
                        if same_day and h < start.hour:
                            continue
                        for m in self.minutes:
                            if same_day and h == start.hour and m < start.minute:
                                continue
                            yield dt.datetime(year, month, d, h, m)
            day = 1
            month += 1
            if month == 13:
                month, year = 1, year + 1
                if year > dt.MAXYEAR:
                    return

    def next_after(self, t: float, tz: dt.tzinfo) -> float:
        """The first scheduled instant strictly after epoch second `t`, on the wall clock of `tz`.

        Raises:
            ValueError: only if the next time would lie past the year 9999.
        """
        local = dt.datetime.fromtimestamp(t, tz)
        start = local.replace(tzinfo=None, fold=0, second=0, microsecond=0)
        for wall in self._walls_from(start):
            instant = _instant(wall, tz)
            if instant > t:
                return instant
        raise ValueError(f"{self.expr!r} has no time after {t} before the year {dt.MAXYEAR + 1}")

    def times_between(self, a: float, b: float, tz: dt.tzinfo) -> Iterator[float]:
        """The scheduled instants in (a, b], in order."""
        t = a
        while True:
            t = self.next_after(t, tz)
            if t > b:
                return
            yield t


def _instant(wall: dt.datetime, tz: dt.tzinfo) -> float:
    """Epoch seconds of the naive wall time `wall` in `tz`: its first occurrence if it occurs
    twice, the end of the gap if it does not exist."""
    early = wall.replace(tzinfo=tz, fold=0)
    ts = early.timestamp()
    back = dt.datetime.fromtimestamp(ts, tz).replace(tzinfo=None)
    if back == wall:
        return ts
    # In a gap. fold=0 used the offset from before the gap and landed after it; fold=1 used
    # the offset from after it and lands before. The transition lies in between: find the
    # first second whose offset is the later one (transitions fall on whole seconds).
    lo = int(wall.replace(tzinfo=tz, fold=1).timestamp())
    hi = int(ts)
    if lo > hi:
        lo, hi = hi, lo
    after = _offset(hi, tz)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _offset(mid, tz) == after:
            hi = mid
        else:
            lo = mid
    return float(hi)


def _offset(ts: float, tz: dt.tzinfo) -> dt.timedelta | None:
    return dt.datetime.fromtimestamp(ts, _UTC).astimezone(tz).utcoffset()
