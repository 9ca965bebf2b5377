"""The evaluation: a pure function from a Scenario, an evaluation date and a rule set to
flags. Every rule cites its line in RULES.md; docs/rules.md explains each interpretation.

`evaluate(..., doctors=D, period=P)` returns exactly the flags of the full evaluation for
which `Flag.in_scope(D, P)` holds: flags about a doctor in D (place-level flags always
qualify) whose `scope` (the dates its data depends on) overlaps P. The server re-evaluates
the doctor-weeks a push touched and replaces the stored flags that satisfy the same test.

The rule families live in their own modules (weekly, duration, continuity, patrol,
training, place_rules, visit_rules) over one `Index` and one `EvaluationContext`; this
module only runs them and keeps the scope.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date

from rules.context import EvaluationContext
from rules.continuity import rule_continuity
from rules.duration import rule_min_duration
from rules.flags import Flag
from rules.index import Index, slot_of, split_by_date
from rules.model import Scenario
from rules.patrol import rule_fixed_schedule, rule_half_day
from rules.periods import DateRange, overlap
from rules.place_rules import rule_coverage, rule_staffing
from rules.ruleset import RuleSet
from rules.training import rule_training
from rules.visit_rules import rule_visits
from rules.weekly import WEEKLY_RULE, WEEKLY_RULE_PATROL, WeekMeasure, rule_weekly, weekly_measures


def evaluate(
    data: Scenario,
    *,
    as_of: date,
    ruleset: RuleSet,
    doctors: Iterable[str] | None = None,
    period: DateRange | None = None,
    index: Index | None = None,
    today_open: bool = False,
) -> list[Flag]:
    """All flags of `ruleset` on `data` as of the end of `as_of`, sorted by key; with
    `today_open`, as of a moment during `as_of` (a live evaluation: what can still be done
    today counts as still to come, issue 14).

    With `doctors` and/or `period`, only the flags `Flag.in_scope(doctors, period)` accepts:
    the same flags, field for field, as the full evaluation filtered that way. Pass a
    prebuilt `Index(data, as_of)` to reuse it across several scoped calls.
    """
    if index is None or index.as_of != as_of:
        index = Index(data, as_of)
    scope_doctors = set(doctors) if doctors is not None else None
    ctx = EvaluationContext(index, ruleset, as_of, scope_doctors, period, today_open)
    in_scope = [d for d in index.doctors.values() if ctx.doctor_in_scope(d.id)]
    assignments = [a for d in in_scope for a in index.assignments_of.get(d.id, ())]
    producers: list[Callable[[], Iterable[Flag]]] = [
        lambda: rule_weekly(ctx, assignments),
        lambda: rule_min_duration(ctx, assignments),
        lambda: rule_continuity(ctx, assignments),
        lambda: rule_half_day(ctx, assignments),
        lambda: rule_fixed_schedule(ctx, assignments),
        lambda: rule_training(ctx, in_scope),
        lambda: rule_coverage(ctx),
        lambda: rule_staffing(ctx),
    ]
    producers += [lambda d=d: rule_visits(ctx, d.id) for d in in_scope]  # type: ignore[misc]
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


# Index, WeekMeasure, split_by_date, slot_of, weekly_measures and the weekly rule ids keep
# their old import path here (server/summaries imports WEEKLY_RULE* from rules.engine).
__all__ = [
    "WEEKLY_RULE",
    "WEEKLY_RULE_PATROL",
    "EvaluationContext",
    "Index",
    "WeekMeasure",
    "evaluate",
    "slot_of",
    "split_by_date",
    "weekly_measures",
]
