"""The month's summary the county bureau pulls (RULES.md, "Summaries the county bureau
pulls"; issue 5): per township and month, per village and month, and the totals of the
caller's scope, every figure raw and reviewer-approved side by side.

Domain code over a database session, no Flask: callers pass the session and the `Actor`;
errors are `server.errors` domain errors, which server/api/errors.py turns into HTTP
answers. The figures come from the rules' own counts (`rules.counts`: weekly_counts,
days_since_last_visit, patients_by_place, consultation_fees; `rules.Index.village_doctors`
for staffing) over the county's scenario (county.py), once per call, tallied by
tallies.py. docs/summaries.md defines every figure.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from rules import Index, RuleSet, Scenario
from rules.counts import (
    consultation_fees,
    days_since_last_visit,
    patients_by_place,
    weekly_counts,
)
from rules.engine import WEEKLY_RULE, WEEKLY_RULE_PATROL
from rules.model import PATROL, POSTING, Place
from rules.periods import month_label, week_label
from server.actor import Actor
from server.flags import ruleset_named, today_in_china
from server.models import FlagRecord
from server.summaries.county import (
    County,
    load_county,
    ruleset_ref,
)
from server.summaries.periods import (
    check_not_after,
    month_weeks,
    parse_month,
)
from server.summaries.tallies import (
    WEEKLY_RULES,
    Unit,
    figure_pair,
    figure_pairs,
    flag_figures,
    rate_of,
    rules_with_flags,
    tally_flags,
)

COVERAGE_RULE = "coverage.village"
# Coverage status of a village in a month (docs/summaries.md).
COVERED, UNCOVERED, NOT_REQUIRED, NOT_JUDGED = "covered", "uncovered", "not_required", "not_judged"
COVERAGE_STATUSES = (COVERED, UNCOVERED, NOT_REQUIRED, NOT_JUDGED)

# Every figure of a township row (and of the totals), in table order: key, zh, en.
TOWNSHIP_FIGURES: tuple[tuple[str, str, str], ...] = (
    ("doctors_posting", "派驻医生", "doctors on posting"),
    ("doctors_patrol", "巡诊医生", "doctors on patrol"),
    ("doctors_sitin", "坐诊医生", "doctors sitting in"),
    ("duty_days", "在岗日", "duty days"),
    ("duty_days_required", "应在岗日", "duty days required"),
    ("patrol_sessions", "巡诊次数", "patrol sessions"),
    ("patrol_sessions_required", "应巡诊次数", "patrol sessions required"),
    ("weeks_judged", "已评周数", "duty weeks judged"),
    ("weeks_met", "达标周数", "duty weeks met"),
    ("compliance_rate", "在岗达标率", "duty compliance rate"),
    ("visits", "诊疗记录", "visits"),
    ("patients", "患者人次", "patients"),
    ("fee_total", "一般诊疗费", "consultation fees"),
    ("fee_insurance", "医保基金支付", "fees paid by insurance"),
    ("fee_personal", "个人支付", "fees paid personally"),
    ("villages_needing_coverage", "需覆盖村数", "villages needing coverage"),
    ("villages_covered", "已覆盖村数", "villages covered"),
    ("coverage_rate", "覆盖率", "coverage rate"),
    ("flags_open", "未处理问题", "flags open"),
    ("flags_excused", "已说明问题", "flags excused"),
    ("flags_resolved", "已解决问题", "flags resolved"),
    ("population", "服务人口", "population"),
    ("village_doctors", "乡村医生", "village doctors"),
    ("doctors_per_1000", "每千人医生数", "doctors per 1,000 residents"),
    ("qualified_doctors", "执业(助理)医师", "qualified doctors"),
    ("qualified_share", "执业(助理)医师占比", "qualified share"),
)
VILLAGE_FIGURES: tuple[tuple[str, str, str], ...] = (
    ("visits", "诊疗记录", "visits"),
    ("patients", "患者人次", "patients"),
    ("days_since_last_visit", "距上次诊疗天数", "days since last visit"),
    ("coverage", "覆盖状态", "coverage status"),
    ("fee_total", "一般诊疗费", "consultation fees"),
    ("fee_insurance", "医保基金支付", "fees paid by insurance"),
    ("fee_personal", "个人支付", "fees paid personally"),
)


# --- the summary -------------------------------------------------------------------


def county_summary(
    session: Session,
    actor: Actor,
    *,
    month: str,
    ruleset_name: str,
    township: str | None = None,
    as_of: date | None = None,
) -> dict[str, Any]:
    """The month's figures for the caller's county (a township reviewer: their township),
    per township, per village and in total, each {"raw": …, "approved": …}.
    `as_of` is the date of the figures (data through its end); default today in China."""
    first, last = parse_month(month)
    as_of = as_of or today_in_china()
    check_not_after(first, as_of, "month", month)
    ruleset = ruleset_named(ruleset_name)
    county = load_county(session, actor, township, as_of)
    flag_rows = _visible_flags(session, actor)
    return _month_summary(county, ruleset, first, last, as_of, flag_rows, actor)


def _visible_flags(session: Session, actor: Actor) -> list[Any]:
    """The stored flags the caller may see: the columns the counts read (not the bodies)."""
    columns = (
        FlagRecord.rule,
        FlagRecord.state,
        FlagRecord.period,
        FlagRecord.subject_type,
        FlagRecord.subject_id,
        FlagRecord.doctor_id,
        FlagRecord.township_code,
    )
    return list(session.execute(select(*columns).where(actor.owns(FlagRecord))))


def _month_summary(
    c: County,
    ruleset: RuleSet,
    first: date,
    last: date,
    as_of: date,
    flag_rows: list[Any],
    actor: Actor,
) -> dict[str, Any]:
    end = min(last, as_of)  # the month's data so far
    label = month_label(first)
    mondays = month_weeks(first, last)
    units = {t.code: Unit(t.code, t.name) for t in c.townships}
    total = Unit(c.code, c.name)

    def targets(township: str | None) -> list[Unit]:
        unit = units.get(township) if township is not None else None
        return [unit, total] if unit is not None else []

    # Duty weeks (posting.days_per_week, patrol.per_week, sitin.days_per_week): the rules'
    # own weekly counts, each week in the month of its Thursday.
    _tally_weeks(c, ruleset, mondays, as_of, targets)

    # Visits, patients and fees by the place of the visit, by visit date.
    approved_data = c.approved_data()
    for view, data in (("raw", c.data), ("approved", approved_data)):
        patients = patients_by_place(data, first, end)
        fees = consultation_fees(data, first, end, ruleset=ruleset)
        for v in data.visits:
            if first <= v.day <= end:
                for unit in targets(c.township_of.get(v.place)):
                    getattr(unit, view).visits += 1
        for place, count in patients.items():
            for unit in targets(c.township_of.get(place)):
                getattr(unit, view).patients += count
        for place, fee in fees.items():
            for unit in targets(c.township_of.get(place)):
                tally = getattr(unit, view)
                tally.fees[0] += fee.total
                tally.fees[1] += fee.insurance
                tally.fees[2] += fee.personal

    villages = _village_rows(c, ruleset, first, end, approved_data, targets)
    tally_flags(c, flag_rows, label, units, total)

    # Staffing: people serving villages by home and assignment (no visits, so approved =
    # raw), with the same Index.village_doctors the staffing rules use.
    index = c.index = c.index or Index(c.data, as_of)
    staffing = {
        unit.code: _staffing(c, index, {v.code for v in c.villages_of(unit.code)}, first, end)
        for unit in units.values()
    }
    if c.whole_county:
        county_villages = {p.code for p in c.places.values() if p.level == "village"}
    else:
        county_villages = {v.code for t in c.townships for v in c.villages_of(t.code)}
    staffing[total.code] = _staffing(c, index, county_villages, first, end)

    flag_rules = rules_with_flags(ruleset, first, last)

    def row(unit: Unit) -> dict[str, Any]:
        raw, approved = unit.raw.figures(), unit.approved.figures()
        figures = figure_pairs(raw, approved)
        for key, value in staffing[unit.code].items():
            figures[key] = figure_pair(value, value)
        compliance_raw, compliance_approved = unit.raw.compliance(), unit.approved.compliance()
        return {
            "code": unit.code,
            "name": unit.name,
            "figures": {key: figures[key] for key, _, _ in TOWNSHIP_FIGURES},
            "compliance": {
                rule: figure_pairs(compliance_raw[rule], compliance_approved[rule])
                for rule in WEEKLY_RULES
            },
            "flags": flag_figures(unit, flag_rules),
        }

    return {
        "county": {"code": c.code, "name": c.name},
        "month": label,
        "period": {
            "start": first.isoformat(),
            "end": last.isoformat(),
            "weeks": [week_label(m) for m in mondays],
        },
        "ruleset": ruleset_ref(ruleset, first, last),
        "figures_as_of": as_of.isoformat(),
        "scope": {
            "role": actor.role,
            "township": None if c.whole_county else [t.code for t in c.townships],
        },
        "townships": [row(units[t.code]) for t in c.townships],
        "villages": villages,
        "totals": row(total),
    }


def _tally_weeks(
    c: County,
    ruleset: RuleSet,
    mondays: list[date],
    as_of: date,
    targets: Any,
) -> None:
    if not mondays:
        return
    labels = {week_label(m) for m in mondays}
    period = (mondays[0], mondays[-1] + timedelta(days=6))
    assignments = {a.id: a for a in c.data.assignments}
    for w in weekly_counts(c.data, as_of=as_of, ruleset=ruleset, period=period):
        if w.week not in labels:
            continue
        township = c.assignment_township(assignments[w.assignment].places)
        approved = (w.doctor, w.week) in c.approved_weeks
        rule = WEEKLY_RULE_PATROL if w.kind == PATROL else WEEKLY_RULE[w.kind]
        for unit in targets(township):
            for tally in unit.both(approved):
                tally.doctors[w.kind].add(w.doctor)
                if w.unit == "sessions":
                    tally.patrol_sessions += w.measured
                    tally.patrol_sessions_required += w.required
                else:
                    tally.duty_days += w.measured
                    tally.duty_days_required += w.required
                if w.over:
                    tally.judged[rule] += 1
                    tally.met[rule] += w.measured >= w.required


def _coverage_status(
    c: County, ruleset: RuleSet, village: Place, since: int | None, first: date, end: date
) -> str:
    """RULES.md coverage.village, read at the end of the month (or the date of the figures):
    a village without its own clinic or with fewer than `small_village_population` residents
    is covered when a posting or patrol assignment to it runs during the month and its last
    visit is less than `coverage_window_days` days back."""
    version = ruleset.version_at(end)
    if not version.enabled(COVERAGE_RULE):
        return NOT_JUDGED
    small = version.param(COVERAGE_RULE, "small_village_population")
    small_village = (
        village.population is not None and small is not None and village.population < small
    )
    if village.has_clinic and not small_village:
        return NOT_REQUIRED
    window = int(version.param(COVERAGE_RULE, "coverage_window_days"))
    on_duty = any(
        a.kind in (POSTING, PATROL)
        and village.code in a.places
        and a.start <= end
        and (a.end is None or a.end >= first)
        for a in c.data.assignments
    )
    return COVERED if on_duty and since is not None and since < window else UNCOVERED


def _village_rows(
    c: County,
    ruleset: RuleSet,
    first: date,
    end: date,
    approved_data: Scenario,
    targets: Any,
) -> list[dict[str, Any]]:
    views = {}
    for view, data in (("raw", c.data), ("approved", approved_data)):
        visits: dict[str, int] = defaultdict(int)
        for v in data.visits:
            if first <= v.day <= end:
                visits[v.place] += 1
        views[view] = (
            visits,
            patients_by_place(data, first, end),
            days_since_last_visit(data, as_of=end),
            consultation_fees(data, first, end, ruleset=ruleset),
        )
    rows = []
    for township in c.townships:
        for village in c.villages_of(township.code):
            figures: dict[str, dict[str, Any]] = {key: {} for key, _, _ in VILLAGE_FIGURES}
            for view, (visits, patients, since, fees) in views.items():
                days = since.get(village.code)
                status = _coverage_status(c, ruleset, village, days, first, end)
                fee = fees.get(village.code)
                clinic = village.has_clinic
                figures["visits"][view] = visits.get(village.code, 0)
                figures["patients"][view] = patients.get(village.code, 0)
                figures["days_since_last_visit"][view] = days
                figures["coverage"][view] = status
                figures["fee_total"][view] = (fee.total if fee else 0.0) if clinic else None
                figures["fee_insurance"][view] = (fee.insurance if fee else 0.0) if clinic else None
                figures["fee_personal"][view] = (fee.personal if fee else 0.0) if clinic else None
                if status in (COVERED, UNCOVERED):
                    for unit in targets(township.code):
                        tally = getattr(unit, view)
                        tally.needing_coverage += 1
                        tally.covered += status == COVERED
            rows.append(
                {
                    "code": village.code,
                    "name": village.name,
                    "township": township.code,
                    "has_clinic": village.has_clinic,
                    "population": village.population,
                    "lat": village.lat,
                    "lon": village.lon,
                    "figures": figures,
                }
            )
    return rows


def _staffing(
    c: County, index: Index, villages: set[str], first: date, end: date
) -> dict[str, Any]:
    population = sum(c.places[v].population or 0 for v in villages)
    serving = index.village_doctors(villages, first, end) if villages else set()
    qualified = [d for d in serving if d in index.doctors and index.doctors[d].qualified]
    return {
        "population": population,
        "village_doctors": len(serving),
        "doctors_per_1000": round(len(serving) * 1000 / population, 3) if population else None,
        "qualified_doctors": len(qualified),
        "qualified_share": rate_of(len(qualified), len(serving)),
    }
