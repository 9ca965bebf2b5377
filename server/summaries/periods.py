"""The periods a summary is asked for: a month written YYYY-MM, the months of a trend, the
ISO weeks of a month (a week belongs to the month of its Thursday) and the month of a
flag's period. Bad input is `InvalidInput` naming the parameter."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

from forms.definitions import PERIOD_EARLIEST, PERIOD_LATEST
from rules.periods import label_range, month_end, month_label, week_start
from server.errors import InvalidInput

MAX_TREND_MONTHS = 36
MAX_HEATMAP_WEEKS = 104
# ASCII digits only (`\d` takes other scripts' digits too; issue 13).
_MONTH = re.compile(r"([0-9]{4})-([0-9]{2})")


# --- input -------------------------------------------------------------------------


def parse_month(value: Any, *, name: str = "month") -> tuple[date, date]:
    """The first and last day of a `YYYY-MM` month within the periods the server reads
    (forms.definitions.PERIOD_EARLIEST to PERIOD_LATEST)."""
    match = _MONTH.fullmatch(value) if isinstance(value, str) else None
    low, high = PERIOD_EARLIEST.strftime("%Y-%m"), PERIOD_LATEST.strftime("%Y-%m")
    if (
        match is None
        or not 1 <= int(match[2]) <= 12
        or not PERIOD_EARLIEST.year <= int(match[1]) <= PERIOD_LATEST.year
    ):
        raise InvalidInput(
            f"{name} must be a month written YYYY-MM ({low} to {high}), not {value[:40]!r}"
            if isinstance(value, str)
            else f"{name} must be a month written YYYY-MM ({low} to {high})",
            {name: [f"must be a month YYYY-MM from {low} to {high}, e.g. 2026-03"]},
        )
    first = date(int(match[1]), int(match[2]), 1)
    return first, month_end(first)


def check_not_after(first: date, as_of: date, name: str, label: str) -> None:
    if first > as_of:
        raise InvalidInput(
            f"{name} {label} starts after the date of the figures, {as_of.isoformat()}",
            {name: [f"must not start after {as_of.isoformat()}"]},
        )


def months_until(as_of: date, count: int) -> list[str]:
    """The `count` month labels ending with the month of `as_of`, oldest first."""
    if not 1 <= count <= MAX_TREND_MONTHS:
        raise InvalidInput(
            f"months must be from 1 to {MAX_TREND_MONTHS}, not {count}",
            {"months": [f"must be from 1 to {MAX_TREND_MONTHS}"]},
        )
    index = as_of.year * 12 + as_of.month - 1
    return [
        f"{(index - back) // 12:04d}-{(index - back) % 12 + 1:02d}"
        for back in range(count - 1, -1, -1)
    ]


def month_weeks(first: date, last: date) -> list[date]:
    """The Mondays of the ISO weeks that belong to the month [first, last]: a week belongs
    to the month of its Thursday (the ISO 8601 rule that puts a week in a year)."""
    monday = week_start(first)
    out = []
    while monday <= last:
        if first <= monday + timedelta(days=3) <= last:
            out.append(monday)
        monday += timedelta(days=7)
    return out


def period_month(period: str) -> str | None:
    """The month a flag's period belongs to: an ISO week the month of its Thursday, any
    other period the month of its last day (a year: December). None for a bad label."""
    try:
        first, last = label_range(period)
    except (ValueError, TypeError):
        return None
    if "-W" in period and "/" not in period:
        return month_label((first + timedelta(days=3)).replace(day=1))
    return month_label(last.replace(day=1))
