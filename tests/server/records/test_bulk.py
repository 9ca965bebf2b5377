"""`bulk.executemany` writes what `session.execute(statement, rows)` writes (issue 14), on
SQLite and PostgreSQL: the same rows read back, JSON, datetimes, NULLs, text from the whole
Unicode range that can be stored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

storable_text = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=20)
rows_of_answers = st.lists(
    st.fixed_dictionaries(
        {
            "change_id": st.uuids().map(lambda u: u.hex),
            "result": st.dictionaries(
                storable_text,
                st.one_of(
                    st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1), storable_text
                ),
                max_size=4,
            ),
            "created_at": st.datetimes(
                min_value=datetime(2000, 1, 1),
                max_value=datetime(2099, 1, 1),
                timezones=st.just(UTC),
            ),
        }
    ),
    min_size=1,
    max_size=6,
    unique_by=lambda r: r["change_id"],
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=rows_of_answers)
def test_bulk_rows_read_back_as_the_orm_writes_them(app: Any, rows: list[dict[str, Any]]) -> None:
    from sqlalchemy import insert, select

    from server.extensions import db
    from server.models import SyncApplied
    from server.records import bulk

    table = SyncApplied.__table__
    statement = insert(table)
    with app.app_context():
        bulk.executemany(db.session, statement, [dict(r, origin="bulk") for r in rows])
        db.session.execute(statement, [dict(r, origin="orm") for r in rows])
        db.session.flush()

        def read(origin: str) -> list[tuple[Any, ...]]:
            query = select(table.c.change_id, table.c.result, table.c.created_at).where(
                table.c.origin == origin
            )
            return sorted(tuple(row) for row in db.session.execute(query))

        written = read("bulk")
        assert written == read("orm")
        assert [(c, r) for c, r, _ in written] == sorted(
            (r["change_id"], r["result"]) for r in rows
        )
        stamps = sorted((r["change_id"], r["created_at"]) for r in rows)
        # SQLite keeps no offset: both writers drop it the same way; compare the instants.
        for (change_id, _, at), (expected_id, expected_at) in zip(written, stamps, strict=True):
            assert change_id == expected_id
            assert abs(
                (at.replace(tzinfo=UTC) if at.tzinfo is None else at) - expected_at
            ) < timedelta(microseconds=1)
        db.session.rollback()


def test_a_statement_rebuilt_at_the_same_address_is_compiled_again(app: Any) -> None:
    """The compiled cache is keyed by the statement object; a new object is never served
    another statement's SQL even if Python reuses its id."""
    from sqlalchemy import func, insert, select

    from server.extensions import db
    from server.models import SyncApplied
    from server.records import bulk

    table = SyncApplied.__table__
    now = datetime.now(UTC)
    with app.app_context():
        for origin in ("first", "second"):
            statement = insert(table).values(origin=origin)
            bulk.executemany(
                db.session,
                statement,
                [{"change_id": f"c-{origin}", "result": {}, "created_at": now}],
            )
            del statement
        counted = dict(
            db.session.execute(select(table.c.origin, func.count()).group_by(table.c.origin)).all()
        )
        assert counted == {"first": 1, "second": 1}
        db.session.rollback()
