"""posting.min_duration and sitin.min_service (RULES.md): end ≥ start + N months, with
`end` the inclusive last day of duty, so 2026-01-05..2026-07-04 is six months."""

from __future__ import annotations

from collections.abc import Iterator

from rules.context import EvaluationContext
from rules.explain import KIND_ZH
from rules.flags import AT_RISK, VIOLATION, Flag
from rules.model import POSTING, SITIN, Assignment
from rules.periods import ONE_DAY, add_months, range_label


def rule_min_duration(ctx: EvaluationContext, assignments: list[Assignment]) -> Iterator[Flag]:
    for a in assignments:
        if a.kind not in (POSTING, SITIN) or a.end is None:
            continue
        rule = "posting.min_duration" if a.kind == POSTING else "sitin.min_service"
        version, _ = ctx.version(a.start)
        if not version.enabled(rule):
            continue
        n = int(version.param(rule, "min_months"))
        due = add_months(a.start, n)  # the first day after n full months
        if a.end + ONE_DAY >= due:
            continue
        status = VIOLATION if ctx.ended(a.end) else AT_RISK
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
