"""The compliance trend: duty compliance per township and month (the weekly rules, pooled
and per rule), raw and approved, from one scenario; the data of the trend chart."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

from sqlalchemy.orm import Session

from rules.counts import (
    weekly_counts,
)
from rules.engine import WEEKLY_RULE, WEEKLY_RULE_PATROL
from rules.model import PATROL
from rules.periods import week_label
from server.actor import Actor
from server.errors import InvalidInput
from server.flags import ruleset_named, today_in_china
from server.summaries.county import (
    load_county,
    ruleset_ref,
)
from server.summaries.periods import (
    MAX_TREND_MONTHS,
    check_not_after,
    month_weeks,
    parse_month,
)
from server.summaries.tallies import (
    WEEKLY_RULES,
    Unit,
    figure_pair,
    rate_of,
)

# --- the charts' data -----------------------------------------------------------------


def compliance_trend(
    session: Session,
    actor: Actor,
    months: Sequence[str],
    *,
    ruleset_name: str,
    township: str | None = None,
    as_of: date | None = None,
) -> dict[str, Any]:
    """Duty compliance per township and month (the weekly rules, pooled and per rule), raw
    and approved, for the months given (oldest first), from one scenario."""
    as_of = as_of or today_in_china()
    if not months or len(months) > MAX_TREND_MONTHS:
        raise InvalidInput(
            f"ask for 1 to {MAX_TREND_MONTHS} months",
            {"months": [f"must name 1 to {MAX_TREND_MONTHS} months"]},
        )
    spans = []
    for label in months:
        first, last = parse_month(label, name="months")
        check_not_after(first, as_of, "months", label)
        spans.append((label, first, last))
    spans.sort(key=lambda s: s[1])
    ruleset = ruleset_named(ruleset_name)
    c = load_county(session, actor, township, as_of)
    mondays = [m for _, first, last in spans for m in month_weeks(first, last)]
    per_month: dict[str, dict[str, Unit]] = {}
    for label, _, _ in spans:
        per_month[label] = {t.code: Unit(t.code, t.name) for t in c.townships}
        per_month[label][c.code] = Unit(c.code, c.name)

    week_month = {
        week_label(m): label for label, first, last in spans for m in month_weeks(first, last)
    }
    if mondays:
        assignments = {a.id: a for a in c.data.assignments}
        period = (min(mondays), max(mondays) + timedelta(days=6))
        for w in weekly_counts(c.data, as_of=as_of, ruleset=ruleset, period=period):
            in_month = week_month.get(w.week)
            if in_month is None or not w.over:
                continue
            where = c.assignment_township(assignments[w.assignment].places)
            if where is None or where not in c.selected:
                continue
            rule = WEEKLY_RULE_PATROL if w.kind == PATROL else WEEKLY_RULE[w.kind]
            approved = (w.doctor, w.week) in c.approved_weeks
            for unit in (per_month[in_month][where], per_month[in_month][c.code]):
                for tally in unit.both(approved):
                    tally.judged[rule] += 1
                    tally.met[rule] += w.measured >= w.required

    def series(code: str, name: str) -> dict[str, Any]:
        points = []
        for label, _, _ in spans:
            unit = per_month[label][code]
            raw, approved = unit.raw, unit.approved
            points.append(
                {
                    "month": label,
                    "rate": figure_pair(
                        rate_of(sum(raw.met.values()), sum(raw.judged.values())),
                        rate_of(sum(approved.met.values()), sum(approved.judged.values())),
                    ),
                    "judged": figure_pair(sum(raw.judged.values()), sum(approved.judged.values())),
                    "by_rule": {
                        rule: figure_pair(
                            rate_of(raw.met[rule], raw.judged[rule]),
                            rate_of(approved.met[rule], approved.judged[rule]),
                        )
                        for rule in WEEKLY_RULES
                    },
                }
            )
        return {"code": code, "name": name, "points": points}

    return {
        "county": {"code": c.code, "name": c.name},
        "months": [label for label, _, _ in spans],
        "ruleset": ruleset_ref(ruleset, spans[0][1], spans[-1][2]),
        "figures_as_of": as_of.isoformat(),
        "townships": [series(t.code, t.name) for t in c.townships],
        "totals": series(c.code, c.name),
    }
