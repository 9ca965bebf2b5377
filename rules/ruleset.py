"""Rule sets as data: the five presets of RULES.md, county files that start from a preset and
override parameters, and versions with effective dates.

A county rule set file (JSON):

    {"name": "bama", "base": "guangxi",
     "calendar_overrides": ["calendar-2031.json", {"year": 2032, "holidays": [], "workdays": []}],
     "versions": [
       {"version": "2026.1", "effective": "2026-01-01",
        "rules": {"posting.days_per_week": {"min_days": 4}, "visit.off_site": {"enabled": false}}},
       {"version": "2026.2", "effective": "2026-07-01", "calendar": "weekdays",
        "definitions": {"min_hours_per_day": 3}}]}

Each version applies its overrides on top of the version before it (the first on top of the
base preset). A period is judged by the version in force on the period's first day; periods
that start before the earliest version are judged by the earliest version.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

from rules.workdays import (
    CALENDAR_MODES,
    CalendarFileError,
    WorkCalendar,
    YearSchedule,
    load_year_schedule,
    parse_year_schedule,
)

Params = dict[str, Any]

# Every rule of RULES.md with its default parameters. Presets and county files may only name
# these rules and these parameters, so a typo is an error rather than a silent default.
RULE_DEFAULTS: dict[str, Params] = {
    "posting.days_per_week": {"min_days": 5},
    "posting.min_duration": {"min_months": 6},
    "posting.continuity": {"max_gap_days": 14},
    "patrol.per_week": {"min_sessions": 2, "max_sessions_per_date": 2},
    "patrol.half_day": {},
    "patrol.fixed_schedule": {"min_on_schedule_ratio": 0.75, "min_sessions_per_month": 2},
    "sitin.days_per_week": {"min_days": 1},
    "sitin.min_service": {"min_months": 24},
    "training.sessions_per_year": {"min_sessions": 2},
    "training.days_per_year": {"min_days": 10},
    "coverage.village": {"coverage_window_days": 14, "small_village_population": 200},
    "staffing.doctors_per_1000": {"min_per_1000": 1.0, "max_per_1000": None},
    "staffing.qualified_share": {"min_share": 0.45},
    "visit.overlap": {},
    "visit.off_site": {"max_distance_km": 1.0},
    "visit.implausible_patients": {"max_patients_per_hour": 30},
    "visit.late_entry": {"max_entry_delay_days": 7},
}
RULE_IDS = tuple(RULE_DEFAULTS)

# Definitions shared by several rules (RULES.md calendar conventions and fee summary).
DEFINITION_DEFAULTS: Params = {
    "min_hours_per_day": 4,
    "half_day_hours": 3.5,
    "fee_per_patient_visit": 8,
    "fee_insurance_share": 7,
    "fee_personal_share": 1,
}

PRESETS = ("national", "guangxi", "shanxi", "sichuan", "laiyang")
DEFAULT_PRESET = "guangxi"


class RuleSetError(ValueError):
    """A rule set that cannot be found or does not validate."""


@dataclass(frozen=True)
class RuleSetVersion:
    """One version of a rule set: which rules are on, their parameters, the calendar."""

    version: str
    effective: date
    calendar: str
    rules: Mapping[str, Params]  # enabled rules only
    definitions: Mapping[str, Any]
    sources: Mapping[str, str] = field(default_factory=dict)

    def enabled(self, rule: str) -> bool:
        return rule in self.rules

    def param(self, rule: str, name: str) -> Any:
        return self.rules[rule][name]

    def definition(self, name: str) -> Any:
        return self.definitions[name]


@dataclass
class RuleSet:
    name: str
    versions: list[RuleSetVersion]
    calendar_overrides: tuple[YearSchedule, ...] = ()
    _calendars: dict[str, WorkCalendar] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if not self.versions:
            raise RuleSetError(f"rule set {self.name!r} has no versions")
        self.versions.sort(key=lambda v: v.effective)

    def version_at(self, day: date) -> RuleSetVersion:
        """The version in force on `day`; the earliest version for days before it."""
        chosen = self.versions[0]
        for version in self.versions:
            if version.effective <= day:
                chosen = version
            else:
                break
        return chosen

    def calendar(self, version: RuleSetVersion) -> WorkCalendar:
        cal = self._calendars.get(version.calendar)
        if cal is None:
            cal = self._calendars[version.calendar] = WorkCalendar(
                version.calendar, self.calendar_overrides
            )
        return cal

    def with_calendar_overrides(self, schedules: tuple[YearSchedule, ...]) -> RuleSet:
        """A copy whose calendar also uses these year schedules (they win over earlier ones)."""
        return RuleSet(self.name, list(self.versions), self.calendar_overrides + schedules)

    def ref(self, version: RuleSetVersion) -> dict[str, str]:
        return {"name": self.name, "version": version.version}


def _apply_rules(
    rules: dict[str, Params], sources: dict[str, str], overrides: Any, where: str
) -> None:
    if not isinstance(overrides, Mapping):
        raise RuleSetError(f"{where}: expected an object of rule ids")
    for rule, entry in overrides.items():
        if rule not in RULE_DEFAULTS:
            raise RuleSetError(f"{where}.{rule}: unknown rule id (known: {', '.join(RULE_IDS)})")
        if not isinstance(entry, Mapping):
            raise RuleSetError(f"{where}.{rule}: expected an object of parameters")
        # Presets write {"params": {...}, "source": ...}; county files write the parameters
        # directly. Both may say "enabled": false.
        params = entry.get("params", entry)
        if not isinstance(params, Mapping):
            raise RuleSetError(f"{where}.{rule}.params: expected an object")
        enabled = entry.get("enabled", True)
        if not isinstance(enabled, bool):
            raise RuleSetError(f"{where}.{rule}.enabled: expected true or false")
        if not enabled:
            rules.pop(rule, None)
            continue
        merged = dict(rules.get(rule, RULE_DEFAULTS[rule]))
        for name, value in params.items():
            if name in ("enabled", "source", "to_confirm", "params"):
                continue
            if name not in RULE_DEFAULTS[rule]:
                known = ", ".join(RULE_DEFAULTS[rule]) or "none"
                raise RuleSetError(f"{where}.{rule}.{name}: unknown parameter (known: {known})")
            if value is not None and (
                not isinstance(value, int | float) or isinstance(value, bool) or value < 0
            ):
                raise RuleSetError(f"{where}.{rule}.{name}: expected a number >= 0, got {value!r}")
            merged[name] = value
        rules[rule] = merged
        if "source" in entry:
            sources[rule] = str(entry["source"])


def _apply_definitions(definitions: Params, overrides: Any, where: str) -> None:
    if not isinstance(overrides, Mapping):
        raise RuleSetError(f"{where}: expected an object")
    for name, value in overrides.items():
        if name not in DEFINITION_DEFAULTS:
            known = ", ".join(DEFINITION_DEFAULTS)
            raise RuleSetError(f"{where}.{name}: unknown definition (known: {known})")
        if isinstance(value, Mapping):
            value = value.get("value")
        if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
            raise RuleSetError(f"{where}.{name}: expected a number >= 0, got {value!r}")
        definitions[name] = value


def _parse_date(value: Any, where: str) -> date:
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        raise RuleSetError(f"{where}: expected a date YYYY-MM-DD, got {value!r}") from None


def _check_calendar(value: Any, where: str) -> str:
    if value not in CALENDAR_MODES:
        raise RuleSetError(f"{where}: expected one of {', '.join(CALENDAR_MODES)}, got {value!r}")
    return str(value)


def _preset_data(name: str) -> Any:
    text = resources.files("rules").joinpath("data", f"{name}.json").read_text(encoding="utf-8")
    return json.loads(text)


_preset_cache: dict[str, RuleSetVersion] = {}


def _preset_version(name: str) -> RuleSetVersion:
    if name in _preset_cache:
        return _preset_cache[name]
    data = _preset_data(name)
    where = f"preset {name}"
    if "extends" in data:
        parent = _preset_version(data["extends"])
        rules = {rule: dict(params) for rule, params in parent.rules.items()}
        definitions = dict(parent.definitions)
        sources = dict(parent.sources)
        calendar = parent.calendar
    else:
        rules, definitions, sources, calendar = {}, dict(DEFINITION_DEFAULTS), {}, "cn"
    _apply_rules(rules, sources, data.get("rules", {}), f"{where}: rules")
    _apply_definitions(definitions, data.get("definitions", {}), f"{where}: definitions")
    version = RuleSetVersion(
        version=str(data["version"]),
        effective=_parse_date(data["effective"], f"{where}: effective"),
        calendar=_check_calendar(data.get("calendar", calendar), f"{where}: calendar"),
        rules=rules,
        definitions=definitions,
        sources=sources,
    )
    _preset_cache[name] = version
    return version


def preset(name: str) -> RuleSet:
    if name not in PRESETS:
        raise RuleSetError(f"unknown rule set {name!r}: presets are {', '.join(PRESETS)}")
    return RuleSet(name, [_preset_version(name)])


def parse_ruleset(obj: Any, *, origin: str = "rule set", base_dir: Path | None = None) -> RuleSet:
    """Build a county rule set from its JSON object (see the module docstring)."""
    if not isinstance(obj, Mapping):
        raise RuleSetError(f"{origin}: expected a JSON object")
    name = obj.get("name")
    if not isinstance(name, str) or not name:
        raise RuleSetError(f"{origin}: name: expected a non-empty string")
    base = obj.get("base", DEFAULT_PRESET)
    if base not in PRESETS:
        raise RuleSetError(
            f"{origin}: base: unknown preset {base!r} (presets: {', '.join(PRESETS)})"
        )
    previous = _preset_version(base)
    raw_versions = obj.get("versions") or [{}]
    if not isinstance(raw_versions, list):
        raise RuleSetError(f"{origin}: versions: expected a list")
    versions = []
    for i, raw in enumerate(raw_versions):
        where = f"{origin}: versions[{i}]"
        if not isinstance(raw, Mapping):
            raise RuleSetError(f"{where}: expected an object")
        rules = {rule: dict(params) for rule, params in previous.rules.items()}
        definitions = dict(previous.definitions)
        sources = dict(previous.sources)
        _apply_rules(rules, sources, raw.get("rules", {}), f"{where}.rules")
        _apply_definitions(definitions, raw.get("definitions", {}), f"{where}.definitions")
        effective = (
            _parse_date(raw["effective"], f"{where}.effective")
            if "effective" in raw
            else previous.effective
        )
        previous = RuleSetVersion(
            version=str(raw.get("version", i + 1)),
            effective=effective,
            calendar=_check_calendar(raw.get("calendar", previous.calendar), f"{where}.calendar"),
            rules=rules,
            definitions=definitions,
            sources=sources,
        )
        versions.append(previous)
    schedules = []
    raw_overrides = obj.get("calendar_overrides", [])
    if not isinstance(raw_overrides, list):
        raise RuleSetError(f"{origin}: calendar_overrides: expected a list")
    for i, entry in enumerate(raw_overrides):
        try:
            if isinstance(entry, str):
                path = Path(entry)
                if base_dir is not None and not path.is_absolute():
                    path = base_dir / path
                schedules.append(load_year_schedule(path))
            else:
                schedules.append(
                    parse_year_schedule(entry, f"override:{origin}#calendar_overrides[{i}]")
                )
        except CalendarFileError as error:
            raise RuleSetError(f"{origin}: calendar_overrides[{i}]: {error}") from None
    return RuleSet(name, versions, tuple(schedules))


def load_ruleset(name_or_path: str | Path) -> RuleSet:
    """A preset by name, or a county rule set file by path."""
    if isinstance(name_or_path, str) and name_or_path in PRESETS:
        return preset(name_or_path)
    path = Path(name_or_path)
    if not path.is_file():
        raise RuleSetError(
            f"unknown rule set {str(name_or_path)!r}: not a preset ({', '.join(PRESETS)}) "
            "and no such file"
        )
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise RuleSetError(f"{path}: cannot read: {error.strerror}") from None
    except json.JSONDecodeError as error:
        raise RuleSetError(
            f"{path}: not valid JSON: line {error.lineno} column {error.colno}: {error.msg}"
        ) from None
    return parse_ruleset(obj, origin=str(path), base_dir=path.parent)
