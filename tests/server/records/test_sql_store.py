"""The store writes a batch with one executemany a table, past the ORM (issue 7). An ORM
copy of a row loaded earlier in the same transaction must not go stale."""

from __future__ import annotations

from typing import Any

from sync.protocol import Op
from sync.records import Change
from tests.builders import visit_data


def test_rows_loaded_before_a_bulk_write_read_the_written_values_in_the_same_transaction(
    app: Any,
) -> None:
    from server.extensions import db
    from server.models import SyncRecord, Visit
    from server.records.projections import BatchProjection
    from server.records.sql_store import RecordScope, SqlSyncStore, WriteContext

    scope = RecordScope("D1", None, None)
    with app.app_context():
        store = SqlSyncStore(db.session, projector=BatchProjection())
        change = Change("visits", "v-bulk", Op.UPSERT, "c-1", 0, visit_data(patients=3))
        store.apply_batch([(change, scope)], WriteContext(origin="d1"))

        row = db.session.get(SyncRecord, ("visits", "v-bulk"))
        visit = db.session.get(Visit, "v-bulk")
        assert (row.version, visit.patients) == (1, 3)
        store.put_server_record("visits", "v-bulk", visit_data(patients=8), scope, updated_by="r")
        assert row.version == 2 and row.data["patients"] == 8, "the sync record went stale"
        assert visit.version == 2 and visit.patients == 8, "the typed row went stale"
        db.session.rollback()
