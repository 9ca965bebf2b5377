from rules import AT_RISK, VIOLATION
from tests.rules.builders import (
    by_period,
    flags_of,
    make_assignment,
    make_doctor,
    make_scenario,
    make_training,
    make_visit,
)

SLOTS = [{"weekday": 2, "slot": "am"}, {"weekday": 4, "slot": "am"}]


def patrol(**overrides):
    return make_assignment(kind="patrol", places=["V2"], slots=SLOTS) | overrides


def session(day, **overrides):
    return make_visit(day, **({"place": "V2", "kind": "patrol", "hours": 3.5} | overrides))


def test_two_half_day_sessions_a_week_pass_and_one_fails():
    rule = "patrol.per_week"
    two = [session("2026-03-03"), session("2026-03-05")]
    assert flags_of(rule, make_scenario(assignments=[patrol()], visits=two), "2026-03-08") == []
    [flag] = flags_of(rule, make_scenario(assignments=[patrol()], visits=two[:1]), "2026-03-08")
    assert (flag.period, flag.measured, flag.required, flag.status) == ("2026-W10", 1, 2, VIOLATION)


def test_at_most_two_sessions_count_on_one_date():
    rule = "patrol.per_week"
    three = [
        session("2026-03-03", start="08:00"),
        session("2026-03-03", start="12:00"),
        session("2026-03-03", start="16:00"),
    ]
    assert flags_of(rule, make_scenario(assignments=[patrol()], visits=three), "2026-03-08") == []
    [flag] = flags_of(
        rule, make_scenario(assignments=[patrol()], visits=three), "2026-03-08", min_sessions=3
    )
    assert flag.measured == 2


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


def test_a_patrol_week_inside_the_spring_festival_owes_nothing():
    assignment = patrol(start="2026-02-09")
    assert "2026-W08" not in by_period(
        flags_of("patrol.per_week", make_scenario(assignments=[assignment]), "2026-03-01")
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


def test_sitin_one_duty_day_a_week_passes_and_none_fails():
    rule = "sitin.days_per_week"
    sitin = make_assignment(kind="sitin", places=["T1"])
    one = [make_visit("2026-03-04", place="T1", kind="sitin")]
    assert (
        flags_of(rule, make_scenario(assignments=[sitin], visits=one), "2026-03-08", base="laiyang")
        == []
    )
    [flag] = flags_of(rule, make_scenario(assignments=[sitin]), "2026-03-08", base="laiyang")
    assert (flag.measured, flag.required) == (0, 1)


def test_sitin_service_of_two_years_passes_and_a_day_less_fails():
    rule = "sitin.min_service"
    two_years = make_assignment(kind="sitin", places=["T1"], start="2026-03-02", end="2028-03-01")
    assert (
        flags_of(rule, make_scenario(assignments=[two_years]), "2028-06-01", base="laiyang") == []
    )
    short = two_years | {"end": "2028-02-29"}
    [flag] = flags_of(rule, make_scenario(assignments=[short]), "2028-06-01", base="laiyang")
    assert flag.status == VIOLATION


def village_doctor():
    return make_doctor(qualification="village_doctor", home="V1")


def test_two_trainings_and_ten_training_workdays_a_year_pass():
    trainings = [
        make_training(id="T-1", start="2026-04-07", end="2026-04-10"),  # Tue-Fri: 4 workdays
        make_training(id="T-2", start="2026-06-01", end="2026-06-08"),  # 6 workdays
    ]
    scenario = make_scenario(doctors=[village_doctor()], trainings=trainings)
    for rule in ("training.sessions_per_year", "training.days_per_year"):
        assert flags_of(rule, scenario, "2026-12-31", base="sichuan") == []


def test_one_training_or_nine_training_workdays_fail_once_the_year_is_over():
    trainings = [make_training(start="2026-06-01", end="2026-06-11")]  # 9 workdays: 1-5, 8-11
    scenario = make_scenario(doctors=[village_doctor()], trainings=trainings)
    [sessions] = flags_of("training.sessions_per_year", scenario, "2026-12-31", base="sichuan")
    [days] = flags_of("training.days_per_year", scenario, "2026-12-31", base="sichuan")
    assert (sessions.period, sessions.measured, sessions.required) == ("2026", 1, 2)
    assert (days.measured, days.required, days.status) == (9, 10, VIOLATION)
    assert flags_of("training.days_per_year", scenario, "2026-06-30", base="sichuan") == []


def test_training_rules_apply_only_to_village_doctors():
    scenario = make_scenario(doctors=[make_doctor(home="T1")], trainings=[])
    assert flags_of("training.sessions_per_year", scenario, "2026-12-31", base="sichuan") == []


def test_a_township_doctor_posted_to_a_village_counts_as_a_village_doctor_only_in_years_of_the_posting():
    scenario = make_scenario(
        doctors=[make_doctor(home="T1")],
        assignments=[make_assignment(start="2026-03-02", end="2026-12-31")],
    )
    flags = flags_of("training.sessions_per_year", scenario, "2027-01-01", base="sichuan")
    assert [f.period for f in flags] == ["2026"]
