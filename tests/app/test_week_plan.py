"""The week plan (rules/plan.py) and the app's counting against it (week.js) give the numbers
the server's rules give: for every doctor-week of the demo county, on several days of the
week, the measured and required figures equal rules.counts.weekly_counts and the status
equals the flags rules.evaluate raises (at risk before the week is lost, violation after)."""

from __future__ import annotations

import json
import subprocess
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from rules import evaluate, load_ruleset, load_scenario
from rules.counts import weekly_counts
from rules.plan import WEEKLY_RULE, WEEKLY_RULE_PATROL, week_plans

RUNNER = Path(__file__).with_name("week_standing.mjs")
WEEK_RULES = {*WEEKLY_RULE.values(), WEEKLY_RULE_PATROL}


def standings_in_js(cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    done = subprocess.run(
        ["node", str(RUNNER)],
        input=json.dumps(cases),
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return json.loads(done.stdout)


@pytest.mark.parametrize(
    "day", ["2026-01-14", "2026-01-29", "2026-02-05", "2026-02-12", "2026-03-01"]
)
def test_the_app_counts_each_week_as_the_rules_do(demo_county: dict[str, Any], day: str) -> None:
    scenario = load_scenario(demo_county)
    ruleset = load_ruleset("guangxi")
    today = date.fromisoformat(day)
    monday = today - timedelta(days=today.weekday())
    week = (monday, monday + timedelta(days=6))
    visits = [{**v, "id": v["id"]} for v in demo_county["visits"]]
    cases, expected = [], []
    for doctor in sorted(d["id"] for d in demo_county["doctors"]):
        counts = {
            c.assignment: c
            for c in weekly_counts(
                scenario, as_of=today, ruleset=ruleset, doctors={doctor}, period=week
            )
        }
        flags = {
            f.subject_id: f.status
            for f in evaluate(scenario, as_of=today, ruleset=ruleset, doctors={doctor}, period=week)
            if f.rule in WEEK_RULES
        }
        plans = [
            p
            for p in week_plans(scenario, doctor=doctor, around=today, ruleset=ruleset)
            if p.first <= today <= p.sunday
        ]
        assert {p.assignment for p in plans} == set(counts), "a plan for every week counted"
        for plan in plans:
            count = counts[plan.assignment]
            mine = [v for v in visits if v["doctor"] == doctor]
            cases.append({"plan": plan.to_dict(), "visits": mine, "today": day, "doctor": doctor})
            expected.append(
                (plan.assignment, count.measured, count.required, flags.get(plan.assignment, "ok"))
            )
    assert len(cases) >= 8, "most doctors have a weekly rule this week"
    got = [
        (s["assignment"], s["measured"], s["required"], s["status"]) for s in standings_in_js(cases)
    ]
    assert got == expected
    assert any(measured for _, measured, _, _ in got), "some weeks have duty counted"
