"""Monthly tallies: the weekly duty rules met and judged, visits, patients and fees per
unit, raw and reviewer-approved side by side, and the flags per rule and state."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from rules import RuleSet
from rules.engine import WEEKLY_RULE, WEEKLY_RULE_PATROL
from rules.model import DUTY_KINDS, PATROL, POSTING, SITIN
from rules.periods import label_range, week_label, week_start
from server.flags import EXCUSED, OPEN, RESOLVED
from server.summaries.county import County
from server.summaries.periods import period_month

WEEKLY_RULES = (WEEKLY_RULE[POSTING], WEEKLY_RULE_PATROL, WEEKLY_RULE[SITIN])
FLAG_STATES = (OPEN, EXCUSED, RESOLVED)
Figure = dict[str, Any]  # {"raw": value, "approved": value}


# --- tallies -----------------------------------------------------------------------


def rate_of(part: int, whole: int) -> float | None:
    return round(part / whole, 3) if whole else None


@dataclass
class Tally:
    """One view (raw or approved) of one township's, or the totals', monthly figures."""

    doctors: dict[str, set[str]] = field(default_factory=lambda: {k: set() for k in DUTY_KINDS})
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
            "doctors_posting": len(self.doctors[POSTING]),
            "doctors_patrol": len(self.doctors[PATROL]),
            "doctors_sitin": len(self.doctors[SITIN]),
            "duty_days": self.duty_days,
            "duty_days_required": self.duty_days_required,
            "patrol_sessions": self.patrol_sessions,
            "patrol_sessions_required": self.patrol_sessions_required,
            "weeks_judged": judged,
            "weeks_met": met,
            "compliance_rate": rate_of(met, judged),
            "visits": self.visits,
            "patients": self.patients,
            "fee_total": round(self.fees[0], 2),
            "fee_insurance": round(self.fees[1], 2),
            "fee_personal": round(self.fees[2], 2),
            "villages_needing_coverage": self.needing_coverage,
            "villages_covered": self.covered,
            "coverage_rate": rate_of(self.covered, self.needing_coverage),
            "flags_open": flag_totals[OPEN],
            "flags_excused": flag_totals[EXCUSED],
            "flags_resolved": flag_totals[RESOLVED],
        }

    def compliance(self) -> dict[str, dict[str, Any]]:
        return {
            rule: {
                "judged": self.judged[rule],
                "met": self.met[rule],
                "rate": rate_of(self.met[rule], self.judged[rule]),
            }
            for rule in WEEKLY_RULES
        }


def figure_pair(raw: Any, approved: Any) -> Figure:
    return {"raw": raw, "approved": approved}


def figure_pairs(raw: dict[str, Any], approved: dict[str, Any]) -> dict[str, Figure]:
    return {key: figure_pair(raw[key], approved[key]) for key in raw}


@dataclass
class Unit:
    """A township (or the totals): its raw and approved tallies."""

    code: str
    name: str
    raw: Tally = field(default_factory=Tally)
    approved: Tally = field(default_factory=Tally)
    place_flag_rules: set[str] = field(default_factory=set)

    def both(self, approved: bool) -> list[Tally]:
        return [self.raw, self.approved] if approved else [self.raw]


# --- flags ---------------------------------------------------------------------------


def _flag_township(
    c: County, row: Any, visit_places: dict[str, str], assignments: dict[str, Any]
) -> str | None:
    """The township of a flag's subject: where the flagged duty or visit took place."""
    if row.subject_type == "place":
        return c.township_of.get(row.subject_id)
    if row.subject_type == "assignment" and row.subject_id in assignments:
        return c.assignment_township(assignments[row.subject_id].places)
    if row.subject_type == "visit" and row.subject_id in visit_places:
        return c.township_of.get(visit_places[row.subject_id])
    return row.township_code


def _flag_in_approved_weeks(c: County, row: Any) -> bool:
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


def tally_flags(
    c: County, flag_rows: list[Any], label: str, units: dict[str, Unit], total: Unit
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


def rules_with_flags(ruleset: RuleSet, first: date, last: date) -> list[str]:
    """The rules the flags table lists: those on in a version in force during the month."""
    rules: list[str] = []
    for version in ruleset.versions:
        if version is ruleset.version_at(first) or first < version.effective <= last:
            rules += [r for r in version.rules if r not in rules]
    return rules


def flag_figures(unit: Unit, rules: list[str]) -> dict[str, dict[str, Figure]]:
    out = {}
    for rule in [*rules, *sorted(set(unit.raw.flags) - set(rules))]:
        place_level = rule in unit.place_flag_rules or rule in PLACE_RULES
        raw = unit.raw.flags.get(rule, {})
        approved = unit.approved.flags.get(rule, {})
        out[rule] = {
            state: figure_pair(raw.get(state, 0), None if place_level else approved.get(state, 0))
            for state in FLAG_STATES
        }
    return out


# Rules judged on a place, not on a doctor's data: their flags have no doctor-week.
PLACE_RULES = frozenset(
    {"coverage.village", "staffing.doctors_per_1000", "staffing.qualified_share"}
)
