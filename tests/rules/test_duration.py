"""posting.min_duration and sitin.min_service (rules/duration.py)."""

from rules import AT_RISK, VIOLATION
from tests.rules.builders import (
    flags_of,
    make_assignment,
    make_scenario,
)


def test_a_posting_shorter_than_six_months_is_flagged_at_the_boundary():
    rule = "posting.min_duration"
    six = make_assignment(start="2026-01-05", end="2026-07-04")
    short = make_assignment(start="2026-01-05", end="2026-07-03")
    assert flags_of(rule, make_scenario(assignments=[six]), "2026-12-31") == []
    [flag] = flags_of(rule, make_scenario(assignments=[short]), "2026-12-31")
    assert (flag.status, flag.period, flag.measured, flag.required) == (
        VIOLATION,
        "2026-01-05/2026-07-03",
        180,
        181,
    )
    [planned] = flags_of(rule, make_scenario(assignments=[short]), "2026-03-01")
    assert planned.status == AT_RISK


def test_an_open_ended_posting_is_not_flagged_for_duration():
    open_ended = make_assignment(end=None)
    assert (
        flags_of("posting.min_duration", make_scenario(assignments=[open_ended]), "2027-01-01")
        == []
    )


def test_sitin_service_of_two_years_passes_and_a_day_less_fails():
    rule = "sitin.min_service"
    two_years = make_assignment(kind="sitin", places=["T1"], start="2026-03-02", end="2028-03-01")
    assert (
        flags_of(rule, make_scenario(assignments=[two_years]), "2028-06-01", base="laiyang") == []
    )
    short = two_years | {"end": "2028-02-29"}
    [flag] = flags_of(rule, make_scenario(assignments=[short]), "2028-06-01", base="laiyang")
    assert flag.status == VIOLATION
