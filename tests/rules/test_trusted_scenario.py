"""A stored scenario parsed as trusted equals the same scenario validated by load_scenario."""

from __future__ import annotations

from datetime import date

from demo_county import generate_county
from rules import load_scenario
from rules.scenario import trusted_scenario


def test_a_trusted_parse_builds_the_same_scenario_as_the_validating_one() -> None:
    county = generate_county(seed=7, townships=2, villages=12, doctors=15, weeks=6)
    county["leave"].append(
        {"id": "L-x", "doctor": county["doctors"][0]["id"], "start": "2026-01-06",
         "end": "2026-01-07", "status": "pending"}
    )  # fmt: skip
    assert trusted_scenario(county) == load_scenario(county)
    assert len(trusted_scenario(county).visits) > 100


def test_a_stored_leave_request_without_a_status_is_pending() -> None:
    doctor = {"id": "D1", "name": "", "qualification": "physician", "home": "V1"}
    place = {"code": "V1", "level": "village"}
    leave = {"doctor": "D1", "start": "2026-03-02", "end": "2026-03-03"}
    scenario = trusted_scenario({"places": [place], "doctors": [doctor], "leave": [leave]})
    assert scenario.leave[0].status == "pending"
    assert scenario.leave[0].start == date(2026, 3, 2)
