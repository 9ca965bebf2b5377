"""The weekly requirement (rules/weekly.py): posting.days_per_week, sitin.days_per_week,
patrol.per_week."""

from rules import AT_RISK, VIOLATION
from tests.rules.builders import (
    by_period,
    daily,
    flags_of,
    make_assignment,
    make_leave,
    make_scenario,
    make_training,
    make_visit,
)

RULE = "posting.days_per_week"


def weeks_flagged(as_of, **sections):
    return by_period(flags_of(RULE, make_scenario(**sections), as_of))


SLOTS = [{"weekday": 2, "slot": "am"}, {"weekday": 4, "slot": "am"}]


def patrol(**overrides):
    return make_assignment(kind="patrol", places=["V2"], slots=SLOTS) | overrides


def session(day, **overrides):
    return make_visit(day, **({"place": "V2", "kind": "patrol", "hours": 3.5} | overrides))


def test_five_duty_days_in_a_full_week_pass_and_four_fail():
    five = weeks_flagged(
        "2026-03-08", assignments=[make_assignment()], visits=daily("2026-03-02", "2026-03-06")
    )
    four = weeks_flagged(
        "2026-03-08", assignments=[make_assignment()], visits=daily("2026-03-02", "2026-03-05")
    )
    assert five == {}
    flag = four["2026-W10"]
    assert (flag.status, flag.measured, flag.required) == (VIOLATION, 4, 5)
    assert flag.key == "posting.days_per_week|assignment|A1|2026-W10"
    assert flag.doctor == "D1"


def test_a_duty_day_needs_four_hours_summed_over_that_dates_visits():
    split = [
        make_visit(day, hours=2)
        for day in ("2026-03-02", "2026-03-03", "2026-03-04", "2026-03-05", "2026-03-06")
        for _ in (0,)
    ]
    second_halves = [make_visit(v["check_in"][:10], start="14:00", hours=2) for v in split]
    assert (
        weeks_flagged("2026-03-08", assignments=[make_assignment()], visits=split + second_halves)
        == {}
    )
    short = daily("2026-03-02", "2026-03-05") + [make_visit("2026-03-06", hours=3.99)]
    assert (
        weeks_flagged("2026-03-08", assignments=[make_assignment()], visits=short)[
            "2026-W10"
        ].measured
        == 4
    )


def test_duty_days_count_on_weekends_too():
    visits = daily("2026-03-02", "2026-03-05") + [make_visit("2026-03-07")]
    assert weeks_flagged("2026-03-08", assignments=[make_assignment()], visits=visits) == {}


def test_a_partial_first_week_requires_only_its_workdays():
    # Starts Wednesday: Wed-Fri are 3 workdays, so 3 duty days are required.
    assignment = make_assignment(start="2026-03-04")
    assert (
        weeks_flagged(
            "2026-03-08", assignments=[assignment], visits=daily("2026-03-04", "2026-03-06")
        )
        == {}
    )
    flag = weeks_flagged(
        "2026-03-08", assignments=[assignment], visits=daily("2026-03-04", "2026-03-05")
    )["2026-W10"]
    assert (flag.measured, flag.required) == (2, 3)


def test_a_posting_ended_early_is_judged_only_on_its_last_partial_week():
    assignment = make_assignment(end="2026-03-10")  # ends Tuesday of W11
    visits = daily("2026-03-02", "2026-03-06") + daily("2026-03-09", "2026-03-10")
    assert weeks_flagged("2026-03-31", assignments=[assignment], visits=visits) == {}
    flagged = weeks_flagged("2026-03-31", assignments=[assignment], visits=visits[:-1])
    assert list(flagged) == ["2026-W11"]
    assert flagged["2026-W11"].required == 2


def test_national_day_week_2025_requires_only_its_two_workdays():
    assignment = make_assignment(start="2025-09-01", end="2025-12-31")
    # W40: Mon 29 and Tue 30 Sep are workdays, 1-5 Oct are holidays.
    flagged = weeks_flagged(
        "2025-10-05", assignments=[assignment], visits=[make_visit("2025-09-29")]
    )
    flag = flagged["2025-W40"]
    assert (flag.measured, flag.required) == (1, 2)
    assert "2025-10-01" in flag.explanation_en and "holidays" in flag.explanation_en
    assert flag.calendar.startswith("chinese_calendar")


def test_the_week_after_national_day_counts_the_make_up_saturday():
    assignment = make_assignment(start="2025-09-01", end="2025-12-31")
    # W41: 6-8 Oct holidays; Thu 9, Fri 10 and the make-up Saturday 11 are workdays.
    flag = weeks_flagged(
        "2025-10-12", assignments=[assignment], visits=daily("2025-10-09", "2025-10-10")
    )["2025-W41"]
    assert (flag.measured, flag.required) == (2, 3)
    assert "2025-10-11" in flag.explanation_en


