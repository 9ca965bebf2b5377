from datetime import date

from rules import preset
from rules.counts import consultation_fees, days_since_last_visit, patients_by_place, weekly_counts
from tests.rules.builders import daily, make_assignment, make_scenario, make_visit


def test_weekly_counts_show_duty_days_done_and_required_per_week():
    scenario = make_scenario(
        assignments=[make_assignment(start="2026-02-09")], visits=daily("2026-02-09", "2026-02-12")
    )
    counts = {
        c.week: c
        for c in weekly_counts(scenario, as_of=date(2026, 2, 22), ruleset=preset("guangxi"))
    }
    assert (
        counts["2026-W07"].measured,
        counts["2026-W07"].required,
        counts["2026-W07"].available_workdays,
    ) == (4, 5, 6)
    assert counts["2026-W08"].required == 0  # Spring Festival
    assert counts["2026-W07"].to_dict()["unit"] == "duty_days"


def test_days_since_last_visit_per_village():
    scenario = make_scenario(visits=[make_visit("2026-03-02"), make_visit("2026-03-20")])
    assert days_since_last_visit(scenario, as_of=date(2026, 3, 10)) == {"V1": 8, "V2": None}


def test_patients_and_consultation_fees_at_village_clinics():
    visits = [
        make_visit("2026-03-02", patients=10),
        make_visit("2026-03-03", patients=2, place="V2"),
    ]
    scenario = make_scenario(visits=visits)
    assert patients_by_place(scenario, date(2026, 3, 1), date(2026, 3, 31)) == {"V1": 10, "V2": 2}
    fees = consultation_fees(
        scenario, date(2026, 3, 1), date(2026, 3, 31), ruleset=preset("guangxi")
    )
    assert fees["V1"].to_dict() == {"patients": 10, "total": 80, "insurance": 70, "personal": 10}
    assert "V2" not in fees  # no clinic there
