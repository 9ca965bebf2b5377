"""The reviewer's overview (server/review/overview.py), called directly on SQLite and
PostgreSQL: the recent weeks, the doctors × weeks grid in the reviewer's scope with each
week's sessions, patients and review state, and the townships a reviewer may choose."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from tests.builders import TOWNSHIP_A, VILLAGE_A1, VILLAGE_B1, small_scenario, visit_data


def actor(username: str) -> Any:
    from server.accounts import user_named
    from server.actor import actor_for
    from server.extensions import db

    user = user_named(db.session, username)
    assert user is not None
    return actor_for(db.session, user)


def d2_visit(vid: str, day: int, patients: int) -> dict[str, Any]:
    stamp = f"2026-03-{day:02d}T"
    return visit_data(
        id=vid,
        doctor="D2",
        assignment="A2",
        place=VILLAGE_A1,
        kind="posting",
        check_in=f"{stamp}08:00:00+08:00",
        check_out=f"{stamp}12:00:00+08:00",
        recorded_at=f"{stamp}12:10:00+08:00",
        patients=patients,
    )


@pytest.fixture
def seeded(app: Any) -> Any:
    """D2 (township A): two sessions in 2026-W11 (7 and 5 patients), one in W12 (4); D3
    (township B): one session in W11."""
    from server.extensions import db
    from server.records.importer import import_scenario

    d3 = visit_data(
        id="S1",
        doctor="D3",
        assignment="A3",
        place=VILLAGE_B1,
        check_in="2026-03-11T08:00:00+08:00",
        check_out="2026-03-11T12:00:00+08:00",
        recorded_at="2026-03-11T12:10:00+08:00",
        lat=23.21,
        lon=108.41,
    )
    visits = [d2_visit("P1", 9, 7), d2_visit("P2", 10, 5), d2_visit("P3", 17, 4), d3]
    with app.app_context():
        import_scenario(db.session, {**small_scenario(), "visits": visits})
    return app


def test_the_recent_weeks_end_with_the_week_of_the_day_newest_first() -> None:
    from server.review.overview import recent_weeks

    assert recent_weeks(date(2026, 3, 18), 3) == ["2026-W12", "2026-W11", "2026-W10"]
    assert recent_weeks(date(2026, 1, 1), 2) == ["2026-W01", "2025-W52"]


@pytest.mark.parametrize("count", [0, 27])
def test_a_count_of_weeks_out_of_bounds_is_invalid_input_naming_weeks(count: int) -> None:
    from server.errors import InvalidInput
    from server.review.overview import recent_weeks

    with pytest.raises(InvalidInput) as caught:
        recent_weeks(date(2026, 3, 18), count)
    assert caught.value.errors is not None and list(caught.value.errors) == ["weeks"]


def test_the_overview_counts_each_weeks_sessions_and_patients_in_the_reviewers_scope(
    seeded: Any,
) -> None:
    from server.extensions import db
    from server.review.overview import weeks_overview

    with seeded.app_context():
        grid = weeks_overview(db.session, actor("rev_a"), ["2026-W12", "2026-W11"])
    assert [w["week"] for w in grid["weeks"]] == ["2026-W12", "2026-W11"]
    assert grid["weeks"][1]["start"] == "2026-03-09" and grid["weeks"][1]["end"] == "2026-03-15"
    doctors = {d["id"]: d for d in grid["doctors"]}
    assert set(doctors) == {"D1", "D2"}, "township A only: D3 is township B's"
    assert doctors["D2"]["township"] == TOWNSHIP_A
    w12, w11 = doctors["D2"]["weeks"]
    assert (w11["sessions"], w11["patients"]) == (2, 12)
    assert (w12["sessions"], w12["patients"]) == (1, 4)
    assert w11["state"] == "unreviewed" and w11["by"] is None
    assert [(c["sessions"], c["patients"]) for c in doctors["D1"]["weeks"]] == [(0, 0), (0, 0)]


def test_an_approved_week_shows_approved_with_who_and_why(seeded: Any) -> None:
    from server.extensions import db
    from server.review.overview import weeks_overview
    from server.review.workflow import approve_week

    with seeded.app_context():
        approve_week(db.session, actor("rev_a"), "D2", "2026-W11", reason="checked")
        grid = weeks_overview(db.session, actor("admin"), ["2026-W11"], township=TOWNSHIP_A)
    cells = {d["id"]: d["weeks"][0] for d in grid["doctors"]}
    assert set(cells) == {"D1", "D2"}, "the township filter keeps the county admin to A"
    assert cells["D2"]["state"] == "approved"
    assert cells["D2"]["by"] == "rev_a" and cells["D2"]["reason"] == "checked"
    assert cells["D1"]["state"] == "unreviewed"


def test_a_reviewer_chooses_among_their_own_townships_only(seeded: Any) -> None:
    from server.extensions import db
    from server.review.overview import townships

    with seeded.app_context():
        mine = townships(db.session, actor("rev_a"))
        county = townships(db.session, actor("admin"))
    assert [t["code"] for t in mine] == [TOWNSHIP_A]
    assert len(county) == 2 and TOWNSHIP_A in {t["code"] for t in county}
