"""Builders for scenario records: a small county where each test changes only what it is
about. Records are scenario-format dicts, so every test also goes through load_scenario."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Any

from rules import Flag, RuleSet, Scenario, evaluate, load_scenario, parse_ruleset
from rules.ruleset import RULE_IDS

TZ = "+08:00"


def make_place(**overrides: Any) -> dict[str, Any]:
    place = {
        "code": "V1",
        "name": "一村",
        "level": "village",
        "parent": "T1",
        "population": 1000,
        "has_clinic": True,
        "lat": 23.0,
        "lon": 108.0,
    }
    return place | overrides


def default_places() -> list[dict[str, Any]]:
    return [
        make_place(code="C1", name="县", level="county", parent=None, population=None),
        make_place(code="T1", name="镇", level="township", parent="C1", population=None),
        make_place(code="V1"),
        make_place(code="V2", name="二村", population=150, has_clinic=False, lat=23.1),
    ]


def make_doctor(**overrides: Any) -> dict[str, Any]:
    return {"id": "D1", "name": "医生", "qualification": "physician", "home": "T1"} | overrides


def make_assignment(**overrides: Any) -> dict[str, Any]:
    assignment = {
        "id": "A1",
        "doctor": "D1",
        "kind": "posting",
        "places": ["V1"],
        "start": "2026-03-02",
        "end": "2026-12-31",
        "slots": [],
    }
    return assignment | overrides


_counter = iter(range(1, 10**9))


def make_visit(day: str | date = "2026-03-02", **overrides: Any) -> dict[str, Any]:
    """A visit on `day` from `start` (default 08:00) lasting `hours` (default 4)."""
    day = date.fromisoformat(day) if isinstance(day, str) else day
    hours = overrides.pop("hours", 4)
    start = overrides.pop("start", "08:00")
    hh, mm = (int(x) for x in start.split(":"))
    tz = timezone(timedelta(hours=8))
    check_in = datetime(day.year, day.month, day.day, hh, mm, tzinfo=tz)
    check_out = check_in + timedelta(hours=hours)
    visit = {
        "id": f"V-{next(_counter)}",
        "doctor": "D1",
        "assignment": None,
        "place": "V1",
        "kind": "posting",
        "check_in": check_in.isoformat(),
        "check_out": check_out.isoformat(),
        "patients": 5,
        "lat": 23.0,
        "lon": 108.0,
        "recorded_at": (check_out + timedelta(minutes=5)).isoformat(),
    }
    return visit | overrides


def make_leave(**overrides: Any) -> dict[str, Any]:
    leave = {"id": "L1", "doctor": "D1", "start": "2026-03-02", "end": "2026-03-02"}
    return leave | {"status": "approved"} | overrides


def make_training(**overrides: Any) -> dict[str, Any]:
    training = {"id": "T-1", "doctor": "D1", "start": "2026-04-01", "end": "2026-04-05"}
    return training | {"title": "培训"} | overrides


def make_scenario(**sections: Any) -> Scenario:
    obj = {
        "places": default_places(),
        "doctors": [make_doctor()],
        "assignments": [],
        "visits": [],
        "leave": [],
        "trainings": [],
    } | sections
    return load_scenario(obj)


def daily(first: str, last: str, **overrides: Any) -> list[dict[str, Any]]:
    """One visit a day from `first` to `last`, inclusive."""
    start, end = date.fromisoformat(first), date.fromisoformat(last)
    return [
        make_visit(start + timedelta(days=i), **overrides) for i in range((end - start).days + 1)
    ]


def only(
    rule: str, base: str = "guangxi", versions: list[dict[str, Any]] | None = None, **params: Any
) -> RuleSet:
    """A rule set with just `rule` on (parameters overridden by `params`)."""
    off = {other: {"enabled": False} for other in RULE_IDS if other != rule}
    first = {"version": "1", "effective": "2000-01-01", "rules": off | {rule: dict(params)}}
    return parse_ruleset({"name": "test", "base": base, "versions": [first, *(versions or [])]})


def flags_of(
    rule: str, scenario: Scenario, as_of: str, ruleset: RuleSet | None = None, **params: Any
) -> list[Flag]:
    ruleset = ruleset or only(rule, **params)
    return [
        f
        for f in evaluate(scenario, as_of=date.fromisoformat(as_of), ruleset=ruleset)
        if f.rule == rule
    ]


def by_period(flags: list[Flag]) -> dict[str, Flag]:
    return {f.period: f for f in flags}
