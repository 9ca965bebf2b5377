"""The scenario indexed once for an evaluation: visits by doctor and place, leave and
training days, and per assignment the visits that count for it (RULES.md, counting visits).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any

from rules.model import PATROL, POSTING, Assignment, Doctor, Place, Scenario, Visit
from rules.periods import ONE_DAY, days, overlap
from rules.workdays import WorkCalendar

NOON = time(12, 0)


def split_by_date(visit: Visit) -> list[tuple[date, float]]:
    """Hours on site per local date. A visit across midnight is split at local midnight (at
    the check-in's UTC offset), each date credited with its own part."""
    tz = visit.check_in.tzinfo
    start, end = visit.check_in, visit.check_out.astimezone(tz)
    parts = []
    while True:
        midnight = datetime.combine(start.date() + ONE_DAY, time(0), tzinfo=tz)
        if end <= midnight:
            parts.append((start.date(), (end - start).total_seconds() / 3600.0))
            return parts
        parts.append((start.date(), (midnight - start).total_seconds() / 3600.0))
        start = midnight


def slot_of(visit: Visit) -> str:
    """am when the session starts before 12:00 local time (RULES.md, half-day session)."""
    return "am" if visit.check_in.time() < NOON else "pm"


@dataclass
class AssignmentData:
    assignment: Assignment
    visits: list[Visit] = field(default_factory=list)
    # date -> place -> hours on site; date -> visit ids
    hours: dict[date, dict[str, float]] = field(default_factory=dict)
    visit_ids: dict[date, list[str]] = field(default_factory=dict)

    _cache: dict[tuple[str, float, int], dict[date, Any]] = field(default_factory=dict)

    def duty_days(self, min_hours: float) -> dict[date, list[str]]:
        """Dates with at least `min_hours` on site at one place, with their visit ids."""
        key = ("duty", min_hours, 0)
        if key not in self._cache:
            self._cache[key] = {
                day: self.visit_ids[day]
                for day, by_place in self.hours.items()
                if max(by_place.values()) >= min_hours - 1e-9
            }
        return self._cache[key]

    def sessions(self, half_day: float, per_date: int) -> dict[date, list[Visit]]:
        """Qualifying half-day sessions by date, at most `per_date` a date (earliest first)."""
        key = ("sessions", half_day, per_date)
        if key not in self._cache:
            out: dict[date, list[Visit]] = defaultdict(list)
            for visit in self.visits:
                if visit.hours >= half_day - 1e-9 and len(out[visit.day]) < per_date:
                    out[visit.day].append(visit)
            self._cache[key] = dict(out)
        return self._cache[key]


class Index:
    """The scenario indexed once by doctor, assignment, place and date."""

    def __init__(self, scenario: Scenario, as_of: date) -> None:
        self.as_of = as_of
        self.places: dict[str, Place] = {p.code: p for p in scenario.places}
        self.doctors: dict[str, Doctor] = {d.id: d for d in scenario.doctors}
        self.children: dict[str, list[Place]] = defaultdict(list)
        for place in scenario.places:
            if place.parent is not None:
                self.children[place.parent].append(place)
        self.assignments_of: dict[str, list[Assignment]] = defaultdict(list)
        self.assignments_at: dict[str, list[Assignment]] = defaultdict(list)
        for a in scenario.assignments:
            self.assignments_of[a.doctor].append(a)
            for code in a.places:
                self.assignments_at[code].append(a)
        # Data through the end of the evaluation date: later visits are not yet facts.
        self.visits_of: dict[str, list[Visit]] = defaultdict(list)
        at_place: dict[str, list[tuple[date, str]]] = defaultdict(list)
        first_day = as_of
        for v in scenario.visits:
            if v.day <= as_of:
                self.visits_of[v.doctor].append(v)
                at_place[v.place].append((v.day, v.id))
                first_day = min(first_day, v.day)
        for visits in self.visits_of.values():
            visits.sort(key=lambda v: (v.check_in, v.id))
        self.visit_days_at: dict[str, list[date]] = {}
        self.visit_ids_at: dict[str, list[str]] = {}
        for code, entries in at_place.items():
            entries.sort()
            self.visit_days_at[code] = [d for d, _ in entries]
            self.visit_ids_at[code] = [i for _, i in entries]
        self.excused: dict[str, set[date]] = defaultdict(set)  # approved leave or training
        self.leave_days: dict[str, set[date]] = defaultdict(set)
        self.unapproved_leave: dict[str, set[date]] = defaultdict(set)
        for leave in scenario.leave:
            target = self.leave_days if leave.approved else self.unapproved_leave
            for day in days(leave.start, leave.end):
                target[leave.doctor].add(day)
                if leave.approved:
                    self.excused[leave.doctor].add(day)
        self.trainings_of: dict[str, list[Any]] = defaultdict(list)
        self.training_days: dict[str, set[date]] = defaultdict(set)
        for training in scenario.trainings:
            self.trainings_of[training.doctor].append(training)
            for day in days(training.start, training.end):
                self.training_days[training.doctor].add(day)
                self.excused[training.doctor].add(day)
        starts = [a.start for a in scenario.assignments] + [t.start for t in scenario.trainings]
        self.first_day = min([first_day, *starts]) if starts else first_day
        self._assignment_data: dict[str, AssignmentData] = {}
        self._workdays: dict[tuple[int, int], list[date]] = {}
        self._village_doctors: dict[tuple[frozenset[str], date, date], set[str]] = {}

    def workdays_of_year(self, cal: WorkCalendar, year: int) -> list[date]:
        key = (id(cal), year)
        if key not in self._workdays:
            first, last = date(year, 1, 1), date(year, 12, 31)
            self._workdays[key] = [d for d in days(first, last) if cal.is_workday(d)]
        return self._workdays[key]

    def assignment_data(self, a: Assignment) -> AssignmentData:
        """The doctor's visits that count for `a`: tagged with it, or untagged at one of its
        places on a date it covers. A visit tagged with another assignment never counts."""
        data = self._assignment_data.get(a.id)
        if data is not None:
            return data
        data = AssignmentData(a)
        places = set(a.places)
        for v in self.visits_of.get(a.doctor, ()):
            if v.assignment == a.id or (
                v.assignment is None and v.place in places and a.covers(v.day)
            ):
                data.visits.append(v)
                for day, hours in split_by_date(v):
                    by_place = data.hours.setdefault(day, {})
                    by_place[v.place] = by_place.get(v.place, 0.0) + hours
                    data.visit_ids.setdefault(day, []).append(v.id)
        self._assignment_data[a.id] = data
        return data

    def village_doctors(self, villages: set[str], first: date, last: date) -> set[str]:
        """Village doctors serving `villages` in [first, last]: doctors whose home is one of
        them, or who hold a posting or patrol assignment to one of them overlapping the dates."""
        cache_key = (frozenset(villages), first, last)
        if cache_key in self._village_doctors:
            return self._village_doctors[cache_key]
        found = {d.id for d in self.doctors.values() if d.home in villages}
        for code in villages:
            for a in self.assignments_at.get(code, ()):
                if a.kind in (POSTING, PATROL) and overlap(
                    (a.start, a.end or date.max), (first, last)
                ):
                    found.add(a.doctor)
        self._village_doctors[cache_key] = found
        return found

    def villages_under(self, code: str) -> set[str]:
        out: set[str] = set()
        stack = [code]
        while stack:
            for child in self.children.get(stack.pop(), ()):
                if child.level == "village":
                    out.add(child.code)
                stack.append(child.code)
        return out
