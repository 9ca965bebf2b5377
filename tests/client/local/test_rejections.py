"""Rejected changes (offline_client/local/rejections.py)."""

from __future__ import annotations

from offline_client.local import IN_FLIGHT, REJECTED, SYNCED
from sync.protocol import VISITS
from tests.client.conftest import accepted, make_visit, rejected


def test_a_rejected_record_stays_visible_with_its_reason_and_leaves_the_outbox(store):
    store.save(VISITS, "bad", make_visit(place="999"))
    store.save(VISITS, "good", make_visit())
    batch = store.take_batch(500)
    bad, good = sorted(batch, key=lambda c: c.id)
    outcome = store.store_answers([rejected(bad), accepted(good)], batch)

    assert [r.record_id for r in outcome.rejected] == ["bad"]
    assert store.outbox() == [], "a rejection never blocks the outbox"
    [rejection] = store.rejections()
    assert rejection.reason == "validation_failed: data.place: unknown place"
    assert store.sync_state(VISITS, "bad") == REJECTED
    assert store.get(VISITS, "bad").data["place"] == "999"
    assert store.sync_state(VISITS, "good") == SYNCED


def test_a_rejected_record_is_sent_again_with_a_new_change_id_once_edited(store):
    store.save(VISITS, "bad", make_visit(place="999"))
    [sent] = store.take_batch(500)
    store.store_answers([rejected(sent)], [sent])
    assert store.take_batch(500) == []

    store.save(VISITS, "bad", make_visit())

    assert store.rejections() == []
    [again] = store.take_batch(500)
    assert again.change_id != sent.change_id
    assert again.data["place"] == "450123101201"
    assert store.sync_state(VISITS, "bad") == IN_FLIGHT


def test_deleting_a_rejected_never_accepted_record_forgets_it(store):
    store.save(VISITS, "bad", make_visit(place="999"))
    [sent] = store.take_batch(500)
    store.store_answers([rejected(sent)], [sent])
    store.delete(VISITS, "bad")
    assert store.rejections() == []
    assert store.outbox() == []
    assert store.get(VISITS, "bad") is None
