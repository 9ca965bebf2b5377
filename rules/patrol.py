"""The patrol rules besides the weekly count (RULES.md): patrol.half_day (each session
lasts ≥ half_day_hours) and patrol.fixed_schedule (declared slots; in a month with ≥ 2
qualifying sessions the on-schedule share ≥ min_on_schedule_ratio; no declared slots is
flagged once)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import date

from rules.context import EvaluationContext
from rules.explain import plain_number
from rules.flags import AT_RISK, VIOLATION, Flag
from rules.index import slot_of
from rules.model import PATROL, Assignment
from rules.periods import ONE_DAY, days, month_end, month_label, months, overlap


def rule_half_day(ctx: EvaluationContext, assignments: list[Assignment]) -> Iterator[Flag]:
    rule = "patrol.half_day"
    for a in assignments:
        if a.kind != PATROL:
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
                f"{plain_number(need)} h of a half-day session; it does not count for patrol.per_week."
            )
            zh = (
                f"巡诊记录 {v.id}（{v.place}，{v.day}）时长{hours}小时，不足半天（{plain_number(need)}小时），"
                f"不计入每周巡诊次数。"
            )
            yield ctx.flag(
                rule, VIOLATION, ("visit", v.id), v.day.isoformat(), hours, need, (v.id,),
                zh, en, version, v.doctor, (v.day, v.day),
            )  # fmt: skip


def rule_fixed_schedule(ctx: EvaluationContext, assignments: list[Assignment]) -> Iterator[Flag]:
    rule = "patrol.fixed_schedule"
    for a in assignments:
        if a.kind != PATROL:
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
            over = ctx.ended(last)
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
                if ctx.today_open and cal.is_workday(ctx.as_of) and ctx.as_of not in excused:
                    # Today's declared slots not yet used still count (issue 14).
                    held = len(sessions.get(ctx.as_of, ()))
                    slots_today = min(per_date, per_weekday.get(ctx.as_of.isoweekday(), 0))
                    extra += max(0, slots_today - held)
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
