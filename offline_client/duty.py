"""This week's duty standing on the device: the pulled `flags` of the doctor for a week.

Flags are computed by the server's rules engine (`rules.flags.Flag.to_dict`) and pulled
like any other record; the device only picks the ones whose period touches the week.
A flag's `period` is a day (2026-03-05), an ISO week (2026-W11), a month (2026-03), a
year (2026) or a range (2026-03-02/2026-06-30).
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

from rules.periods import DateRange, label_range, week_start
from sync.records import JSON, Record

_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")


class BadWeek(ValueError):
    """A week label that is not YYYY-Www."""


def requested_week(label: str | None = None, *, today: date | None = None) -> DateRange:
    """The week a person asked about (`status --week 2026-W11`): Monday to Sunday of that
    ISO week label, or of the week of `today` when none was given. A malformed label is a
    BadWeek with the hint a person needs; `rules.periods.label_range` reads any period label
    (flags' too) and `rules.periods.week_label` names a week."""
    if label:
        match = _WEEK.match(label.strip())
        if not match:
            raise BadWeek(f"not an ISO week: {label!r} (use e.g. 2026-W11)")
        try:
            monday = date.fromisocalendar(int(match[1]), int(match[2]), 1)
        except ValueError as exc:
            raise BadWeek(f"not an ISO week: {label!r}") from exc
    else:
        monday = week_start(today or date.today())
    return monday, monday + timedelta(days=6)


def period_range(period: object) -> DateRange | None:
    """The days a flag's period covers (`rules.periods.label_range`); None for a period this
    client cannot read."""
    if not isinstance(period, str) or not period.strip():
        return None
    try:
        return label_range(period.strip())
    except ValueError:
        return None


def flags_for_week(flags: list[Record], doctor: str | None, week: DateRange) -> list[JSON]:
    """The doctor's live flags whose period touches `week`, most severe first."""
    chosen = []
    for record in flags:
        data = record.data
        if record.deleted or data.get("state") == "resolved":
            continue  # the server keeps a flag that no longer holds as `state: resolved`
        if doctor and data.get("doctor") not in (None, doctor):
            continue
        span = period_range(data.get("period"))
        if span is not None and (span[1] < week[0] or span[0] > week[1]):
            continue
        chosen.append({"id": record.id, **data})
    chosen.sort(key=lambda f: (f.get("status") != "violation", str(f.get("rule", ""))))
    return chosen


def describe(flag: JSON, lang: str = "zh") -> str:
    explanation = flag.get("explanation")
    text = ""
    if isinstance(explanation, dict):
        text = explanation.get(lang) or explanation.get("en") or ""
    text = text or str(flag.get("rule") or flag.get("id"))
    return f"[{flag.get('status', 'flag')}] {flag.get('rule', '')} {flag.get('period', '')}: {text}"


def local_scenario(store: Any, doctor: str) -> JSON:
    """The device's own copy as a scenario (docs/scenario-format.md): the pulled places,
    doctor and assignments, and the doctor's visits, leave and trainings as they stand on
    the device, unsynced edits included."""

    def live(collection: str) -> list[JSON]:
        return [
            {**record.data, "id": record.id}
            for record in store.records(collection)
            if collection in ("places", "doctors", "assignments")
            or record.data.get("doctor") == doctor
        ]

    return {
        "places": live("places"),
        "doctors": [d for d in live("doctors") if d.get("id") == doctor],
        "assignments": [a for a in live("assignments") if a.get("doctor") == doctor],
        "visits": live("visits"),
        "leave": live("leave"),
        "trainings": live("trainings"),
    }


def local_flags(
    store: Any,
    doctor: str,
    week: DateRange,
    *,
    ruleset: str = "guangxi",
    today: date | None = None,
) -> list[JSON]:
    """This week's flags computed on the device with the same `rules/` code as the server,
    so a doctor offline sees "one patrol short this week" before any sync. Place-level
    rules (coverage, staffing) need the whole county and are left to the server."""
    from rules import ScenarioError, evaluate, load_ruleset, load_scenario

    try:
        scenario = load_scenario(local_scenario(store, doctor))
    except ScenarioError:
        return []  # reference data not pulled yet: nothing sound to say offline
    as_of = min(today or date.today(), week[1])
    flags = evaluate(
        scenario, as_of=as_of, ruleset=load_ruleset(ruleset), doctors={doctor}, period=week
    )
    return [f.to_dict() for f in flags if f.doctor == doctor]
