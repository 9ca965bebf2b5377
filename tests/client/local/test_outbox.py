"""The outbox (offline_client/local/outbox.py): local edits and the changes they queue."""

from __future__ import annotations

import sqlite3

import pytest

from offline_client.local import PENDING, SYNCED
from sync.protocol import VISITS, Op
from tests.client.conftest import accepted, make_visit


def test_saving_a_visit_queues_one_upsert_on_version_zero(store, record_id):
    store.save(VISITS, record_id, make_visit())
    [entry] = store.outbox()
    assert entry.change.op is Op.UPSERT
    assert entry.change.base_version == 0
    assert entry.change.data == make_visit()
    assert store.get(VISITS, record_id).data == make_visit()


def test_edits_of_a_never_sent_record_collapse_into_one_change_keeping_its_id(store, record_id):
    store.save(VISITS, record_id, make_visit(patients=1))
    first = store.outbox()[0].change
    store.save(VISITS, record_id, make_visit(patients=2))
    store.save(VISITS, record_id, make_visit(patients=3))
    [entry] = store.outbox()
    assert entry.change.change_id == first.change_id
    assert entry.change.data["patients"] == 3


def test_an_edit_while_the_change_is_in_flight_waits_for_the_answer(store, record_id):
    store.save(VISITS, record_id, make_visit(patients=1))
    [sent] = store.take_batch(500)
    store.save(VISITS, record_id, make_visit(patients=2))
    [entry] = store.outbox()
    assert entry.in_flight
    assert entry.change == sent, "the change in flight is frozen, so a resend is identical"
    assert entry.queued["data"]["patients"] == 2

    store.store_answers([accepted(sent, version=1)], [sent])

    [follow_up] = store.outbox()
    assert not follow_up.in_flight
    assert follow_up.change.change_id != sent.change_id
    assert follow_up.change.base_version == 1
    assert follow_up.change.data["patients"] == 2


def test_a_change_in_flight_is_sent_again_unchanged_until_answered(store, record_id):
    store.save(VISITS, record_id, make_visit())
    [first] = store.take_batch(500)
    [again] = store.take_batch(500)  # the answer never arrived (the process was killed)
    assert again == first
    store.store_answers([accepted(first)], [first])
    assert store.outbox() == []
    assert store.get(VISITS, record_id).version == 1
    assert store.sync_state(VISITS, record_id) == SYNCED


def test_writing_a_visit_and_queueing_its_change_is_one_transaction(store, record_id):
    store.db.execute(
        "create trigger fail_outbox before insert on outbox begin "
        "select raise(abort, 'disk full'); end"
    )
    with pytest.raises(sqlite3.IntegrityError):
        store.save(VISITS, record_id, make_visit())
    assert store.get(VISITS, record_id) is None
    assert store.outbox() == []


def test_deleting_a_record_the_server_holds_queues_a_delete_on_its_version(store, record_id):
    store.save(VISITS, record_id, make_visit())
    [sent] = store.take_batch(500)
    store.store_answers([accepted(sent, version=4)], [sent])
    store.delete(VISITS, record_id)
    [entry] = store.outbox()
    assert entry.change.op is Op.DELETE
    assert entry.change.base_version == 4
    assert store.get(VISITS, record_id).deleted
    assert store.sync_state(VISITS, record_id) == PENDING
