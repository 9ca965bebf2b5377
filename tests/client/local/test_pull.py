"""Pulled pages (offline_client/local/pull.py)."""

from __future__ import annotations

from sync.protocol import VISITS
from tests.client.conftest import make_visit


def test_a_pulled_record_replaces_the_local_copy_when_nothing_is_pending(store, record_id):
    store.apply_pulled(
        [
            {
                "collection": VISITS,
                "id": record_id,
                "version": 3,
                "deleted": False,
                "data": make_visit(patients=30),
            }
        ],
        "17",
    )
    assert store.get(VISITS, record_id).version == 3
    assert store.get(VISITS, record_id).data["patients"] == 30
    assert store.cursor == "17"


def test_a_pulled_record_with_a_pending_local_change_keeps_both(store, record_id):
    store.apply_pulled(
        [
            {
                "collection": VISITS,
                "id": record_id,
                "version": 1,
                "deleted": False,
                "data": make_visit(patients=1),
            }
        ],
        "1",
    )
    store.save(VISITS, record_id, make_visit(patients=2))
    store.apply_pulled(
        [
            {
                "collection": VISITS,
                "id": record_id,
                "version": 2,
                "deleted": False,
                "data": make_visit(patients=20),
            }
        ],
        "2",
    )
    assert store.get(VISITS, record_id).data["patients"] == 2
    assert store.theirs(VISITS, record_id)["data"]["patients"] == 20
    assert store.outbox()[0].change.base_version == 1
