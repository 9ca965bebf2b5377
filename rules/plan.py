"""Each assignment's weekly plan: what a week requires and which of its days count, from
the same rule set and workday calendar the engine judges by (RULES.md posting.days_per_week,
sitin.days_per_week, patrol.per_week).

The doctor's app counts its own visits, unsynced ones included, against this plan
(server/static/app/js/week.js), so the rule book is not written a second time in
JavaScript (issue 12): the parameters (minimum, hours for a duty day, half-day hours,
sessions a date) and the calendar (holidays, make-up workdays, approved leave and
training) come from here; only "count the visits" is done on the device.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from rules.model import PATROL, Scenario
from rules.periods import days, overlap, week_label, week_start, weeks
from rules.ruleset import RuleSet

WEEKLY_RULE = {"posting": "posting.days_per_week", "sitin": "sitin.days_per_week"}
WEEKLY_RULE_PATROL = "patrol.per_week"
DUTY_DAYS, SESSIONS = "duty_days", "sessions"


@dataclass(frozen=True, slots=True)
class WeekPlan:
    """One assignment's ISO week: the days it covers, the workdays available, and what
    counts as one unit of duty (a duty day of `hours` on site, or a half-day session)."""

    assignment: str
    doctor: str
    kind: str
    places: tuple[str, ...]
    starts: date  # the assignment's own dates: an untagged visit counts on a date they cover
    ends: date | None
    week: str
    first: date  # the week ∩ the assignment's dates
    last: date
    sunday: date
    rule: str
    unit: str  # duty_days | sessions
    minimum: int
    required: int  # min(minimum, available workdays)
    hours: float  # on site for a duty day, or for a half-day session
    per_date: int  # units a date can count (1 duty day; patrol sessions a date)
    workdays: tuple[date, ...]
    available: tuple[date, ...]  # workdays not on approved leave or training
    calendar: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "assignment": self.assignment,
            "doctor": self.doctor,
            "kind": self.kind,
            "places": list(self.places),
            "starts": self.starts.isoformat(),
            "ends": self.ends.isoformat() if self.ends else None,
            "week": self.week,
            "first": self.first.isoformat(),
            "last": self.last.isoformat(),
            "sunday": self.sunday.isoformat(),
            "rule": self.rule,
            "unit": self.unit,
            "minimum": self.minimum,
            "required": self.required,
            "hours": self.hours,
            "per_date": self.per_date,
            "workdays": [d.isoformat() for d in self.workdays],
            "available": [d.isoformat() for d in self.available],
            "calendar": self.calendar,
        }


def excused_days(data: Scenario, doctor: str) -> set[date]:
    """Days on approved leave or training: they are not available workdays (RULES.md,
    calendar conventions), the same set the engine's index keeps."""
    excused: set[date] = set()
    for leave in data.leave:
        if leave.doctor == doctor and leave.approved:
            excused.update(days(leave.start, leave.end))
    for training in data.trainings:
        if training.doctor == doctor:
            excused.update(days(training.start, training.end))
    return excused


def week_plans(
    data: Scenario, *, doctor: str, around: date, ruleset: RuleSet, weeks_before: int = 1,
    weeks_after: int = 2,
) -> list[WeekPlan]:  # fmt: skip
    """The doctor's plans for the ISO weeks from `weeks_before` before the week of `around`
    to `weeks_after` after it, one a week an assignment covers and whose weekly rule is on."""
    monday = week_start(around)
    first = monday - timedelta(weeks=weeks_before)
    last = monday + timedelta(weeks=weeks_after, days=6)
    excused = excused_days(data, doctor)
    plans = []
    for a in sorted(data.assignments, key=lambda a: a.id):
        if a.doctor != doctor:
            continue
        rule = WEEKLY_RULE_PATROL if a.kind == PATROL else WEEKLY_RULE.get(a.kind)
        if rule is None:
            continue
        for week_monday in weeks(max(first, a.start), min(last, a.end or last)):
            sunday = week_monday + timedelta(days=6)
            span = overlap((week_monday, sunday), (a.start, a.end or date.max))
            if span is None:
                continue
            version = ruleset.version_at(week_monday)
            if not version.enabled(rule):
                continue
            cal = ruleset.calendar(version)
            workdays = tuple(d for d in days(*span) if cal.is_workday(d))
            available = tuple(d for d in workdays if d not in excused)
            if a.kind == PATROL:
                minimum = int(version.param(rule, "min_sessions"))
                per_date = int(version.param(rule, "max_sessions_per_date"))
                hours, unit = float(version.definition("half_day_hours")), SESSIONS
            else:
                minimum, per_date = int(version.param(rule, "min_days")), 1
                hours, unit = float(version.definition("min_hours_per_day")), DUTY_DAYS
            plans.append(
                WeekPlan(
                    assignment=a.id,
                    doctor=a.doctor,
                    kind=a.kind,
                    places=a.places,
                    starts=a.start,
                    ends=a.end,
                    week=week_label(week_monday),
                    first=span[0],
                    last=span[1],
                    sunday=sunday,
                    rule=rule,
                    unit=unit,
                    minimum=minimum,
                    required=min(minimum, len(available)),
                    hours=hours,
                    per_date=per_date,
                    workdays=workdays,
                    available=available,
                    calendar=cal.sources(week_monday, sunday),
                )
            )
    return plans