def test_the_make_up_sunday_before_national_day_adds_a_workday_to_its_week():
    assignment = make_assignment(start="2025-09-01", end="2025-12-31")
    visits = daily("2025-09-22", "2025-09-26")  # W39 has six workdays: Mon-Fri and Sun 28
    assert "2025-W39" not in weeks_flagged("2025-09-28", assignments=[assignment], visits=visits)
    flag = weeks_flagged("2025-09-28", assignments=[assignment], visits=visits[:4])["2025-W39"]
    assert (flag.measured, flag.required) == (4, 5)  # min(5, 6)
    assert "6 workday(s)" in flag.explanation_en and "2025-09-28" in flag.explanation_en


def test_spring_festival_2026_weeks():
    assignment = make_assignment(start="2026-02-09", end="2026-12-31")
    flagged = weeks_flagged("2026-03-01", assignments=[assignment], visits=[])
    # W07: Mon-Fri and the make-up Saturday 14 → min(5, 6); W08: all holidays → nothing owed;
    # W09: Mon 23 is a holiday, Tue-Fri and the make-up Saturday 28 → min(5, 5).
    assert {p: f.required for p, f in flagged.items()} == {"2026-W07": 5, "2026-W09": 5}


def test_an_iso_week_across_the_year_end_takes_its_days_from_both_years():
    assignment = make_assignment(start="2025-12-01", end="2026-12-31")
    flag = weeks_flagged("2026-01-04", assignments=[assignment], visits=[])["2026-W01"]
    # 29-31 Dec are workdays, 1-3 Jan holidays, Sunday 4 Jan a make-up workday.
    assert flag.required == 4
    assert flag.period == "2026-W01"
    assert "2026-01-04" in flag.explanation_en


def test_approved_leave_lowers_the_requirement_and_unapproved_leave_does_not():
    visits = daily("2026-03-02", "2026-03-04")
    approved = [make_leave(start="2026-03-05", end="2026-03-06")]
    assert (
        weeks_flagged("2026-03-08", assignments=[make_assignment()], visits=visits, leave=approved)
        == {}
    )
    for status in ("pending", "refused"):
        leave = [make_leave(start="2026-03-05", end="2026-03-06", status=status)]
        flag = weeks_flagged(
            "2026-03-08", assignments=[make_assignment()], visits=visits, leave=leave
        )["2026-W10"]
        assert flag.required == 5
        assert "not approved" in flag.explanation_en


def test_training_days_lower_the_requirement_like_leave():
    visits = daily("2026-03-02", "2026-03-04")
    training = [make_training(start="2026-03-05", end="2026-03-06")]
    assert (
        weeks_flagged(
            "2026-03-08", assignments=[make_assignment()], visits=visits, trainings=training
        )
        == {}
    )


def test_a_week_not_over_is_at_risk_only_when_the_remaining_workdays_cannot_reach_it():
    # As of Wednesday 4 March: Thursday and Friday remain.
    on_track = weeks_flagged(
        "2026-03-04", assignments=[make_assignment()], visits=daily("2026-03-02", "2026-03-04")
    )
    assert on_track == {}
    behind = weeks_flagged(
        "2026-03-04", assignments=[make_assignment()], visits=daily("2026-03-02", "2026-03-03")
    )
    assert behind["2026-W10"].status == AT_RISK
    assert behind["2026-W10"].measured == 2


def test_visits_after_the_evaluation_date_are_not_yet_facts():
    flagged = weeks_flagged(
        "2026-03-05", assignments=[make_assignment()], visits=daily("2026-03-06", "2026-03-06")
    )
    assert flagged["2026-W10"].measured == 0


def test_a_year_the_calendar_does_not_know_is_judged_on_weekdays_and_the_flag_says_so():
    assignment = make_assignment(start="2031-01-06", end="2031-12-31")
    flag = weeks_flagged("2031-01-12", assignments=[assignment], visits=[])["2031-W02"]
    assert flag.required == 5
    assert flag.calendar == "fallback:weekdays"
    assert "fallback:weekdays" in flag.explanation_en and "fallback:weekdays" in flag.explanation_zh


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


def test_a_patrol_week_inside_the_spring_festival_owes_nothing():
    assignment = patrol(start="2026-02-09")
    assert "2026-W08" not in by_period(
        flags_of("patrol.per_week", make_scenario(assignments=[assignment]), "2026-03-01")
    )


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
