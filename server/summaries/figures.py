"""County summaries the bureau pulls (RULES.md, "Summaries the county bureau pulls"; issue 5):
per township and month, per village and month, and the totals of the caller's scope, every
figure raw and reviewer-approved side by side; and the data of the compliance-trend and
duty-heatmap charts.

Domain code over a database session, no Flask: callers pass the session and the `Actor`;
errors are the exceptions below, which `server/summaries_api.py` turns into HTTP answers.
The figures come from the rules' own counts (`rules.counts`: weekly_counts,
days_since_last_visit, patients_by_place, consultation_fees; `rules.Index.village_doctors`
for staffing) over the scenario `server.flags` builds from the database, once per call.
`table_rows` turns a summary into the tables that the CSV, the XLSX and the web pages all
render, so they cannot disagree. docs/summaries.md defines every figure.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from rules import Index, RuleSet, Scenario, load_scenario
from rules.counts import (
    consultation_fees,
    days_since_last_visit,
    patients_by_place,
    weekly_counts,
)
from rules.engine import WEEKLY_RULE, WEEKLY_RULE_PATROL
from rules.model import Place
from rules.periods import label_range, month_end, month_label, week_label, week_start
from server.actor import COUNTY_ADMIN, TOWNSHIP_REVIEWER, Actor
from server.errors import Forbidden, InvalidInput, NotFound
from server.flags import EXCUSED, OPEN, RESOLVED, ruleset_named, scenario_for, today_in_china
from server.models import Doctor, FlagRecord, OrgUnit, SyncCounter, Visit, WeekReview

APPROVED = "approved"  # WeekReview.state of an approved doctor-week (server/review.py)
KINDS = ("posting", "patrol", "sitin")
WEEKLY_RULES = (WEEKLY_RULE["posting"], WEEKLY_RULE_PATROL, WEEKLY_RULE["sitin"])
FLAG_STATES = (OPEN, EXCUSED, RESOLVED)
COVERAGE_RULE = "coverage.village"
# Coverage status of a village in a month (docs/summaries.md).
COVERED, UNCOVERED, NOT_REQUIRED, NOT_JUDGED = "covered", "uncovered", "not_required", "not_judged"
COVERAGE_STATUSES = (COVERED, UNCOVERED, NOT_REQUIRED, NOT_JUDGED)
MAX_TREND_MONTHS = 36
MAX_HEATMAP_WEEKS = 104
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")

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
RAW_LABEL, APPROVED_LABEL = "原始 raw", "审核 approved"

Figure = dict[str, Any]  # {"raw": value, "approved": value}
Tables = dict[str, list[list[Any]]]


# --- input -------------------------------------------------------------------------


def parse_month(value: Any, *, name: str = "month") -> tuple[date, date]:
    """The first and last day of a `YYYY-MM` month."""
    match = _MONTH.match(value) if isinstance(value, str) else None
    if match is None or not 1 <= int(match[2]) <= 12 or not 2000 <= int(match[1]) <= 2999:
        raise InvalidInput(
            f"{name} must be a month written YYYY-MM (2000-01 to 2999-12), not {value!r}",
            {name: ["must be a month YYYY-MM, e.g. 2026-03"]},
        )
    first = date(int(match[1]), int(match[2]), 1)
    return first, month_end(first)


def _check_not_after(first: date, as_of: date, name: str, label: str) -> None:
    if first > as_of:
        raise InvalidInput(
            f"{name} {label} starts after the date of the figures, {as_of.isoformat()}",
            {name: [f"must not start after {as_of.isoformat()}"]},
        )


def months_until(as_of: date, count: int) -> list[str]:
    """The `count` month labels ending with the month of `as_of`, oldest first."""
    if not 1 <= count <= MAX_TREND_MONTHS:
        raise InvalidInput(
            f"months must be from 1 to {MAX_TREND_MONTHS}, not {count}",
            {"months": [f"must be from 1 to {MAX_TREND_MONTHS}"]},
        )
    index = as_of.year * 12 + as_of.month - 1
    return [
        f"{(index - back) // 12:04d}-{(index - back) % 12 + 1:02d}"
        for back in range(count - 1, -1, -1)
    ]


def month_weeks(first: date, last: date) -> list[date]:
    """The Mondays of the ISO weeks that belong to the month [first, last]: a week belongs
    to the month of its Thursday (the ISO 8601 rule that puts a week in a year)."""
    monday = week_start(first)
    out = []
    while monday <= last:
        if first <= monday + timedelta(days=3) <= last:
            out.append(monday)
        monday += timedelta(days=7)
    return out


def period_month(period: str) -> str | None:
    """The month a flag's period belongs to: an ISO week the month of its Thursday, any
    other period the month of its last day (a year: December). None for a bad label."""
    try:
        first, last = label_range(period)
    except (ValueError, TypeError):
        return None
    if "-W" in period and "/" not in period:
        return month_label((first + timedelta(days=3)).replace(day=1))
    return month_label(last.replace(day=1))


# --- the county, loaded once per call -----------------------------------------------


@dataclass
class _County:
    """The caller's county as the rules see it, and the part of it in the caller's scope."""

    code: str
    name: str
    data: Scenario
    places: dict[str, Place]
    township_of: dict[str, str | None]  # place code → its township (itself for a township)
    townships: list[Place]  # the townships in scope, by code
    whole_county: bool  # the scope is the whole county (county admin, no township asked)
    approved_weeks: set[tuple[str, str]]  # (doctor, ISO week) a reviewer approved
    index: Index | None = None
    _approved_data: Scenario | None = field(default=None, repr=False)

    @property
    def selected(self) -> set[str]:
        return {t.code for t in self.townships}

    def assignment_township(self, places: Sequence[str]) -> str | None:
        # An assignment serves one township: that of its first place (a patrol route runs
        # through the villages of one township; a sit-in is at the township hospital).
        return self.township_of.get(places[0]) if places else None

    def approved_data(self) -> Scenario:
        """The scenario restricted to the visits of approved doctor-weeks."""
        if self._approved_data is None:
            weeks: dict[date, str] = {}
            for v in self.data.visits:
                if v.day not in weeks:
                    weeks[v.day] = week_label(week_start(v.day))
            visits = tuple(
                v for v in self.data.visits if (v.doctor, weeks[v.day]) in self.approved_weeks
            )
            self._approved_data = replace(self.data, visits=visits)
        return self._approved_data

    def villages_of(self, township: str) -> list[Place]:
        return sorted(
            (
                p
                for p in self.places.values()
                if p.level == "village" and self.township_of.get(p.code) == township
            ),
            key=lambda p: p.code,
        )


_SCENARIOS: OrderedDict[tuple[int, str], tuple[Any, int, Scenario]] = OrderedDict()
_SCENARIOS_KEPT = 4
_scenarios_lock = threading.Lock()


def county_scenario(session: Session, county: str) -> Scenario:
    """The county's rules scenario (`server.flags.scenario_for`), kept in this process while the
    sync counter stays put. Every write of a place, doctor, assignment, visit, leave or
    training record takes the next sequence number (server/store.py), so an unchanged counter
    means unchanged data. The counter is read first: the data read after it is at least as
    new. Loading the demo county takes most of a summary's time (docs/summaries.md)."""
    engine = session.get_bind()
    counter = session.scalar(select(SyncCounter.value).where(SyncCounter.id == 1)) or 0
    key = (id(engine), county)
    with _scenarios_lock:
        kept = _SCENARIOS.get(key)
        if kept is not None and kept[0] is engine and kept[1] == counter:
            _SCENARIOS.move_to_end(key)
            return kept[2]
    data = load_scenario(scenario_for(session, {county}, None))
    with _scenarios_lock:
        _SCENARIOS[key] = (engine, counter, data)  # the engine itself: its id is not reused
        _SCENARIOS.move_to_end(key)
        while len(_SCENARIOS) > _SCENARIOS_KEPT:
            _SCENARIOS.popitem(last=False)
    return data


