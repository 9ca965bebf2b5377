"""Today is not over (issue 14): a live evaluation (`today_open=True`, the server judging
as of today) counts today as still available until it ends; an evaluation as of a past
date (`--as-of`, a scenario) judges that day as over, as documented."""

from __future__ import annotations

from datetime import date

from rules import AT_RISK, evaluate, load_ruleset
from tests.rules.builders import daily, make_assignment, make_scenario, make_visit

MONDAY = date(2026, 3, 9)
RULES = load_ruleset("guangxi")  # posting.days_per_week: 5 duty days a week


def _weekly(flags: list) -> list:
    return [f for f in flags if f.rule == "posting.days_per_week" and f.period == "2026-W11"]


def test_on_monday_morning_a_posting_doctor_is_not_at_risk_before_they_could_log_anything() -> None:
    scenario = make_scenario(
        assignments=[make_assignment(start="2026-03-02")], visits=daily("2026-03-02", "2026-03-06")
    )
    live = evaluate(scenario, as_of=MONDAY, ruleset=RULES, today_open=True)
    assert _weekly(live) == []
    # As of the end of Monday (a scenario's --as-of), Monday is over and unlogged: at risk.
    ended = evaluate(scenario, as_of=MONDAY, ruleset=RULES)
    assert [f.status for f in _weekly(ended)] == [AT_RISK]


def test_a_live_evaluation_still_flags_a_week_that_cannot_be_reached_even_with_today() -> None:
    scenario = make_scenario(assignments=[make_assignment(start="2026-03-02")])
    thursday = date(2026, 3, 12)  # nothing Monday to Wednesday: at most 2 of 5 remain
    flags = _weekly(evaluate(scenario, as_of=thursday, ruleset=RULES, today_open=True))
    assert [f.status for f in flags] == [AT_RISK]
    assert flags[0].measured == 0
    assert "today" in flags[0].explanation_en


def test_a_duty_day_logged_today_is_counted_once_not_also_as_remaining() -> None:
    visits = [make_visit("2026-03-13", hours=9)]  # Friday only
    scenario = make_scenario(assignments=[make_assignment(start="2026-03-02")], visits=visits)
    friday = date(2026, 3, 13)
    flags = _weekly(evaluate(scenario, as_of=friday, ruleset=RULES, today_open=True))
    assert [(f.status, f.measured) for f in flags] == [(AT_RISK, 1)]
    assert "at most 1 can be reached" in flags[0].explanation_en


def test_the_last_day_of_a_week_is_not_over_while_it_lasts() -> None:
    scenario = make_scenario(assignments=[make_assignment(start="2026-03-02")])
    sunday = date(2026, 3, 15)
    live = _weekly(evaluate(scenario, as_of=sunday, ruleset=RULES, today_open=True))
    ended = _weekly(evaluate(scenario, as_of=sunday, ruleset=RULES))
    assert [f.status for f in live] == [AT_RISK]  # Sunday is not a workday: still short
    assert [f.status for f in ended] == ["violation"]
