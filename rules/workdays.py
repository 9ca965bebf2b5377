"""The holiday-aware workday calendar (RULES.md, calendar conventions).

Three sources, in this order, decided per calendar year:

1. a county override file for the year's official schedule (`override:FILE`), which wins;
2. the `chinesecalendar` library's official holidays and 调休 make-up workdays
   (`chinese_calendar 1.11.0`), when the rule set says `calendar: cn`;
3. Monday-Friday: `weekdays` when the rule set asks for it, `fallback:weekdays` when the
   library does not know the year (it raises NotImplementedError). Never a crash.

Every flag carries the source of the years its period touches, so a result computed on the
fallback says so.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import chinese_calendar

from rules.periods import days

CALENDAR_MODES = ("cn", "weekdays")
LIBRARY_SOURCE = f"chinese_calendar {getattr(chinese_calendar, '__version__', 'unknown')}"
WEEKDAYS_SOURCE = "weekdays"
FALLBACK_SOURCE = "fallback:weekdays"


class CalendarFileError(ValueError):
    """A calendar override file that cannot be read or is malformed."""


@dataclass(frozen=True, slots=True)
class YearSchedule:
    """One year's official schedule: holidays (days off) and make-up workdays; any other day
    is a workday when it is Monday-Friday."""

    year: int
    holidays: frozenset[date]
    workdays: frozenset[date]
    source: str


def parse_year_schedule(obj: Any, source: str) -> YearSchedule:
    """Validate `{"year": 2031, "holidays": [...], "workdays": [...]}`."""
    if not isinstance(obj, Mapping):
        raise CalendarFileError(f"{source}: expected an object with year, holidays, workdays")
    year = obj.get("year")
    if not isinstance(year, int) or isinstance(year, bool):
        raise CalendarFileError(f"{source}: year: expected an integer")
    lists: dict[str, frozenset[date]] = {}
    for key in ("holidays", "workdays"):
        values = obj.get(key, [])
        if not isinstance(values, list):
            raise CalendarFileError(f"{source}: {key}: expected a list of dates")
        parsed = set()
        for i, value in enumerate(values):
            try:
                day = date.fromisoformat(value)
            except (TypeError, ValueError):
                raise CalendarFileError(
                    f"{source}: {key}[{i}]: expected a date YYYY-MM-DD, got {value!r}"
                ) from None
            if day.year != year:
                raise CalendarFileError(f"{source}: {key}[{i}]: {value} is not in {year}")
            parsed.add(day)
        lists[key] = frozenset(parsed)
    both = lists["holidays"] & lists["workdays"]
    if both:
        raise CalendarFileError(
            f"{source}: {min(both).isoformat()} is both a holiday and a workday"
        )
    return YearSchedule(year, lists["holidays"], lists["workdays"], source)


def load_year_schedule(path: str | Path) -> YearSchedule:
    path = Path(path)
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise CalendarFileError(f"{path}: cannot read: {error.strerror}") from None
    except json.JSONDecodeError as error:
        raise CalendarFileError(
            f"{path}: not valid JSON: line {error.lineno} column {error.colno}: {error.msg}"
        ) from None
    return parse_year_schedule(obj, f"override:{path.name}")


class WorkCalendar:
    """Answers "is this date a workday?" and "where did that answer come from?"."""

    def __init__(self, mode: str = "cn", overrides: Iterable[YearSchedule] = ()) -> None:
        if mode not in CALENDAR_MODES:
            raise ValueError(f"calendar must be one of {', '.join(CALENDAR_MODES)}, got {mode!r}")
        self.mode = mode
        self.overrides = {schedule.year: schedule for schedule in overrides}
        self._workday: dict[date, bool] = {}
        self._source: dict[int, str] = {}

    def source(self, year: int) -> str:
        if year not in self._source:
            self._source[year] = self._decide_source(year)
        return self._source[year]

    def _decide_source(self, year: int) -> str:
        if year in self.overrides:
            return self.overrides[year].source
        if self.mode == "weekdays":
            return WEEKDAYS_SOURCE
        try:
            chinese_calendar.is_workday(date(year, 6, 1))
        except NotImplementedError:
            return FALLBACK_SOURCE
        return LIBRARY_SOURCE

    def is_workday(self, day: date) -> bool:
        cached = self._workday.get(day)
        if cached is None:
            cached = self._workday[day] = self._decide_workday(day)
        return cached

    def _decide_workday(self, day: date) -> bool:
        source = self.source(day.year)
        schedule = self.overrides.get(day.year)
        if schedule is not None:
            if day in schedule.holidays:
                return False
            if day in schedule.workdays:
                return True
            return day.isoweekday() <= 5
        if source == LIBRARY_SOURCE:
            return bool(chinese_calendar.is_workday(day))
        return day.isoweekday() <= 5

    def sources(self, first: date, last: date) -> str:
        """The source(s) of the years [first, last] touches, joined with " + "."""
        seen: list[str] = []
        for year in range(first.year, last.year + 1):
            source = self.source(year)
            if source not in seen:
                seen.append(source)
        return " + ".join(seen)

    def days_off_and_make_up(self, first: date, last: date) -> tuple[list[date], list[date]]:
        """Monday-Friday dates that are not workdays (holidays), and Saturday/Sunday dates
        that are (调休 make-up workdays), in [first, last]; explanations cite them."""
        off, make_up = [], []
        for day in days(first, last):
            weekend = day.isoweekday() > 5
            working = self.is_workday(day)
            if not weekend and not working:
                off.append(day)
            elif weekend and working:
                make_up.append(day)
        return off, make_up
