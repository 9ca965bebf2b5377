"""Periods as RULES.md names them: ISO weeks, calendar months and years, dates, ranges.

A period label is what a flag shows (`2026-W11`, `2026-03`, `2026`, `2026-03-05`,
`2026-03-02/2026-06-30`); `label_range` turns any label back into its first and last day.
"""

from __future__ import annotations

import calendar as _stdcal
from collections.abc import Iterator
from datetime import date, timedelta, timezone

DateRange = tuple[date, date]
ONE_DAY = timedelta(days=1)
# China Standard Time (UTC+8, no daylight saving): the day a visit belongs to and "today"
# of a live evaluation are China's, whatever the server's or the device's own zone.
CHINA_TZ = timezone(timedelta(hours=8))


def week_start(day: date) -> date:
    return day - timedelta(days=day.isoweekday() - 1)


def week_label(monday: date) -> str:
    year, week, _ = monday.isocalendar()
    return f"{year}-W{week:02d}"


def month_start(day: date) -> date:
    return day.replace(day=1)


def month_end(day: date) -> date:
    return day.replace(day=_stdcal.monthrange(day.year, day.month)[1])


def month_label(first: date) -> str:
    return f"{first.year}-{first.month:02d}"


def add_months(day: date, months: int) -> date:
    """`day` plus whole calendar months; a day past the target month's end is clamped to it
    (2026-08-31 + 6 months = 2027-02-28)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = _stdcal.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


def days(first: date, last: date) -> Iterator[date]:
    day = first
    while day <= last:
        yield day
        day += ONE_DAY


def weeks(first: date, last: date) -> Iterator[date]:
    """The Mondays of the ISO weeks that touch [first, last]."""
    monday = week_start(first)
    while monday <= last:
        yield monday
        monday += timedelta(days=7)


def months(first: date, last: date) -> Iterator[date]:
    start = month_start(first)
    while start <= last:
        yield start
        start = add_months(start, 1)


def overlap(a: DateRange, b: DateRange) -> DateRange | None:
    first, last = max(a[0], b[0]), min(a[1], b[1])
    return (first, last) if first <= last else None


def range_label(first: date, last: date) -> str:
    return f"{first.isoformat()}/{last.isoformat()}"


def label_range(label: str) -> DateRange:
    """The first and last day of a period label."""
    if "/" in label:
        head, tail = label.split("/", 1)
        return date.fromisoformat(head), date.fromisoformat(tail)
    if "-W" in label:
        year, week = label.split("-W")
        monday = date.fromisocalendar(int(year), int(week), 1)
        return monday, monday + timedelta(days=6)
    if len(label) == 4:
        return date(int(label), 1, 1), date(int(label), 12, 31)
    if len(label) == 7:
        start = date(int(label[:4]), int(label[5:]), 1)
        return start, month_end(start)
    day = date.fromisoformat(label)
    return day, day