def _check_actor(actor: Actor) -> str:
    if actor.role not in (TOWNSHIP_REVIEWER, COUNTY_ADMIN):
        raise Forbidden("summaries are for township reviewers and county admins")
    if actor.county_code is None:
        raise NotFound("this account belongs to no county")
    return actor.county_code


def _load(session: Session, actor: Actor, township: str | None, as_of: date) -> _County:
    county = _check_actor(actor)
    unit = session.get(OrgUnit, county)
    data = county_scenario(session, county)
    places = {p.code: p for p in data.places}

    def township_of(code: str) -> str | None:
        seen: set[str] = set()
        place = places.get(code)
        while place is not None and place.code not in seen:
            if place.level == "township":
                return place.code
            seen.add(place.code)
            place = places.get(place.parent) if place.parent else None
        return None

    townships = sorted((p for p in places.values() if p.level == "township"), key=lambda p: p.code)
    if actor.role == TOWNSHIP_REVIEWER:
        townships = [t for t in townships if t.code == actor.township_code]
    if township is not None:
        townships = [t for t in townships if t.code == township]
        if not townships:
            raise NotFound(f"no township {township!r} in your scope")
    approved = {
        (doctor, week)
        for doctor, week in session.execute(
            select(WeekReview.doctor_id, WeekReview.week)
            .join(Doctor, Doctor.id == WeekReview.doctor_id)
            .where(Doctor.county_code == county, WeekReview.state == APPROVED)
        )
    }
    return _County(
        code=county,
        name=unit.name if unit is not None else county,
        data=data,
        places=places,
        township_of={code: township_of(code) for code in places},
        townships=townships,
        whole_county=actor.role == COUNTY_ADMIN and township is None,
        approved_weeks=approved,
    )


