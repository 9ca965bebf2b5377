"""posting.continuity (RULES.md): no run of ≥ max_gap_days calendar days inside a posting
without a duty day, approved leave or training. The period is the gap's first date, so the
key stays stable while an open gap grows; its scope reaches one day past each end, where
the duty days that bound it are."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

from rules.context import EvaluationContext
from rules.flags import VIOLATION, Flag
from rules.index import AssignmentData
from rules.model import POSTING, Assignment
from rules.periods import ONE_DAY, days


def days_back(first: date, last: date) -> Iterator[date]:
    """`first`, the day before, ... down to `last` (nothing when `last` is after `first`)."""
    day = first
    while day >= last:
        yield day
        day -= ONE_DAY


def rule_continuity(ctx: EvaluationContext, assignments: list[Assignment]) -> Iterator[Flag]:
    for a in assignments:
        if a.kind == POSTING and a.start <= ctx.as_of:
            yield from _posting_gaps(ctx, a)


def _posting_gaps(ctx: EvaluationContext, a: Assignment) -> Iterator[Flag]:
    data = ctx.index.assignment_data(a)
    excused = ctx.index.excused.get(a.doctor, set())
    last = min(a.end or ctx.as_of, ctx.as_of)

    def pending(day: date) -> bool:
        # Today, while it lasts, is no day of a gap yet (a live evaluation, issue 14).
        return day > last or (ctx.today_open and day == ctx.as_of)

    def covered(day: date) -> bool:
        min_hours = ctx.version(day)[0].definition("min_hours_per_day")
        by_place = data.hours.get(day)
        return (
            pending(day)
            or day in excused
            or (by_place is not None and max(by_place.values()) >= min_hours - 1e-9)
        )

    begin, stop = a.start, last + ONE_DAY
    if ctx.period is not None:
        # A scoped evaluation wants only the gaps whose scope (a day past each end) reaches
        # the period: those after the last covered day before it, and starting by the day
        # after it. Walking these days, not the posting's whole history, gives the same
        # flags (issue 14: the judgement after a push judges two weeks of long postings).
        before = ctx.period[0] - ONE_DAY
        begin = next((d for d in days_back(before, a.start) if covered(d)), a.start)
        stop = min(stop, max(begin, ctx.period[1] + ONE_DAY))
    gap_start: date | None = None
    for day in days(begin, last + ONE_DAY):
        if day > stop and gap_start is None:
            break  # every later gap starts after the scope's reach
        if not covered(day):
            if gap_start is None:
                gap_start = day
            continue
        if gap_start is None:
            continue
        gap_end, start = day - ONE_DAY, gap_start
        gap_start = None
        # A gap is open when it runs into the evaluation date of a posting still going on.
        still_open = pending(day) and last == ctx.as_of and (a.end is None or ctx.to_come(a.end))
        flag = _continuity_flag(ctx, a, data, start, gap_end, not still_open)
        if flag is not None:
            yield flag


def _continuity_flag(
    ctx: EvaluationContext,
    a: Assignment,
    data: AssignmentData,
    first: date,
    last: date,
    closed: bool,
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
