"""The evaluation: a pure function from a Scenario, an evaluation date and a rule set to
flags. Every rule cites its line in RULES.md; docs/rules.md explains each interpretation.

`evaluate(..., doctors=D, period=P)` returns exactly the flags of the full evaluation for
which `Flag.in_scope(D, P)` holds: flags about a doctor in D (place-level flags always
qualify) whose `scope` (the dates its data depends on) overlaps P. The server re-evaluates
the doctor-weeks a push touched and replaces the stored flags that satisfy the same test.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from rules.flags import AT_RISK, VIOLATION, Flag
from rules.model import Assignment, Doctor, Place, Scenario, Slot, Visit
from rules.periods import (
    ONE_DAY,
    DateRange,
    add_months,
    days,
    label_range,
    month_end,
    month_label,
    months,
    overlap,
    range_label,
    week_label,
    weeks,
)
from rules.ruleset import RuleSet, RuleSetVersion
from rules.workdays import WorkCalendar

KIND_ZH = {"posting": "派驻", "patrol": "巡诊", "sitin": "坐诊"}
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


def _fmt_days(values: Iterable[date]) -> str:
    listed = [d.isoformat() for d in values]
    return ", ".join(listed) if listed else "—"


def _num(value: float) -> float | int:
    return int(value) if float(value).is_integer() else round(value, 2)


@dataclass
class _AssignmentData:
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
        self._assignment_data: dict[str, _AssignmentData] = {}
        self._workdays: dict[tuple[int, int], list[date]] = {}
        self._village_doctors: dict[tuple[frozenset[str], date, date], set[str]] = {}

    def workdays_of_year(self, cal: WorkCalendar, year: int) -> list[date]:
        key = (id(cal), year)
        if key not in self._workdays:
            first, last = date(year, 1, 1), date(year, 12, 31)
            self._workdays[key] = [d for d in days(first, last) if cal.is_workday(d)]
        return self._workdays[key]

    def assignment_data(self, a: Assignment) -> _AssignmentData:
        """The doctor's visits that count for `a`: tagged with it, or untagged at one of its
        places on a date it covers. A visit tagged with another assignment never counts."""
        data = self._assignment_data.get(a.id)
        if data is not None:
            return data
        data = _AssignmentData(a)
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
                if a.kind in ("posting", "patrol") and overlap(
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


@dataclass
class _Context:
    index: Index
    ruleset: RuleSet
    as_of: date
    doctors: set[str] | None
    period: DateRange | None

    def doctor_in_scope(self, doctor: str) -> bool:
        return self.doctors is None or doctor in self.doctors

    def touches(self, first: date, last: date) -> bool:
        return self.period is None or overlap((first, last), self.period) is not None

    _versions: dict[date, tuple[RuleSetVersion, WorkCalendar]] = field(default_factory=dict)

    def version(self, day: date) -> tuple[RuleSetVersion, WorkCalendar]:
        """The rule set version in force on `day`, and its calendar."""
        found = self._versions.get(day)
        if found is None:
            version = self.ruleset.version_at(day)
            found = self._versions[day] = (version, self.ruleset.calendar(version))
        return found

    def flag(
        self,
        rule: str,
        status: str,
        subject: tuple[str, str],
        period: str,
        measured: Any,
        required: Any,
        evidence: Iterable[str],
        zh: str,
        en: str,
        version: RuleSetVersion,
        doctor: str | None,
        scope: DateRange,
    ) -> Flag:
        first, last = label_range(period)
        calendar = self.ruleset.calendar(version).sources(first, min(last, date(9999, 1, 1)))
        return Flag(
            rule=rule,
            status=status,
            subject_type=subject[0],
            subject_id=subject[1],
            period=period,
            measured=measured,
            required=required,
            evidence=tuple(dict.fromkeys(evidence)),
            explanation_zh=zh,
            explanation_en=en,
            ruleset=(self.ruleset.name, version.version),
            calendar=calendar,
            doctor=doctor,
            scope=scope,
        )


# ---------------------------------------------------------------------------------------
# Weekly requirement (shared by posting.days_per_week, sitin.days_per_week, patrol.per_week
# and the bureau's weekly counts): RULES.md calendar conventions.


@dataclass(frozen=True)
class WeekMeasure:
    """What one assignment did and owed in one ISO week."""

    assignment: str
    doctor: str
    kind: str
    week: str
    span: DateRange  # the week ∩ the assignment's dates
    unit: str  # duty_days | sessions
    measured: int
    required: int
    minimum: int
    workdays: int
    excused: int
    available: int
    remaining: int  # available workdays after the evaluation date
    per_remaining_day: int
    over: bool
    holidays: tuple[date, ...]
    make_up: tuple[date, ...]
    unapproved_leave: int
    evidence: tuple[str, ...]
    version: RuleSetVersion
    calendar: str

    @property
    def reachable(self) -> int:
        return self.measured + self.remaining * self.per_remaining_day


WEEKLY_RULE = {"posting": "posting.days_per_week", "sitin": "sitin.days_per_week"}
WEEKLY_RULE_PATROL = "patrol.per_week"


def weekly_measures(ctx: _Context, a: Assignment) -> Iterator[WeekMeasure]:
    """Each ISO week of `a` that has started by the evaluation date (and touches the scope)."""
    index, as_of = ctx.index, ctx.as_of
    rule = WEEKLY_RULE_PATROL if a.kind == "patrol" else WEEKLY_RULE[a.kind]
    data = index.assignment_data(a)
    last_day = min(a.end or as_of, as_of)
    if last_day < a.start:
        return
    excused = index.excused.get(a.doctor, set())
    unapproved = index.unapproved_leave.get(a.doctor, set())
    for monday in weeks(a.start, last_day):
        sunday = monday + timedelta(days=6)
        if not ctx.touches(monday, sunday):
            continue
        version, cal = ctx.version(monday)
        if not version.enabled(rule):
            continue
        span = overlap((monday, sunday), (a.start, a.end or date.max))
        assert span is not None  # noqa: S101 - weeks() only yields weeks touching the span
        workdays = [d for d in days(*span) if cal.is_workday(d)]
        available = [d for d in workdays if d not in excused]
        if a.kind == "patrol":
            minimum = int(version.param(rule, "min_sessions"))
            per_date = int(version.param(rule, "max_sessions_per_date"))
            sessions = data.sessions(version.definition("half_day_hours"), per_date)
            counted = [v for day in days(*span) if day <= as_of for v in sessions.get(day, ())]
            measured, evidence, unit = len(counted), [v.id for v in counted], "sessions"
        else:
            minimum = int(version.param(rule, "min_days"))
            per_date = 1
            duty = data.duty_days(version.definition("min_hours_per_day"))
            duty_in = [d for d in days(*span) if d <= as_of and d in duty]
            measured, unit = len(duty_in), "duty_days"
            evidence = [i for d in duty_in for i in duty[d]]
        holidays, make_up = cal.days_off_and_make_up(*span)
        yield WeekMeasure(
            assignment=a.id,
            doctor=a.doctor,
            kind=a.kind,
            week=week_label(monday),
            span=span,
            unit=unit,
            measured=measured,
            required=min(minimum, len(available)),
            minimum=minimum,
            workdays=len(workdays),
            excused=len(workdays) - len(available),
            available=len(available),
            remaining=sum(1 for d in available if d > as_of),
            per_remaining_day=per_date,
            over=sunday <= as_of,
            holidays=tuple(holidays),
            make_up=tuple(make_up),
            unapproved_leave=sum(1 for d in workdays if d in unapproved and d not in excused),
            evidence=tuple(evidence),
            version=version,
            calendar=cal.sources(monday, sunday),
        )


def _weekly_flag(ctx: _Context, m: WeekMeasure, rule: str) -> Flag | None:
    if m.over:
        if m.measured >= m.required:
            return None
        status = VIOLATION
    elif m.reachable < m.required:
        status = AT_RISK
    else:
        return None
    first, last = m.span
    unit_zh = "个在岗日" if m.unit == "duty_days" else "次半天巡诊"
    if m.unit == "duty_days":
        hours = _num(m.version.definition("min_hours_per_day"))
        what_en, what_zh = (
            f"duty days (≥ {hours} h on site a day)",
            f"{unit_zh}（每日在岗不少于{hours}小时）",
        )
    else:
        hours = _num(m.version.definition("half_day_hours"))
        what_en = f"half-day sessions (≥ {hours} h each, at most {m.per_remaining_day} a date)"
        what_zh = f"{unit_zh}（每次不少于{hours}小时，每日最多{m.per_remaining_day}次）"
    unapproved_en = (
        f" ({m.unapproved_leave} workday(s) of leave not approved do not count)"
        if m.unapproved_leave
        else ""
    )
    unapproved_zh = f"（未批准的请假{m.unapproved_leave}天不扣除）" if m.unapproved_leave else ""
    en = (
        f"{m.week}, {first}..{last} of {m.kind} {m.assignment}: {m.workdays} workday(s) "
        f"(holidays: {_fmt_days(m.holidays)}; make-up workdays: {_fmt_days(m.make_up)}; "
        f"calendar {m.calendar}), minus {m.excused} on approved leave or training{unapproved_en} "
        f"= {m.available} available; required min({m.minimum}, {m.available}) = {m.required} "
        f"{what_en}; measured {m.measured}."
    )
    zh = (
        f"{m.week}（{KIND_ZH[m.kind]} {m.assignment}，{first} 至 {last}）：工作日{m.workdays}天"
        f"（节假日：{_fmt_days(m.holidays)}；调休上班：{_fmt_days(m.make_up)}；日历 {m.calendar}），"
        f"扣除已批准请假或培训{m.excused}天{unapproved_zh}，可用工作日{m.available}天；"
        f"要求 min({m.minimum}, {m.available}) = {m.required}{what_zh}，实际{m.measured}。"
    )
    if status == AT_RISK:
        en += (
            f" Not over as of {ctx.as_of}: {m.remaining} available workday(s) remain, so at most "
            f"{m.reachable} can be reached."
        )
        zh += f" 截至{ctx.as_of}本周未结束：剩余可用工作日{m.remaining}天，最多可达{m.reachable}。"
    monday, sunday = label_range(m.week)
    return ctx.flag(
        rule,
        status,
        ("assignment", m.assignment),
        m.week,
        m.measured,
        m.required,
        m.evidence,
        zh,
        en,
        m.version,
        m.doctor,
        (monday, sunday),
    )


def _rule_weekly(ctx: _Context, assignments: list[Assignment]) -> Iterator[Flag]:
    for a in assignments:
        rule = WEEKLY_RULE_PATROL if a.kind == "patrol" else WEEKLY_RULE[a.kind]
        for m in weekly_measures(ctx, a):
            flag = _weekly_flag(ctx, m, rule)
            if flag is not None:
                yield flag


# ---------------------------------------------------------------------------------------
# posting.min_duration and sitin.min_service (RULES.md): end ≥ start + N months, with
# `end` the inclusive last day of duty, so 2026-01-05..2026-07-04 is six months.


def _rule_min_duration(ctx: _Context, assignments: list[Assignment]) -> Iterator[Flag]:
    for a in assignments:
        if a.kind not in ("posting", "sitin") or a.end is None:
            continue
        rule = "posting.min_duration" if a.kind == "posting" else "sitin.min_service"
        version, _ = ctx.version(a.start)
        if not version.enabled(rule):
            continue
        n = int(version.param(rule, "min_months"))
        due = add_months(a.start, n)  # the first day after n full months
        if a.end + ONE_DAY >= due:
            continue
        status = VIOLATION if a.end <= ctx.as_of else AT_RISK
        measured, required = (a.end - a.start).days + 1, (due - a.start).days
        state_en = "ended" if status == VIOLATION else "is planned to end"
        state_zh = "已于" if status == VIOLATION else "计划于"
        en = (
            f"{a.kind} {a.id} {state_en} on {a.end}: {measured} day(s) from {a.start}; {n} months from "
            f"{a.start} require duty through {due - ONE_DAY} ({required} days)."
        )
        zh = (
            f"{KIND_ZH[a.kind]} {a.id} {state_zh}{a.end}结束：自{a.start}起共{measured}天；"
            f"服务期{n}个月要求至少到{due - ONE_DAY}（{required}天）。"
        )
        yield ctx.flag(
            rule,
            status,
            ("assignment", a.id),
            range_label(a.start, a.end),
            measured,
            required,
            (),
            zh,
            en,
            version,
            a.doctor,
            (a.start, a.end),
        )


# ---------------------------------------------------------------------------------------
# posting.continuity (RULES.md): no run of ≥ max_gap_days calendar days inside a posting
# without a duty day, approved leave or training. The period is the gap's first date, so the
# key stays stable while an open gap grows; its scope reaches one day past each end, where
# the duty days that bound it are.


def _rule_continuity(ctx: _Context, assignments: list[Assignment]) -> Iterator[Flag]:
    for a in assignments:
        if a.kind != "posting" or a.start > ctx.as_of:
            continue
        data = ctx.index.assignment_data(a)
        excused = ctx.index.excused.get(a.doctor, set())
        last = min(a.end or ctx.as_of, ctx.as_of)
        gap_start: date | None = None
        for day in days(a.start, last + ONE_DAY):
            min_hours = ctx.version(day)[0].definition("min_hours_per_day")
            by_place = data.hours.get(day)
            covered = (
                day > last
                or day in excused
                or (by_place is not None and max(by_place.values()) >= min_hours - 1e-9)
            )
            if not covered:
                if gap_start is None:
                    gap_start = day
                continue
            if gap_start is None:
                continue
            gap_end, start = day - ONE_DAY, gap_start
            gap_start = None
            # A gap is open when it runs into the evaluation date of a posting still going on.
            still_open = day > last and last == ctx.as_of and (a.end is None or a.end > ctx.as_of)
            flag = _continuity_flag(ctx, a, data, start, gap_end, not still_open)
            if flag is not None:
                yield flag


def _continuity_flag(
    ctx: _Context, a: Assignment, data: _AssignmentData, first: date, last: date, closed: bool
) -> Flag | None:
    rule = "posting.continuity"
    version, _ = ctx.version(first)
    if not version.enabled(rule):
        return None
    max_gap = int(version.param(rule, "max_gap_days"))
    length = (last - first).days + 1
    if length < max_gap:
        return None
    evidence = data.visit_ids.get(first - ONE_DAY, []) + (
        data.visit_ids.get(last + ONE_DAY, []) if closed else []
    )
    open_en = "" if closed else f" (still open on {ctx.as_of})"
    open_zh = "" if closed else f"（截至{ctx.as_of}仍未结束）"
    en = (
        f"posting {a.id}: {length} calendar days {first}..{last}{open_en} without a duty day, "
        f"approved leave or training; a run must stay under {max_gap} days."
    )
    zh = (
        f"派驻 {a.id}：{first} 至 {last} 连续{length}天{open_zh}既无在岗日，也无已批准请假或培训；"
        f"要求不得连续{max_gap}天及以上。"
    )
    return ctx.flag(
        rule,
        VIOLATION,
        ("assignment", a.id),
        first.isoformat(),
        length,
        max_gap - 1,
        evidence,
        zh,
        en,
        version,
        a.doctor,
        (first - ONE_DAY, last + ONE_DAY),
    )


# ---------------------------------------------------------------------------------------
# patrol.half_day (RULES.md): each patrol session lasts ≥ half_day_hours.


def _rule_half_day(ctx: _Context, assignments: list[Assignment]) -> Iterator[Flag]:
    rule = "patrol.half_day"
    for a in assignments:
        if a.kind != "patrol":
            continue
        for v in ctx.index.assignment_data(a).visits:
            version, _ = ctx.version(v.day)
            if not version.enabled(rule):
                continue
            need = version.definition("half_day_hours")
            if v.hours >= need - 1e-9:
                continue
            hours = round(v.hours, 2)
            en = (
                f"patrol visit {v.id} at {v.place} on {v.day} lasted {hours} h, under the "
                f"{_num(need)} h of a half-day session; it does not count for patrol.per_week."
            )
            zh = (
                f"巡诊记录 {v.id}（{v.place}，{v.day}）时长{hours}小时，不足半天（{_num(need)}小时），"
                f"不计入每周巡诊次数。"
            )
            yield ctx.flag(
                rule, VIOLATION, ("visit", v.id), v.day.isoformat(), hours, need, (v.id,),
                zh, en, version, v.doctor, (v.day, v.day),
            )  # fmt: skip


# ---------------------------------------------------------------------------------------
# patrol.fixed_schedule (RULES.md): declared slots; in a month with ≥ 2 qualifying sessions
# the on-schedule share ≥ min_on_schedule_ratio; no declared slots is flagged once.


def _rule_fixed_schedule(ctx: _Context, assignments: list[Assignment]) -> Iterator[Flag]:
    rule = "patrol.fixed_schedule"
    for a in assignments:
        if a.kind != "patrol":
            continue
        if not a.slots:
            version, _ = ctx.version(a.start)
            if version.enabled(rule):
                status = VIOLATION if a.start <= ctx.as_of else AT_RISK
                yield ctx.flag(
                    rule, status, ("assignment", a.id), a.start.isoformat(), 0, 1, (),
                    f"巡诊安排 {a.id} 未申报固定巡诊时段（星期几、上午或下午）。",
                    f"patrol assignment {a.id} declares no slots (weekday + am/pm).",
                    version, a.doctor, (a.start, a.end or date.max),
                )  # fmt: skip
            continue
        if a.start > ctx.as_of:
            continue
        declared = {(s.weekday, s.slot) for s in a.slots}
        data = ctx.index.assignment_data(a)
        for first in months(a.start, min(a.end or ctx.as_of, ctx.as_of)):
            last = month_end(first)
            if not ctx.touches(first, last):
                continue
            version, cal = ctx.version(first)
            if not version.enabled(rule):
                continue
            per_date = (
                int(version.param("patrol.per_week", "max_sessions_per_date"))
                if version.enabled("patrol.per_week")
                else 2
            )
            sessions = data.sessions(version.definition("half_day_hours"), per_date)
            span = overlap((first, last), (a.start, a.end or date.max))
            assert span is not None  # noqa: S101 - months() only yields months touching it
            counted = [
                v for d in days(span[0], min(span[1], ctx.as_of)) for v in sessions.get(d, ())
            ]
            on = [v for v in counted if (v.day.isoweekday(), slot_of(v)) in declared]
            total = len(counted)
            minimum = int(version.param(rule, "min_sessions_per_month"))
            ratio = float(version.param(rule, "min_on_schedule_ratio"))
            if total < minimum:
                continue
            over = last <= ctx.as_of
            extra = 0
            if not over:
                excused = ctx.index.excused.get(a.doctor, set())
                per_weekday: dict[int, int] = defaultdict(int)
                for s in a.slots:
                    per_weekday[s.weekday] += 1
                extra = sum(
                    min(per_date, per_weekday.get(d.isoweekday(), 0))
                    for d in days(ctx.as_of + ONE_DAY, span[1])
                    if cal.is_workday(d) and d not in excused
                )
            share = len(on) / total
            if (len(on) + extra) / (total + extra) >= ratio - 1e-9:
                continue
            status = VIOLATION if over else AT_RISK
            slots = ", ".join(f"{s.weekday}{s.slot}" for s in a.slots)
            en = (
                f"patrol {a.id}, {month_label(first)}: {len(on)} of {total} qualifying sessions "
                f"fell in a declared slot ({slots}), share {share:.2f} < {ratio}."
            )
            zh = (
                f"巡诊 {a.id}，{month_label(first)}：{total}次合格巡诊中{len(on)}次在申报时段（{slots}）内，"
                f"占比{share:.2f}，低于{ratio}。"
            )
            if not over:
                en += f" Even all {extra} remaining declared slots cannot lift it to {ratio}."
                zh += f" 即使剩余{extra}个申报时段全部按时巡诊也无法达到。"
            yield ctx.flag(
                rule, status, ("assignment", a.id), month_label(first), round(share, 3), ratio,
                [v.id for v in counted if v not in on], zh, en, version, a.doctor, (first, last),
            )  # fmt: skip


# ---------------------------------------------------------------------------------------
# training.sessions_per_year and training.days_per_year (RULES.md, sichuan (五)): each village
# doctor, each calendar year. A session is a training record starting in the year; a training
# day is a workday inside a training record's dates.


def _rule_training(ctx: _Context, doctors: list[Doctor]) -> Iterator[Flag]:
    index = ctx.index
    all_villages = frozenset(p.code for p in index.places.values() if p.level == "village")
    for doctor in doctors:
        for year in range(index.first_day.year, ctx.as_of.year + 1):
            jan1, dec31 = date(year, 1, 1), date(year, 12, 31)
            if not ctx.touches(jan1, dec31):
                continue
            # A village doctor that year: home in a village, or a posting or patrol to one
            # overlapping the year.
            if doctor.id not in index.village_doctors(set(all_villages), jan1, dec31):
                continue
            version, cal = ctx.version(jan1)
            trainings = [t for t in index.trainings_of.get(doctor.id, ()) if t.start.year == year]
            training_days = index.training_days.get(doctor.id, set())
            workdays = index.workdays_of_year(cal, year)
            over = dec31 <= ctx.as_of
            remaining = [d for d in workdays if d > ctx.as_of and d not in training_days]
            counted_days = [d for d in workdays if d in training_days and d <= ctx.as_of]
            for rule, measured, minimum, what_en, what_zh in (
                ("training.sessions_per_year", len(trainings), "min_sessions", "training sessions", "次培训"),
                ("training.days_per_year", len(counted_days), "min_days", "training workdays", "个培训工作日"),
            ):  # fmt: skip
                if not version.enabled(rule):
                    continue
                need = min(int(version.param(rule, minimum)), len(workdays))
                if over and measured >= need:
                    continue
                if not over and measured + len(remaining) >= need:
                    continue
                status = VIOLATION if over else AT_RISK
                en = (
                    f"village doctor {doctor.id}, {year}: {measured} {what_en}; required {need} "
                    f"({len(workdays)} workdays in the year, calendar {cal.sources(jan1, dec31)})."
                )
                zh = f"乡村医生 {doctor.id}，{year}年：{measured}{what_zh}，要求不少于{need}。"
                if not over:
                    en += f" Only {len(remaining)} workday(s) remain after {ctx.as_of}."
                    zh += f" {ctx.as_of}之后仅剩{len(remaining)}个工作日。"
                yield ctx.flag(
                    rule, status, ("doctor", doctor.id), str(year), measured, need,
                    (), zh, en, version, doctor.id, (jan1, dec31),
                )  # fmt: skip


# ---------------------------------------------------------------------------------------
# coverage.village (RULES.md; national (四), shanxi 3): judged at the end of each ISO week.
# A village needs coverage when it has no clinic or fewer than small_village_population
# residents; it is covered when a posting or patrol assignment to it overlaps the week and
# some visit there falls in the coverage_window_days ending on the week's Sunday.


def _rule_coverage(ctx: _Context) -> Iterator[Flag]:
    rule = "coverage.village"
    index = ctx.index
    villages = [p for p in index.places.values() if p.level == "village"]
    for monday in weeks(index.first_day, ctx.as_of):
        sunday = monday + timedelta(days=6)
        version, _ = ctx.version(monday)
        if not version.enabled(rule):
            continue
        window = int(version.param(rule, "coverage_window_days"))
        small = version.param(rule, "small_village_population")
        scope = (min(monday, sunday - timedelta(days=window - 1)), sunday)
        if not ctx.touches(*scope):
            continue
        over = sunday <= ctx.as_of
        horizon = min(sunday, ctx.as_of)
        for village in villages:
            small_village = (
                village.population is not None
                and small is not None
                and (village.population < small)
            )
            if village.has_clinic and not small_village:
                continue
            duty = [
                a for a in index.assignments_at.get(village.code, ())
                if a.kind in ("posting", "patrol") and overlap((a.start, a.end or date.max), (monday, sunday))
            ]  # fmt: skip
            visit_days = index.visit_days_at.get(village.code, [])
            pos = bisect_right(visit_days, horizon)
            last_visit = visit_days[pos - 1] if pos else None
            since = (horizon - last_visit).days if last_visit else None
            visited = last_visit is not None and (sunday - last_visit).days < window
            if over:
                if duty and visited:
                    continue
                status = VIOLATION
            else:
                later = [a for a in duty if (a.end or date.max) > ctx.as_of]
                if duty and (visited or later):
                    continue
                status = AT_RISK
            why_en, why_zh = [], []
            if not duty:
                why_en.append("no posting or patrol assignment overlaps the week")
                why_zh.append("本周无派驻或巡诊安排")
            if not visited:
                seen = f"last visit {last_visit}" if last_visit else "never visited"
                why_en.append(f"no visit in the {window} days ending {sunday} ({seen})")
                why_zh.append(
                    f"截至{sunday}的{window}天内无诊疗记录（最近一次：{last_visit or '无'}）"
                )
            en = (
                f"village {village.code} {village.name}, {week_label(monday)}: "
                + "; ".join(why_en)
                + "."
            )
            zh = (
                f"行政村 {village.code} {village.name}，{week_label(monday)}："
                + "；".join(why_zh)
                + "。"
            )
            evidence = [index.visit_ids_at[village.code][pos - 1]] if pos else []
            yield ctx.flag(
                rule, status, ("place", village.code), week_label(monday), since, window,
                evidence, zh, en, version, None, scope,
            )  # fmt: skip


# ---------------------------------------------------------------------------------------
# staffing.doctors_per_1000 (per township) and staffing.qualified_share (per county), per
# calendar month (RULES.md; shanxi 3, laiyang (九), national (八)). Village doctors: doctors
# whose home is a village, or who hold a posting or patrol assignment to a village during
# the month. A month not yet over is at risk when it fails on the data so far.


def _rule_staffing(ctx: _Context) -> Iterator[Flag]:
    index = ctx.index
    townships = [p for p in index.places.values() if p.level == "township"]
    counties = [p for p in index.places.values() if p.level == "county"]
    for first in months(index.first_day, ctx.as_of):
        last = month_end(first)
        if not ctx.touches(first, last):
            continue
        version, _ = ctx.version(first)
        over = last <= ctx.as_of
        status = VIOLATION if over else AT_RISK
        label = month_label(first)
        rule = "staffing.doctors_per_1000"
        if version.enabled(rule):
            low, high = version.param(rule, "min_per_1000"), version.param(rule, "max_per_1000")
            for township in townships:
                villages = index.villages_under(township.code)
                population = sum(index.places[v].population or 0 for v in villages)
                if population <= 0:
                    continue
                serving = index.village_doctors(villages, first, min(last, ctx.as_of))
                per_1000 = len(serving) * 1000 / population
                if per_1000 < low - 1e-9:
                    need, word_en, word_zh = low, "below", "低于"
                elif high is not None and per_1000 > high + 1e-9:
                    need, word_en, word_zh = high, "above", "高于"
                else:
                    continue
                en = (
                    f"township {township.code} {township.name}, {label}: {len(serving)} village "
                    f"doctor(s) for {population} residents = {per_1000:.3f} per 1,000, {word_en} {need}."
                )
                zh = (
                    f"乡镇 {township.code} {township.name}，{label}：乡村医生{len(serving)}名，服务人口"
                    f"{population}人，每千人{per_1000:.3f}名，{word_zh}{need}。"
                )
                yield ctx.flag(
                    rule, status, ("place", township.code), label, round(per_1000, 3), need,
                    (), zh, en, version, None, (first, last),
                )  # fmt: skip
        rule = "staffing.qualified_share"
        if version.enabled(rule):
            target = float(version.param(rule, "min_share"))
            for county in counties:
                serving = index.village_doctors(
                    index.villages_under(county.code), first, min(last, ctx.as_of)
                )
                if not serving:
                    continue
                qualified = [d for d in serving if index.doctors[d].qualified]
                share = len(qualified) / len(serving)
                if share >= target - 1e-9:
                    continue
                en = (
                    f"county {county.code} {county.name}, {label}: {len(qualified)} of "
                    f"{len(serving)} village doctors hold a 执业(助理)医师 qualification, share "
                    f"{share:.3f} < {target}."
                )
                zh = (
                    f"县 {county.code} {county.name}，{label}：{len(serving)}名乡村医生中具备执业（助理）"
                    f"医师资格{len(qualified)}名，占比{share:.3f}，低于{target}。"
                )
                yield ctx.flag(
                    rule, status, ("place", county.code), label, round(share, 3), target,
                    (), zh, en, version, None, (first, last),
                )  # fmt: skip


# ---------------------------------------------------------------------------------------
# Integrity rules on visit records (RULES.md: visit.*).


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    r = 6371.0088
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * r * math.asin(min(1.0, math.sqrt(h)))


def _rule_visits(ctx: _Context, doctor: str) -> Iterator[Flag]:
    index = ctx.index
    active: list[Visit] = []
    first, last = ctx.period or (date.min, date.max)
    for v in index.visits_of.get(doctor, ()):
        clash = [u for u in active if u.check_out > v.check_in and u.place != v.place]
        active = [u for u in active if u.check_out > v.check_in] + [v]
        # Every flag below has a scope ending on v.day; only overlap's starts earlier.
        if v.day < first or (v.day > last and not clash):
            continue
        version, _ = ctx.version(v.day)
        one_day = (v.day, v.day)
        if clash and version.enabled("visit.overlap"):
            names = ", ".join(
                f"{u.id} ({u.place} {u.check_in.isoformat()}–{u.check_out.isoformat()})"
                for u in clash
            )
            yield ctx.flag(
                "visit.overlap", VIOLATION, ("visit", v.id), v.day.isoformat(), len(clash), 0,
                [u.id for u in clash] + [v.id],
                f"医生 {doctor} 的记录 {v.id}（{v.place}，{v.check_in.isoformat()} 起）与其他地点的记录时间重叠：{names}。",
                f"doctor {doctor}'s visit {v.id} at {v.place} from {v.check_in.isoformat()} overlaps visits at other places: {names}.",
                version, doctor, (min(u.day for u in clash), v.day),
            )  # fmt: skip
        place = index.places.get(v.place)
        rule = "visit.off_site"
        if (
            version.enabled(rule)
            and place is not None
            and None not in (v.lat, v.lon, place.lat, place.lon)
        ):
            km = haversine_km(v.lat, v.lon, place.lat, place.lon)  # type: ignore[arg-type]
            limit = float(version.param(rule, "max_distance_km"))
            if km > limit + 1e-9:
                yield ctx.flag(
                    rule, VIOLATION, ("visit", v.id), v.day.isoformat(), round(km, 3), limit, (v.id,),
                    f"记录 {v.id} 的定位距 {v.place} 登记位置{km:.3f}公里，超过{limit}公里。",
                    f"visit {v.id} was recorded {km:.3f} km from {v.place}'s registered position, more than {limit} km.",
                    version, doctor, one_day,
                )  # fmt: skip
        rule = "visit.implausible_patients"
        if version.enabled(rule) and v.patients > 0:
            limit = float(version.param(rule, "max_patients_per_hour"))
            hours = v.hours
            if hours <= 0 or v.patients / hours > limit + 1e-9:
                rate = round(v.patients / hours, 2) if hours > 0 else None
                shown = f"{rate}" if rate is not None else "∞"
                yield ctx.flag(
                    rule, VIOLATION, ("visit", v.id), v.day.isoformat(), rate, limit, (v.id,),
                    f"记录 {v.id}：{v.patients}名患者，在岗{hours:.2f}小时，每小时{shown}名，超过{_num(limit)}名。",
                    f"visit {v.id}: {v.patients} patients in {hours:.2f} h on site = {shown} an hour, over {_num(limit)}.",
                    version, doctor, one_day,
                )  # fmt: skip
        rule = "visit.late_entry"
        if version.enabled(rule) and v.recorded_at is not None:
            delay = (v.recorded_at - v.check_out).total_seconds() / 86400
            limit = float(version.param(rule, "max_entry_delay_days"))
            if delay > limit + 1e-9:
                yield ctx.flag(
                    rule, VIOLATION, ("visit", v.id), v.day.isoformat(), round(delay, 2), limit, (v.id,),
                    f"记录 {v.id} 于{v.recorded_at.isoformat()}录入，距诊疗结束{delay:.2f}天，超过{_num(limit)}天。",
                    f"visit {v.id} was entered at {v.recorded_at.isoformat()}, {delay:.2f} days after it ended, over {_num(limit)} days.",
                    version, doctor, one_day,
                )  # fmt: skip


# ---------------------------------------------------------------------------------------


def evaluate(
    data: Scenario,
    *,
    as_of: date,
    ruleset: RuleSet,
    doctors: Iterable[str] | None = None,
    period: DateRange | None = None,
    index: Index | None = None,
) -> list[Flag]:
    """All flags of `ruleset` on `data` as of the end of `as_of`, sorted by key.

    With `doctors` and/or `period`, only the flags `Flag.in_scope(doctors, period)` accepts:
    the same flags, field for field, as the full evaluation filtered that way. Pass a
    prebuilt `Index(data, as_of)` to reuse it across several scoped calls.
    """
    if index is None or index.as_of != as_of:
        index = Index(data, as_of)
    scope_doctors = set(doctors) if doctors is not None else None
    ctx = _Context(index, ruleset, as_of, scope_doctors, period)
    in_scope = [d for d in index.doctors.values() if ctx.doctor_in_scope(d.id)]
    assignments = [a for d in in_scope for a in index.assignments_of.get(d.id, ())]
    producers: list[Callable[[], Iterable[Flag]]] = [
        lambda: _rule_weekly(ctx, assignments),
        lambda: _rule_min_duration(ctx, assignments),
        lambda: _rule_continuity(ctx, assignments),
        lambda: _rule_half_day(ctx, assignments),
        lambda: _rule_fixed_schedule(ctx, assignments),
        lambda: _rule_training(ctx, in_scope),
        lambda: _rule_coverage(ctx),
        lambda: _rule_staffing(ctx),
    ]
    producers += [lambda d=d: _rule_visits(ctx, d.id) for d in in_scope]  # type: ignore[misc]
    flags = []
    for produce in producers:
        for flag in produce():
            if _in_scope(flag, scope_doctors, period):
                flags.append(flag)
    flags.sort(key=lambda f: f.key)
    return flags


def _in_scope(flag: Flag, doctors: set[str] | None, period: DateRange | None) -> bool:
    if doctors is not None and flag.doctor is not None and flag.doctor not in doctors:
        return False
    return period is None or overlap(flag.scope, period) is not None


__all__ = ["Index", "WeekMeasure", "evaluate", "split_by_date", "slot_of", "weekly_measures"]
_ = Slot  # re-exported type used in annotations by callers
