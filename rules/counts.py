"""Counts the county bureau reads (RULES.md, summaries): weekly duty per assignment, days
since the last visit per village, patients, and the general consultation fee (一般诊疗费).

Pure functions over the same Scenario and Index the evaluation uses; the weekly counts come
from the very code that judges posting.days_per_week, sitin.days_per_week and patrol.per_week.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

from rules.context import EvaluationContext
from rules.index import Index
from rules.model import Scenario
from rules.periods import DateRange
from rules.ruleset import RuleSet
from rules.weekly import weekly_measures


@dataclass(frozen=True, slots=True)
class WeekCount:
    assignment: str
    doctor: str
    kind: str
    week: str
    unit: str  # duty_days (posting, sitin) | sessions (patrol)
    measured: int
    required: int
    available_workdays: int
    over: bool
    calendar: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "assignment": self.assignment,
            "doctor": self.doctor,
            "kind": self.kind,
            "week": self.week,
            "unit": self.unit,
            "measured": self.measured,
            "required": self.required,
            "available_workdays": self.available_workdays,
            "over": self.over,
            "calendar": self.calendar,
        }


def weekly_counts(
    data: Scenario,
    *,
    as_of: date,
    ruleset: RuleSet,
    doctors: Iterable[str] | None = None,
    period: DateRange | None = None,
) -> list[WeekCount]:
    """Per assignment and ISO week: duty days (or patrol sessions) done and required. A week
    is listed only when the rule set has the assignment kind's weekly rule on."""
    index = Index(data, as_of)
    scope = set(doctors) if doctors is not None else None
    ctx = EvaluationContext(index, ruleset, as_of, scope, period)
    out = []
    for a in data.assignments:
        if scope is not None and a.doctor not in scope:
            continue
        for m in weekly_measures(ctx, a):
            out.append(
                WeekCount(
                    m.assignment,
                    m.doctor,
                    m.kind,
                    m.week,
                    m.unit,
                    m.measured,
                    m.required,
                    m.available,
                    m.over,
                    m.calendar,
                )  # fmt: skip
            )
    return out


def days_since_last_visit(data: Scenario, *, as_of: date) -> dict[str, int | None]:
    """Per village: days from its last visit (on or before `as_of`) to `as_of`; None when
    never visited."""
    index = Index(data, as_of)
    out: dict[str, int | None] = {}
    for place in data.places:
        if place.level != "village":
            continue
        visit_days = index.visit_days_at.get(place.code, [])
        pos = bisect_right(visit_days, as_of)
        out[place.code] = (as_of - visit_days[pos - 1]).days if pos else None
    return out


def patients_by_place(data: Scenario, first: date, last: date) -> dict[str, int]:
    """Patients seen per place on visits whose check-in date is in [first, last]."""
    out: dict[str, int] = defaultdict(int)
    for v in data.visits:
        if first <= v.day <= last:
            out[v.place] += v.patients
    return dict(out)


@dataclass(frozen=True, slots=True)
class Fee:
    patients: int
    total: float
    insurance: float
    personal: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "patients": self.patients,
            "total": self.total,
            "insurance": self.insurance,
            "personal": self.personal,
        }


def consultation_fees(
    data: Scenario, first: date, last: date, *, ruleset: RuleSet
) -> dict[str, Fee]:
    """一般诊疗费 implied by patient counts at government village clinics (guangxi (二十二)):
    per village with a clinic, patients × fee_per_patient_visit, split into the insurance fund
    and personal shares, each visit priced by the rule-set version in force on its date."""
    clinics = {p.code for p in data.places if p.level == "village" and p.has_clinic}
    sums: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0, 0.0])
    for v in data.visits:
        if v.place not in clinics or not first <= v.day <= last:
            continue
        version = ruleset.version_at(v.day)
        row = sums[v.place]
        row[0] += v.patients
        row[1] += v.patients * version.definition("fee_per_patient_visit")
        row[2] += v.patients * version.definition("fee_insurance_share")
        row[3] += v.patients * version.definition("fee_personal_share")
    return {
        code: Fee(int(row[0]), round(row[1], 2), round(row[2], 2), round(row[3], 2))
        for code, row in sums.items()
    }