def _ruleset_ref(ruleset: RuleSet, first: date, last: date) -> dict[str, str]:
    """The rule set and the version(s) in force during [first, last]."""
    versions = [ruleset.version_at(first).version]
    for version in ruleset.versions:
        if first < version.effective <= last and version.version not in versions:
            versions.append(version.version)
    return {"name": ruleset.name, "version": ", ".join(versions)}


# --- tallies -----------------------------------------------------------------------


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 3) if whole else None


@dataclass
class _Tally:
    """One view (raw or approved) of one township's, or the totals', monthly figures."""

    doctors: dict[str, set[str]] = field(default_factory=lambda: {k: set() for k in KINDS})
    duty_days: int = 0
    duty_days_required: int = 0
    patrol_sessions: int = 0
    patrol_sessions_required: int = 0
    judged: dict[str, int] = field(default_factory=lambda: dict.fromkeys(WEEKLY_RULES, 0))
    met: dict[str, int] = field(default_factory=lambda: dict.fromkeys(WEEKLY_RULES, 0))
    visits: int = 0
    patients: int = 0
    fees: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    needing_coverage: int = 0
    covered: int = 0
    flags: dict[str, dict[str, int]] = field(default_factory=dict)  # rule → state → count

    def figures(self) -> dict[str, Any]:
        judged, met = sum(self.judged.values()), sum(self.met.values())
        flag_totals = {
            state: sum(by_state.get(state, 0) for by_state in self.flags.values())
            for state in FLAG_STATES
        }
        return {
            "doctors_posting": len(self.doctors["posting"]),
            "doctors_patrol": len(self.doctors["patrol"]),
            "doctors_sitin": len(self.doctors["sitin"]),
            "duty_days": self.duty_days,
            "duty_days_required": self.duty_days_required,
            "patrol_sessions": self.patrol_sessions,
            "patrol_sessions_required": self.patrol_sessions_required,
            "weeks_judged": judged,
            "weeks_met": met,
            "compliance_rate": _rate(met, judged),
            "visits": self.visits,
            "patients": self.patients,
            "fee_total": round(self.fees[0], 2),
            "fee_insurance": round(self.fees[1], 2),
            "fee_personal": round(self.fees[2], 2),
            "villages_needing_coverage": self.needing_coverage,
            "villages_covered": self.covered,
            "coverage_rate": _rate(self.covered, self.needing_coverage),
            "flags_open": flag_totals[OPEN],
            "flags_excused": flag_totals[EXCUSED],
            "flags_resolved": flag_totals[RESOLVED],
        }

    def compliance(self) -> dict[str, dict[str, Any]]:
        return {
            rule: {
                "judged": self.judged[rule],
                "met": self.met[rule],
                "rate": _rate(self.met[rule], self.judged[rule]),
            }
            for rule in WEEKLY_RULES
        }


