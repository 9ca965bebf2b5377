"""training.sessions_per_year and training.days_per_year (rules/training.py)."""

from rules import VIOLATION
from tests.rules.builders import (
    flags_of,
    make_assignment,
    make_doctor,
    make_scenario,
    make_training,
)


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
