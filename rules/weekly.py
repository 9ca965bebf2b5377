"""The weekly requirement (RULES.md, calendar conventions): posting.days_per_week,
sitin.days_per_week and patrol.per_week, and the bureau's weekly counts (rules.counts),
all from `weekly_measures`."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta

from rules.context import EvaluationContext
from rules.explain import KIND_ZH, format_days, plain_number
from rules.flags import AT_RISK, VIOLATION, Flag
from rules.model import PATROL, POSTING, SITIN, Assignment
from rules.periods import DateRange, days, label_range, overlap, week_label, weeks
from rules.ruleset import RuleSetVersion


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
    # What can still be done on the evaluation date itself when it is not over (a live
    # evaluation): a duty day not yet made, the half-day sessions not yet held.
    today_left: int = 0

    @property
    def reachable(self) -> int:
        return self.measured + self.remaining * self.per_remaining_day + self.today_left


WEEKLY_RULE = {POSTING: "posting.days_per_week", SITIN: "sitin.days_per_week"}
WEEKLY_RULE_PATROL = "patrol.per_week"


def weekly_measures(ctx: EvaluationContext, a: Assignment) -> Iterator[WeekMeasure]:
    """Each ISO week of `a` that has started by the evaluation date (and touches the scope)."""
    index, as_of = ctx.index, ctx.as_of
    rule = WEEKLY_RULE_PATROL if a.kind == PATROL else WEEKLY_RULE[a.kind]
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
        if a.kind == PATROL:
            minimum = int(version.param(rule, "min_sessions"))
            per_date = int(version.param(rule, "max_sessions_per_date"))
            sessions = data.sessions(version.definition("half_day_hours"), per_date)
            counted = [v for day in days(*span) if day <= as_of for v in sessions.get(day, ())]
            measured, evidence, unit = len(counted), [v.id for v in counted], "sessions"
            done_today = len(sessions.get(as_of, ()))
        else:
            minimum = int(version.param(rule, "min_days"))
            per_date = 1
            duty = data.duty_days(version.definition("min_hours_per_day"))
            duty_in = [d for d in days(*span) if d <= as_of and d in duty]
            measured, unit = len(duty_in), "duty_days"
            evidence = [i for d in duty_in for i in duty[d]]
            done_today = 1 if as_of in duty else 0
        today_left = per_date - done_today if ctx.to_come(as_of) and as_of in available else 0
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
            over=ctx.ended(sunday),
            holidays=tuple(holidays),
            make_up=tuple(make_up),
            unapproved_leave=sum(1 for d in workdays if d in unapproved and d not in excused),
            evidence=tuple(evidence),
            version=version,
            calendar=cal.sources(monday, sunday),
            today_left=today_left,
        )


def _weekly_flag(ctx: EvaluationContext, m: WeekMeasure, rule: str) -> Flag | None:
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
        hours = plain_number(m.version.definition("min_hours_per_day"))
        what_en, what_zh = (
            f"duty days (≥ {hours} h on site a day)",
            f"{unit_zh}（每日在岗不少于{hours}小时）",
        )
    else:
        hours = plain_number(m.version.definition("half_day_hours"))
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
        f"(holidays: {format_days(m.holidays)}; make-up workdays: {format_days(m.make_up)}; "
        f"calendar {m.calendar}), minus {m.excused} on approved leave or training{unapproved_en} "
        f"= {m.available} available; required min({m.minimum}, {m.available}) = {m.required} "
        f"{what_en}; measured {m.measured}."
    )
    zh = (
        f"{m.week}（{KIND_ZH[m.kind]} {m.assignment}，{first} 至 {last}）：工作日{m.workdays}天"
        f"（节假日：{format_days(m.holidays)}；调休上班：{format_days(m.make_up)}；日历 {m.calendar}），"
        f"扣除已批准请假或培训{m.excused}天{unapproved_zh}，可用工作日{m.available}天；"
        f"要求 min({m.minimum}, {m.available}) = {m.required}{what_zh}，实际{m.measured}。"
    )
    if status == AT_RISK:
        today_en = f", and today ({ctx.as_of}) is not over" if m.today_left else ""
        today_zh = f"，今天（{ctx.as_of}）尚未结束" if m.today_left else ""
        en += (
            f" Not over as of {ctx.as_of}: {m.remaining} available workday(s) remain"
            f"{today_en}, so at most {m.reachable} can be reached."
        )
        zh += (
            f" 截至{ctx.as_of}本周未结束：剩余可用工作日{m.remaining}天{today_zh}，"
            f"最多可达{m.reachable}。"
        )
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


def rule_weekly(ctx: EvaluationContext, assignments: list[Assignment]) -> Iterator[Flag]:
    for a in assignments:
        rule = WEEKLY_RULE_PATROL if a.kind == PATROL else WEEKLY_RULE[a.kind]
        for m in weekly_measures(ctx, a):
            flag = _weekly_flag(ctx, m, rule)
            if flag is not None:
                yield flag