def _pair(raw: Any, approved: Any) -> Figure:
    return {"raw": raw, "approved": approved}


def _pairs(raw: dict[str, Any], approved: dict[str, Any]) -> dict[str, Figure]:
    return {key: _pair(raw[key], approved[key]) for key in raw}


@dataclass
class _Unit:
    """A township (or the totals): its raw and approved tallies."""

    code: str
    name: str
    raw: _Tally = field(default_factory=_Tally)
    approved: _Tally = field(default_factory=_Tally)
    place_flag_rules: set[str] = field(default_factory=set)

    def both(self, approved: bool) -> list[_Tally]:
        return [self.raw, self.approved] if approved else [self.raw]


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
    _check_not_after(first, as_of, "month", month)
    ruleset = ruleset_named(ruleset_name)
    county = _load(session, actor, township, as_of)
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
    c: _County,
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
    units = {t.code: _Unit(t.code, t.name) for t in c.townships}
    total = _Unit(c.code, c.name)

    def targets(township: str | None) -> list[_Unit]:
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
    _tally_flags(c, flag_rows, label, units, total)

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

    flag_rules = _flag_rules(ruleset, first, last)

    def row(unit: _Unit) -> dict[str, Any]:
        raw, approved = unit.raw.figures(), unit.approved.figures()
        figures = _pairs(raw, approved)
        for key, value in staffing[unit.code].items():
            figures[key] = _pair(value, value)
        compliance_raw, compliance_approved = unit.raw.compliance(), unit.approved.compliance()
        return {
            "code": unit.code,
            "name": unit.name,
            "figures": {key: figures[key] for key, _, _ in TOWNSHIP_FIGURES},
            "compliance": {
                rule: _pairs(compliance_raw[rule], compliance_approved[rule])
                for rule in WEEKLY_RULES
            },
            "flags": _flag_figures(unit, flag_rules),
        }

    return {
        "county": {"code": c.code, "name": c.name},
        "month": label,
        "period": {
            "start": first.isoformat(),
            "end": last.isoformat(),
            "weeks": [week_label(m) for m in mondays],
        },
        "ruleset": _ruleset_ref(ruleset, first, last),
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
    c: _County,
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
        rule = WEEKLY_RULE_PATROL if w.kind == "patrol" else WEEKLY_RULE[w.kind]
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
    c: _County, ruleset: RuleSet, village: Place, since: int | None, first: date, end: date
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
        a.kind in ("posting", "patrol")
        and village.code in a.places
        and a.start <= end
        and (a.end is None or a.end >= first)
        for a in c.data.assignments
    )
    return COVERED if on_duty and since is not None and since < window else UNCOVERED


def _village_rows(
    c: _County,
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
    c: _County, index: Index, villages: set[str], first: date, end: date
) -> dict[str, Any]:
    population = sum(c.places[v].population or 0 for v in villages)
    serving = index.village_doctors(villages, first, end) if villages else set()
    qualified = [d for d in serving if d in index.doctors and index.doctors[d].qualified]
    return {
        "population": population,
        "village_doctors": len(serving),
        "doctors_per_1000": round(len(serving) * 1000 / population, 3) if population else None,
        "qualified_doctors": len(qualified),
        "qualified_share": _rate(len(qualified), len(serving)),
    }


