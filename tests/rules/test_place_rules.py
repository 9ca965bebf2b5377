from rules import AT_RISK, VIOLATION
from tests.rules.builders import (
    by_period,
    default_places,
    flags_of,
    make_assignment,
    make_doctor,
    make_place,
    make_scenario,
    make_visit,
)

RULE = "coverage.village"


def coverage(as_of, **sections):
    return {
        (f.subject["id"], f.period): f for f in flags_of(RULE, make_scenario(**sections), as_of)
    }


def patrol_v2(**overrides):
    return (
        make_assignment(
            kind="patrol", places=["V2"], start="2026-03-02", slots=[{"weekday": 1, "slot": "am"}]
        )
        | overrides
    )


def test_a_small_village_visited_thirteen_days_before_sunday_is_covered_and_fourteen_is_not():
    # W12 ends Sunday 22 March; the 14-day window is 9-22 March.
    inside = [make_visit("2026-03-09", place="V2", kind="patrol")]
    outside = [make_visit("2026-03-08", place="V2", kind="patrol")]
    assert ("V2", "2026-W12") not in coverage(
        "2026-03-22", assignments=[patrol_v2()], visits=inside
    )
    flag = coverage("2026-03-22", assignments=[patrol_v2()], visits=outside)[("V2", "2026-W12")]
    assert (flag.status, flag.measured, flag.required) == (VIOLATION, 14, 14)
    assert flag.doctor is None


def test_a_village_with_visits_but_no_assignment_is_not_covered():
    visits = [make_visit("2026-03-16", place="V2")]
    flag = coverage("2026-03-22", visits=visits)[("V2", "2026-W12")]
    assert "no posting or patrol assignment" in flag.explanation_en


def test_a_village_with_a_clinic_and_enough_residents_needs_no_coverage():
    flagged = coverage("2026-03-22", assignments=[patrol_v2()])
    assert all(code == "V2" for code, _ in flagged)
    places = default_places()
    places[2]["population"] = 199  # V1 has a clinic but fewer than 200 residents
    flagged = coverage("2026-03-22", places=places, assignments=[patrol_v2()])
    assert ("V1", "2026-W12") in flagged


def test_the_current_week_is_at_risk_only_when_no_assignment_covers_its_remaining_days():
    ended = patrol_v2(end="2026-03-18")
    flagged = coverage("2026-03-18", assignments=[ended])
    assert flagged[("V2", "2026-W12")].status == AT_RISK
    assert ("V2", "2026-W12") not in coverage("2026-03-18", assignments=[patrol_v2()])


def township_with(population, doctors):
    places = [
        make_place(code="C1", level="county", parent=None, population=None),
        make_place(code="T1", level="township", parent="C1", population=None),
        make_place(code="V1", population=population),
    ]
    return make_scenario(
        places=places, doctors=doctors, assignments=[make_assignment(doctor=doctors[0]["id"])]
    )


def test_one_village_doctor_per_thousand_residents_passes_and_fewer_fails():
    rule = "staffing.doctors_per_1000"
    doctors = [make_doctor(id="D1", home="V1")]
    assert flags_of(rule, township_with(1000, doctors), "2026-03-31") == []
    flag = by_period(flags_of(rule, township_with(1001, doctors), "2026-03-31"))["2026-03"]
    assert (flag.subject, flag.status, flag.required) == (
        {"type": "place", "id": "T1"},
        VIOLATION,
        1.0,
    )


def test_laiyang_caps_village_doctors_at_one_and_a_half_per_thousand():
    rule = "staffing.doctors_per_1000"
    three = [make_doctor(id=f"D{i}", home="V1") for i in (1, 2, 3)]
    assert flags_of(rule, township_with(2000, three), "2026-03-31", base="laiyang") == []
    flag = by_period(flags_of(rule, township_with(1999, three), "2026-03-31", base="laiyang"))[
        "2026-03"
    ]
    assert flag.required == 1.5
    assert flags_of(rule, township_with(1999, three), "2026-03-31", base="guangxi") == []


def test_a_qualified_share_of_045_passes_and_below_fails():
    rule = "staffing.qualified_share"

    def doctors(qualified, total):
        return [
            make_doctor(
                id=f"D{i}",
                home="V1",
                qualification="physician" if i < qualified else "village_doctor",
            )
            for i in range(total)
        ]

    assert flags_of(rule, township_with(1000, doctors(9, 20)), "2026-03-31") == []
    flag = by_period(flags_of(rule, township_with(1000, doctors(8, 20)), "2026-03-31"))["2026-03"]
    assert (flag.subject["id"], flag.measured, flag.required) == ("C1", 0.4, 0.45)
    assert (
        by_period(
            flags_of(rule, township_with(1000, doctors(9, 20)), "2026-03-31", base="laiyang")
        )["2026-03"].required
        == 0.5
    )


def test_an_open_month_with_too_few_doctors_is_at_risk():
    rule = "staffing.doctors_per_1000"
    flag = by_period(flags_of(rule, township_with(5000, [make_doctor(home="V1")]), "2026-03-15"))[
        "2026-03"
    ]
    assert flag.status == AT_RISK
