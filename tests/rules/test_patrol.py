"""patrol.half_day and patrol.fixed_schedule (rules/patrol.py)."""

from rules import AT_RISK, VIOLATION
from tests.rules.builders import (
    flags_of,
    make_assignment,
    make_scenario,
    make_visit,
)

SLOTS = [{"weekday": 2, "slot": "am"}, {"weekday": 4, "slot": "am"}]


def patrol(**overrides):
    return make_assignment(kind="patrol", places=["V2"], slots=SLOTS) | overrides


def session(day, **overrides):
    return make_visit(day, **({"place": "V2", "kind": "patrol", "hours": 3.5} | overrides))


def test_a_session_under_half_a_day_is_flagged_and_does_not_count():
    short = session("2026-03-05", hours=3.49)
    visits = [session("2026-03-03"), short]
    [half] = flags_of(
        "patrol.half_day", make_scenario(assignments=[patrol()], visits=visits), "2026-03-08"
    )
    assert (half.subject, half.period, half.measured) == (
        {"type": "visit", "id": short["id"]},
        "2026-03-05",
        3.49,
    )
    [week] = flags_of(
        "patrol.per_week", make_scenario(assignments=[patrol()], visits=visits), "2026-03-08"
    )
    assert week.measured == 1
    exact = [session("2026-03-03"), session("2026-03-05", hours=3.5)]
    assert (
        flags_of(
            "patrol.half_day", make_scenario(assignments=[patrol()], visits=exact), "2026-03-08"
        )
        == []
    )


def test_a_patrol_assignment_with_no_slots_is_flagged_once():
    rule = "patrol.fixed_schedule"
    visits = [session(d) for d in ("2026-03-03", "2026-03-05", "2026-03-10", "2026-03-12")]
    [flag] = flags_of(
        rule, make_scenario(assignments=[patrol(slots=[])], visits=visits), "2026-05-31"
    )
    assert (flag.period, flag.subject["type"], flag.status) == (
        "2026-03-02",
        "assignment",
        VIOLATION,
    )


def test_three_of_four_sessions_on_schedule_pass_and_two_of_four_fail():
    rule = "patrol.fixed_schedule"
    on = [
        session("2026-03-03"),
        session("2026-03-05"),
        session("2026-03-10"),
    ]  # Tue am, Thu am, Tue am
    off = session("2026-03-11")  # Wednesday
    assert (
        flags_of(rule, make_scenario(assignments=[patrol()], visits=[*on, off]), "2026-03-31") == []
    )
    afternoon = session("2026-03-12", start="14:00")  # Thursday pm is not declared
    [flag] = flags_of(
        rule, make_scenario(assignments=[patrol()], visits=[*on[:2], off, afternoon]), "2026-03-31"
    )
    assert (flag.period, flag.measured, flag.required) == ("2026-03", 0.5, 0.75)
    assert set(flag.evidence) == {off["id"], afternoon["id"]}


def test_a_month_with_one_session_is_not_judged_for_schedule():
    rule = "patrol.fixed_schedule"
    assert (
        flags_of(
            rule,
            make_scenario(assignments=[patrol()], visits=[session("2026-03-11")]),
            "2026-03-31",
        )
        == []
    )


def test_an_open_month_is_at_risk_only_when_the_remaining_declared_slots_cannot_lift_the_share():
    rule = "patrol.fixed_schedule"
    off = [
        session(d)
        for d in (
            "2026-03-02",
            "2026-03-04",
            "2026-03-09",
            "2026-03-11",
            "2026-03-16",
            "2026-03-18",
        )
    ]
    # As of 25 March, Thursday 26 and Tuesday 31 remain: (0 + 2) / (6 + 2) < 0.75.
    [flag] = flags_of(rule, make_scenario(assignments=[patrol()], visits=off), "2026-03-25")
    assert flag.status == AT_RISK
    assert flags_of(rule, make_scenario(assignments=[patrol()], visits=off[:2]), "2026-03-04") == []