# --- flags ---------------------------------------------------------------------------


def _flag_township(
    c: _County, row: Any, visit_places: dict[str, str], assignments: dict[str, Any]
) -> str | None:
    """The township of a flag's subject: where the flagged duty or visit took place."""
    if row.subject_type == "place":
        return c.township_of.get(row.subject_id)
    if row.subject_type == "assignment" and row.subject_id in assignments:
        return c.assignment_township(assignments[row.subject_id].places)
    if row.subject_type == "visit" and row.subject_id in visit_places:
        return c.township_of.get(visit_places[row.subject_id])
    return row.township_code


def _flag_in_approved_weeks(c: _County, row: Any) -> bool:
    """A doctor's flag counts in the approved figures when every ISO week its period
    touches is an approved week of that doctor."""
    if row.doctor_id is None:
        return False
    try:
        first, last = label_range(row.period)
    except (ValueError, TypeError):
        return False
    if (last - first).days > 400:
        return False
    monday = week_start(first)
    while monday <= last:
        if (row.doctor_id, week_label(monday)) not in c.approved_weeks:
            return False
        monday += timedelta(days=7)
    return True


def _tally_flags(
    c: _County, flag_rows: list[Any], label: str, units: dict[str, _Unit], total: _Unit
) -> None:
    visit_places = {v.id: v.place for v in c.data.visits}
    assignments = {a.id: a for a in c.data.assignments}
    for row in flag_rows:
        if period_month(row.period) != label:
            continue
        township = _flag_township(c, row, visit_places, assignments)
        unit = units.get(township) if township is not None else None
        if unit is None and not (township is None and c.whole_county):
            continue  # outside the townships asked for
        place_level = row.doctor_id is None
        approved = _flag_in_approved_weeks(c, row)
        for target in [unit, total] if unit is not None else [total]:
            if place_level:
                target.place_flag_rules.add(row.rule)
            for tally in target.both(approved):
                by_state = tally.flags.setdefault(row.rule, {})
                by_state[row.state] = by_state.get(row.state, 0) + 1


def _flag_rules(ruleset: RuleSet, first: date, last: date) -> list[str]:
    """The rules the flags table lists: those on in a version in force during the month."""
    rules: list[str] = []
    for version in ruleset.versions:
        if version is ruleset.version_at(first) or first < version.effective <= last:
            rules += [r for r in version.rules if r not in rules]
    return rules


def _flag_figures(unit: _Unit, rules: list[str]) -> dict[str, dict[str, Figure]]:
    out = {}
    for rule in [*rules, *sorted(set(unit.raw.flags) - set(rules))]:
        place_level = rule in unit.place_flag_rules or rule in PLACE_RULES
        raw = unit.raw.flags.get(rule, {})
        approved = unit.approved.flags.get(rule, {})
        out[rule] = {
            state: _pair(raw.get(state, 0), None if place_level else approved.get(state, 0))
            for state in FLAG_STATES
        }
    return out


