"""The index (rules/index.py): which hours count for which date."""

from rules.index import split_by_date
from tests.rules.builders import (
    by_period,
    daily,
    flags_of,
    make_assignment,
    make_scenario,
    make_visit,
)

RULE = "posting.days_per_week"


def weeks_flagged(as_of, **sections):
    return by_period(flags_of(RULE, make_scenario(**sections), as_of))


def test_a_visit_across_midnight_credits_each_date_with_its_own_hours():
    night = make_visit("2026-03-02", start="20:00", hours=8)
    visit = make_scenario(assignments=[make_assignment()], visits=[night]).visits[0]
    assert [(d.isoformat(), h) for d, h in split_by_date(visit)] == [
        ("2026-03-02", 4.0),
        ("2026-03-03", 4.0),
    ]
    visits = [night] + daily("2026-03-04", "2026-03-06")  # 2 + 3 duty days
    assert weeks_flagged("2026-03-08", assignments=[make_assignment()], visits=visits) == {}
    late = [make_visit("2026-03-02", start="22:00", hours=4)] + daily("2026-03-04", "2026-03-06")
    assert (
        weeks_flagged("2026-03-08", assignments=[make_assignment()], visits=late)[
            "2026-W10"
        ].measured
        == 3
    )
