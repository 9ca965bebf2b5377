"""The storage contract suite, shipped beside the contract (`sync.storage`) as Kinto ships
kinto/core/storage/testing.py: backend-independent tests every `SyncStore` must pass.

A test module subclasses `StorageContractTests` once per store and gives it a `store`
fixture that yields a fresh, empty store (tests/test_storage_contract.py runs it on the
server's store on SQLite and on PostgreSQL and on the offline client's store):

    class TestClientStore(StorageContractTests):
        @pytest.fixture
        def store(self, tmp_path):
            yield open_store(tmp_path / "device.sqlite3")

Pure like the rest of `sync/`: no pytest, Flask or database driver import; the tests are
plain methods with plain asserts, which pytest collects through the subclass.
"""

from __future__ import annotations

import uuid
from typing import Any

from sync.protocol import Op, Status
from sync.records import Change
from sync.storage import InvalidCursor, SyncStore


def make_upsert(record_id: str, base: int = 0, **data: Any) -> Change:
    """An upsert of a `visits` record on version `base`, with a fresh change id."""
    return Change(
        "visits",
        record_id,
        Op.UPSERT,
        uuid.uuid4().hex,
        base,
        {"doctor": "D1", "patients": 1, **data},
    )


def make_delete(record_id: str, base: int) -> Change:
    """A delete of a `visits` record on version `base`, with a fresh change id."""
    return Change("visits", record_id, Op.DELETE, uuid.uuid4().hex, base)


class StorageContractTests:
    """What every store does the same way (sync.storage's docstring), one test a promise.

    Subclasses named Test... provide the `store` fixture."""

    def test_a_new_record_is_stored_as_version_one(self, store: SyncStore) -> None:
        result = store.apply(make_upsert("r1", patients=4), origin="u")
        assert (result.status, result.version) == (Status.ACCEPTED, 1)
        record = store.get("visits", "r1")
        assert record is not None and record.version == 1 and record.data["patients"] == 4

    def test_an_unknown_record_is_none(self, store: SyncStore) -> None:
        assert store.get("visits", "nothing") is None

    def test_the_same_change_id_twice_gets_the_first_answer_and_changes_nothing(
        self, store: SyncStore
    ) -> None:
        change = make_upsert("r1")
        first = store.apply(change, origin="u")
        again = store.apply(change, origin="u")
        assert again.to_wire() == first.to_wire()
        assert store.get("visits", "r1").version == 1  # type: ignore[union-attr]
        assert len(store.changes_since(None, 100).records) == 1

    def test_identical_data_under_a_new_change_id_is_a_duplicate(self, store: SyncStore) -> None:
        store.apply(make_upsert("r1", patients=2), origin="u")
        result = store.apply(make_upsert("r1", base=1, patients=2), origin="u")
        assert (result.status, result.version) == (Status.DUPLICATE, 1)

    def test_an_edit_on_the_stored_version_makes_a_new_version(self, store: SyncStore) -> None:
        store.apply(make_upsert("r1"), origin="u")
        result = store.apply(make_upsert("r1", base=1, patients=9), origin="u")
        assert (result.status, result.version) == (Status.ACCEPTED, 2)
        assert store.get("visits", "r1").data["patients"] == 9  # type: ignore[union-attr]

    def test_a_stale_edit_keeps_the_stored_version_and_the_incoming_one_as_a_conflict(
        self, store: SyncStore
    ) -> None:
        store.apply(make_upsert("r1"), origin="u")
        store.apply(make_upsert("r1", base=1, patients=5), origin="u")
        result = store.apply(make_upsert("r1", base=1, patients=7), origin="u")
        assert result.status is Status.CONFLICT and result.conflict_id
        assert store.get("visits", "r1").data["patients"] == 5  # type: ignore[union-attr]
        [conflict] = store.conflicts()
        assert conflict.record_id == "r1" and conflict.incoming_data["patients"] == 7  # type: ignore[index]
        assert conflict.stored_version == 2 and conflict.base_version == 1

    def test_a_delete_leaves_a_tombstone_that_no_late_change_revives(
        self, store: SyncStore
    ) -> None:
        store.apply(make_upsert("r1"), origin="u")
        assert store.apply(make_delete("r1", 1), origin="u").status is Status.ACCEPTED
        late = store.apply(make_upsert("r1", base=1, patients=3), origin="u")
        assert late.status is Status.CONFLICT
        record = store.get("visits", "r1")
        assert record is not None and record.deleted and record.version == 2

    def test_deleting_a_deleted_record_is_a_duplicate(self, store: SyncStore) -> None:
        store.apply(make_upsert("r1"), origin="u")
        store.apply(make_delete("r1", 1), origin="u")
        assert store.apply(make_delete("r1", 1), origin="u").status is Status.DUPLICATE

    def test_changes_come_in_the_order_they_last_changed_each_record_once(
        self, store: SyncStore
    ) -> None:
        for name in ("a", "b", "c"):
            store.apply(make_upsert(name), origin="u")
        store.apply(make_upsert("a", base=1, patients=8), origin="u")
        page = store.changes_since(None, 100)
        assert [r.id for r in page.records] == ["b", "c", "a"]
        assert page.has_more is False

    def test_paging_by_cursor_sees_every_record_once(self, store: SyncStore) -> None:
        names = [f"r{i}" for i in range(7)]
        for name in names:
            store.apply(make_upsert(name), origin="u")
        seen, cursor = [], None
        while True:
            page = store.changes_since(cursor, 3)
            seen += [r.id for r in page.records]
            cursor = page.cursor
            if not page.has_more:
                break
        assert seen == names
        assert store.changes_since(cursor, 3).records == []

    def test_a_change_after_the_cursor_is_seen_from_that_cursor(self, store: SyncStore) -> None:
        store.apply(make_upsert("a"), origin="u")
        cursor = store.changes_since(None, 100).cursor
        store.apply(make_upsert("b"), origin="u")
        assert [r.id for r in store.changes_since(cursor, 100).records] == ["b"]

    def test_a_foreign_cursor_is_refused(self, store: SyncStore) -> None:
        try:
            store.changes_since("'; DROP TABLE visits; --", 10)
        except InvalidCursor:
            return
        raise AssertionError("a cursor this store never issued was accepted")