# Rules judged on a place, not on a doctor's data: their flags have no doctor-week.
PLACE_RULES = frozenset(
    {"coverage.village", "staffing.doctors_per_1000", "staffing.qualified_share"}
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
        _check_not_after(first, as_of, "months", label)
        spans.append((label, first, last))
    spans.sort(key=lambda s: s[1])
    ruleset = ruleset_named(ruleset_name)
    c = _load(session, actor, township, as_of)
    mondays = [m for _, first, last in spans for m in month_weeks(first, last)]
    per_month: dict[str, dict[str, _Unit]] = {}
    for label, _, _ in spans:
        per_month[label] = {t.code: _Unit(t.code, t.name) for t in c.townships}
        per_month[label][c.code] = _Unit(c.code, c.name)

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
            rule = WEEKLY_RULE_PATROL if w.kind == "patrol" else WEEKLY_RULE[w.kind]
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
                    "rate": _pair(
                        _rate(sum(raw.met.values()), sum(raw.judged.values())),
                        _rate(sum(approved.met.values()), sum(approved.judged.values())),
                    ),
                    "judged": _pair(sum(raw.judged.values()), sum(approved.judged.values())),
                    "by_rule": {
                        rule: _pair(
                            _rate(raw.met[rule], raw.judged[rule]),
                            _rate(approved.met[rule], approved.judged[rule]),
                        )
                        for rule in WEEKLY_RULES
                    },
                }
            )
        return {"code": code, "name": name, "points": points}

    return {
        "county": {"code": c.code, "name": c.name},
        "months": [label for label, _, _ in spans],
        "ruleset": _ruleset_ref(ruleset, spans[0][1], spans[-1][2]),
        "figures_as_of": as_of.isoformat(),
        "townships": [series(t.code, t.name) for t in c.townships],
        "totals": series(c.code, c.name),
    }


def duty_heatmap(
    session: Session,
    actor: Actor,
    doctor_id: str,
    weeks: int = 12,
    *,
    as_of: date | None = None,
) -> dict[str, Any]:
    """A doctor's visit records (sessions), hours on site and patients per date, for the
    `weeks` ISO weeks ending with the week of `as_of`, oldest first; only visits at places
    in the caller's scope. Each week says whether a reviewer approved it."""
    _check_actor(actor)
    if isinstance(weeks, bool) or not isinstance(weeks, int) or not 1 <= weeks <= MAX_HEATMAP_WEEKS:
        raise InvalidInput(
            f"weeks must be from 1 to {MAX_HEATMAP_WEEKS}, not {weeks!r}",
            {"weeks": [f"must be from 1 to {MAX_HEATMAP_WEEKS}"]},
        )
    as_of = as_of or today_in_china()
    doctor = session.get(Doctor, doctor_id) if isinstance(doctor_id, str) and doctor_id else None
    if doctor is None or not actor.may_see(doctor.id, doctor.township_code, doctor.county_code):
        raise NotFound(f"no doctor {doctor_id!r} in your scope")
    last_monday = week_start(as_of)
    first_monday = last_monday - timedelta(days=7 * (weeks - 1))
    places = select(OrgUnit.code).where(OrgUnit.county_code == actor.county_code)
    if actor.role == TOWNSHIP_REVIEWER:
        places = places.where(OrgUnit.township_code == actor.township_code)
    visits = session.scalars(
        select(Visit).where(
            Visit.doctor_id == doctor.id,
            Visit.deleted.is_(False),
            Visit.local_date >= first_monday,
            Visit.local_date <= min(as_of, last_monday + timedelta(days=6)),
            Visit.place_code.in_(places),
        )
    )
    by_day: dict[date, list[float]] = defaultdict(lambda: [0, 0.0, 0])
    for v in visits:
        cell = by_day[v.local_date]
        cell[0] += 1
        cell[1] += (v.check_out - v.check_in).total_seconds() / 3600.0
        cell[2] += v.patients
    approved = {
        week
        for (week,) in session.execute(
            select(WeekReview.week).where(
                WeekReview.doctor_id == doctor.id, WeekReview.state == APPROVED
            )
        )
    }
    rows = []
    for n in range(weeks):
        monday = first_monday + timedelta(days=7 * n)
        label = week_label(monday)
        days = []
        for offset in range(7):
            day = monday + timedelta(days=offset)
            sessions, hours, patients = by_day.get(day, (0, 0.0, 0))
            days.append(
                {
                    "date": day.isoformat(),
                    "weekday": offset + 1,
                    "sessions": int(sessions),
                    "hours": round(hours, 2),
                    "patients": int(patients),
                    "future": day > as_of,
                }
            )
        rows.append(
            {
                "week": label,
                "start": monday.isoformat(),
                "approved": label in approved,
                "days": days,
            }
        )
    return {
        "doctor": {"id": doctor.id, "name": doctor.name, "township": doctor.township_code},
        "figures_as_of": as_of.isoformat(),
        "weeks": rows,
        "max_sessions": max((int(cell[0]) for cell in by_day.values()), default=0),
    }


