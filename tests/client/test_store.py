"""The device store and its outbox, without a server."""

from __future__ import annotations

import sqlite3

import pytest

from offline_client.store import IN_FLIGHT, PENDING, REJECTED, SYNCED, open_store
from sync.clock import HLCTimestamp
from sync.protocol import VISITS, Op
from tests.client.conftest import accepted, make_visit, rejected


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


def test_a_conflict_answer_keeps_both_versions_and_mirrors_the_server(store, record_id):
    store.save(VISITS, record_id, make_visit(patients=2))
    [sent] = store.take_batch(500)
    answer = {
        "collection": VISITS,
        "id": record_id,
        "change_id": sent.change_id,
        "status": "conflict",
        "version": 3,
        "conflict_id": "k1",
        "code": "stale_version",
        "current": {"version": 3, "deleted": False, "data": make_visit(patients=30)},
    }
    store.store_answers([answer], [sent])
    [view] = store.conflict_views()
    assert view.conflict.incoming_data["patients"] == 2
    assert view.theirs["data"]["patients"] == 30
    assert store.get(VISITS, record_id).data["patients"] == 30


@pytest.mark.parametrize("keep", ["mine", "theirs"])
def test_resolving_a_conflict_queues_the_decision_on_the_servers_version(store, record_id, keep):
    store.save(VISITS, record_id, make_visit(patients=2))
    [sent] = store.take_batch(500)
    answer = {
        "collection": VISITS,
        "id": record_id,
        "change_id": sent.change_id,
        "status": "conflict",
        "version": 3,
        "conflict_id": "k1",
        "code": "stale_version",
        "current": {"version": 3, "deleted": False, "data": make_visit(patients=30)},
    }
    store.store_answers([answer], [sent])
    change = store.resolve("k1", keep)
    assert change.resolves == "k1"
    assert change.base_version == 3
    if keep == "mine":
        assert change.op is Op.UPSERT
        assert store.get(VISITS, record_id).data["patients"] == 2
    else:
        assert change.op is Op.RESOLVE
        assert store.get(VISITS, record_id).data["patients"] == 30
    assert store.conflicts(status="open") == []


def test_the_clock_and_the_device_id_survive_reopening(tmp_path):
    first = open_store(tmp_path / "c.sqlite")
    first.save(VISITS, "v1", make_visit())
    stamp, device = first.clock(), first.device_id
    first.close()
    again = open_store(tmp_path / "c.sqlite")
    assert again.device_id == device
    assert HLCTimestamp.decode(again.tick()) > HLCTimestamp.decode(stamp)
    again.close()


def test_the_server_clock_moves_the_device_clock_past_it(store):
    server_clock = HLCTimestamp(99_999_999_999_999, 5, "server")
    store.receive_clock(server_clock.encode())
    mine = HLCTimestamp.decode(store.tick())
    assert (mine.millis, mine.counter) > (server_clock.millis, server_clock.counter)
