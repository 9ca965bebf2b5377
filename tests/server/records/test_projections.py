"""The typed tables kept from synced records (server/records/projections.py), called
directly: the columns a record gives, and `project` upserting and tombstoning a row of the
visits table in step with its record, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, datetime
from types import SimpleNamespace
from typing import Any

from tests.builders import VILLAGE_A1, visit_data


def test_a_visit_just_after_midnight_in_china_belongs_to_that_chinese_day() -> None:
    from server.records.projections import typed_values

    data = visit_data(check_in="2026-03-11T01:00:00+08:00", check_out="2026-03-11T03:00:00+08:00")
    values = typed_values("visits", data, 3)
    # 01:00 in China is 17:00 UTC the day before; the duty day is China's.
    assert values["local_date"] == date(2026, 3, 11)
    assert values["check_in"] == datetime.fromisoformat("2026-03-11T01:00:00+08:00")
    assert (values["doctor_id"], values["place_code"], values["assignment_id"]) == (
        "D1",
        VILLAGE_A1,
        "A1",
    )
    assert (values["patients"], values["version"], values["deleted"]) == (9, 3, False)


def test_leave_without_a_status_is_pending_and_a_training_without_a_title_is_blank() -> None:
    from server.records.projections import typed_values

    span = {"doctor": "D1", "start": "2026-03-02", "end": "2026-03-04"}
    leave = typed_values("leave", span, 1)
    training = typed_values("trainings", span, 1)
    assert leave["status"] == "pending" and "title" not in leave
    assert training["title"] == "" and "status" not in training
    assert (leave["start"], leave["end"]) == (date(2026, 3, 2), date(2026, 3, 4))
    assert typed_values("leave", {**span, "status": "approved"}, 2)["status"] == "approved"


def record(version: int, *, deleted: bool = False, **data: Any) -> Any:
    return SimpleNamespace(
        collection="visits",
        id="v-proj",
        version=version,
        deleted=deleted,
        data=None if deleted else visit_data(**data),
    )


def test_project_upserts_a_visit_row_and_a_tombstone_marks_it_deleted(app: Any) -> None:
    from server.extensions import db
    from server.models import Visit
    from server.records.projections import project

    with app.app_context():
        project(db.session, "visits", record(1, patients=4))
        db.session.commit()
        row = db.session.get(Visit, "v-proj")
        assert row is not None and (row.patients, row.version, row.deleted) == (4, 1, False)

        project(db.session, "visits", record(2, patients=11))
        db.session.commit()
        row = db.session.get(Visit, "v-proj")
        assert row is not None and (row.patients, row.version) == (11, 2), "not a stale copy"

        project(db.session, "visits", record(3, deleted=True))
        db.session.commit()
        row = db.session.get(Visit, "v-proj")
        assert row is not None and row.deleted and row.version == 3
        assert row.patients == 11, "a tombstone keeps the last figures"


def test_a_collection_without_a_typed_table_projects_nothing(app: Any) -> None:
    from sqlalchemy import func, select

    from server.extensions import db
    from server.models import Visit
    from server.records.projections import project

    place = SimpleNamespace(collection="places", id="x", version=1, deleted=False, data={})
    with app.app_context():
        project(db.session, "places", place)
        db.session.commit()
        assert db.session.scalar(select(func.count()).select_from(Visit)) == 0