# --- tables: what the CSV, the XLSX and the pages render ------------------------------


def about_rows(summary: dict[str, Any]) -> list[list[Any]]:
    """The header block of every download: county, month, rule set and version, the date
    of the figures, and the scope."""
    scope = summary["scope"]["township"]
    return [
        ["县 county", summary["county"]["code"], summary["county"]["name"]],
        ["月份 month", summary["month"]],
        ["规则集 rule set", summary["ruleset"]["name"], summary["ruleset"]["version"]],
        ["数据截至 figures as of", summary["figures_as_of"]],
        ["范围 scope", "全县 whole county" if scope is None else ", ".join(scope)],
    ]


def _figure_headers(figures: Iterable[tuple[str, str, str]]) -> list[str]:
    return [f"{zh} {en} ({view})" for _, zh, en in figures for view in (RAW_LABEL, APPROVED_LABEL)]


TOTAL_NAME = "合计 total"


def table_rows(summary: dict[str, Any]) -> Tables:
    """The summary as tables, sheet name → [header, *rows]: townships (with the totals as
    the last row), compliance per weekly rule, flags per rule and state, villages."""
    units = [(row["code"], row["name"], row) for row in summary["townships"]] + [
        (summary["totals"]["code"], TOTAL_NAME, summary["totals"])
    ]
    townships: list[list[Any]] = [
        ["乡镇代码 township", "名称 name", *_figure_headers(TOWNSHIP_FIGURES)]
    ]
    compliance: list[list[Any]] = [
        ["乡镇代码 township", "名称 name", "规则 rule"]
        + [
            f"{zh} {en} ({view})"
            for zh, en in (
                ("已评周数", "weeks judged"),
                ("达标周数", "weeks met"),
                ("达标率", "rate"),
            )
            for view in (RAW_LABEL, APPROVED_LABEL)
        ]
    ]
    flags: list[list[Any]] = [
        ["乡镇代码 township", "名称 name", "规则 rule"]
        + [
            f"{zh} {en} ({view})"
            for zh, en in (("未处理", "open"), ("已说明", "excused"), ("已解决", "resolved"))
            for view in (RAW_LABEL, APPROVED_LABEL)
        ]
    ]
    for code, name, row in units:
        townships.append(
            [code, name]
            + [
                row["figures"][key][view]
                for key, _, _ in TOWNSHIP_FIGURES
                for view in ("raw", "approved")
            ]
        )
        for rule, figure in row["compliance"].items():
            compliance.append(
                [code, name, rule]
                + [
                    figure[key][view]
                    for key in ("judged", "met", "rate")
                    for view in ("raw", "approved")
                ]
            )
        for rule, by_state in row["flags"].items():
            flags.append(
                [code, name, rule]
                + [by_state[state][view] for state in FLAG_STATES for view in ("raw", "approved")]
            )
    villages: list[list[Any]] = [
        [
            "村代码 village",
            "名称 name",
            "乡镇 township",
            "有村卫生室 has clinic",
            "人口 population",
            "纬度 lat",
            "经度 lon",
            *_figure_headers(VILLAGE_FIGURES),
        ]
    ]
    for v in summary["villages"]:
        villages.append(
            [
                v["code"],
                v["name"],
                v["township"],
                v["has_clinic"],
                v["population"],
                v["lat"],
                v["lon"],
            ]
            + [
                v["figures"][key][view]
                for key, _, _ in VILLAGE_FIGURES
                for view in ("raw", "approved")
            ]
        )
    return {"townships": townships, "compliance": compliance, "flags": flags, "villages": villages}
