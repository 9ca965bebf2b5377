"""Visits a reviewer sent back for correction, as the device keeps and shows them: open from
the pull that brings them until the doctor edits (or deletes) the visit, or the visit
changes elsewhere, or the server withdraws the send-back."""

from __future__ import annotations

from typing import Any

from offline_client.local import open_store
from sync.protocol import REVIEWS, VISITS
from tests.client.conftest import accepted, make_visit

SENT_AT = "2026-03-12T02:30:00+00:00"


def pulled_visit(record_id: str, version: int = 1, **overrides: Any) -> dict[str, Any]:
    return {
        "collection": VISITS,
        "id": record_id,
        "version": version,
        "deleted": False,
        "data": make_visit(**overrides),
    }


def pulled_send_back(
    review_id: str, visit_id: str, *, visit_version: int = 1, comment: str = "患者人数请核对"
) -> dict[str, Any]:
    return {
        "collection": REVIEWS,
        "id": review_id,
        "version": 1,
        "deleted": False,
        "data": {
            "kind": "send_back",
            "visit": visit_id,
            "visit_version": visit_version,
            "doctor": "D0001",
            "comment": comment,
            "by": "rev_a",
            "at": SENT_AT,
        },
    }


def synced_visit(store, record_id: str) -> None:
    """A visit recorded on the device and accepted by the server at version 1."""
    store.save(VISITS, record_id, make_visit())
    [change] = store.take_batch(500)
    store.store_answers([accepted(change)], [change])


def test_a_pulled_send_back_is_shown_with_the_visits_date_place_comment_and_reviewer(
    store, record_id
):
    synced_visit(store, record_id)
    store.apply_pulled([pulled_send_back("r1", record_id)], "7")
    [shown] = store.send_backs()
    assert shown.to_json() == {
        "id": "r1",
        "visit": record_id,
        "visit_version": 1,
        "date": "2026-03-09",
        "place": "450123101201",
        "comment": "患者人数请核对",
        "by": "rev_a",
        "at": SENT_AT,
    }
    assert store.send_backs(visit_id=record_id) == [shown]
    assert store.send_backs(visit_id="another") == []


def test_editing_the_visit_clears_its_send_back_and_only_its_own(store, record_id):
    synced_visit(store, record_id)
    synced_visit(store, "other")
    store.apply_pulled([pulled_send_back("r1", record_id), pulled_send_back("r2", "other")], "7")
    store.save(VISITS, record_id, make_visit(patients=12))
    assert [s.id for s in store.send_backs()] == ["r2"]


def test_deleting_the_visit_clears_its_send_back(store, record_id):
    synced_visit(store, record_id)
    store.apply_pulled([pulled_send_back("r1", record_id)], "7")
    store.delete(VISITS, record_id)
    assert store.send_backs() == []


def test_a_cleared_send_back_pulled_again_stays_cleared(store, record_id):
    synced_visit(store, record_id)
    store.apply_pulled([pulled_send_back("r1", record_id)], "7")
    store.save(VISITS, record_id, make_visit(patients=12))
    # A pull from the start (the server no longer knew the cursor) brings it again.
    store.apply_pulled([pulled_send_back("r1", record_id)], "9")
    assert store.send_backs() == []


def test_a_newer_version_of_the_visit_pulled_from_elsewhere_clears_the_send_back(store, record_id):
    synced_visit(store, record_id)
    store.apply_pulled([pulled_send_back("r1", record_id)], "7")
    store.apply_pulled([pulled_visit(record_id, version=1)], "8")
    assert len(store.send_backs()) == 1, "the version that was sent back changes nothing"
    # The doctor corrected it on another tablet.
    store.apply_pulled([pulled_visit(record_id, version=2, patients=12)], "9")
    assert store.send_backs() == []


def test_an_edit_pushed_before_the_send_back_arrived_does_not_hide_it(store, record_id):
    synced_visit(store, record_id)
    # Edited offline while the reviewer, who saw version 1, sent it back; the push goes
    # first (version 2), then the pull brings the send-back and the device's own version 2.
    store.save(VISITS, record_id, make_visit(patients=12))
    [change] = store.take_batch(500)
    store.store_answers([accepted(change, version=2)], [change])
    store.apply_pulled(
        [pulled_send_back("r1", record_id), pulled_visit(record_id, version=2, patients=12)],
        "9",
    )
    [shown] = store.send_backs()
    assert shown.comment == "患者人数请核对", "the doctor has not seen the comment yet"


def test_a_send_back_withdrawn_on_the_server_is_cleared(store, record_id):
    synced_visit(store, record_id)
    store.apply_pulled([pulled_send_back("r1", record_id)], "7")
    withdrawn = {**pulled_send_back("r1", record_id), "version": 2, "deleted": True}
    store.apply_pulled([withdrawn], "8")
    assert store.send_backs() == []


def test_a_send_back_of_a_visit_not_on_the_device_is_shown_without_date_and_place(store):
    store.apply_pulled([pulled_send_back("r1", "elsewhere")], "7")
    [shown] = store.send_backs()
    assert (shown.visit_id, shown.date, shown.place) == ("elsewhere", None, None)


def test_reviews_records_of_another_kind_are_kept_but_not_shown(store):
    note = pulled_send_back("r1", "v1")
    note["data"]["kind"] = "note"
    store.apply_pulled([note], "7")
    assert store.get(REVIEWS, "r1") is not None
    assert store.send_backs() == []


def test_send_backs_survive_reopening_the_store(tmp_path, record_id):
    path = tmp_path / "device.sqlite"
    first = open_store(path)
    synced_visit(first, record_id)
    first.apply_pulled([pulled_send_back("r1", record_id)], "7")
    first.close()
    again = open_store(path)
    try:
        assert [s.id for s in again.send_backs()] == ["r1"]
    finally:
        again.close()


def test_send_backs_pulled_by_an_older_client_are_shown_after_the_upgrade(tmp_path, record_id):
    path = tmp_path / "device.sqlite"
    old = open_store(path)
    synced_visit(old, record_id)
    old.apply_pulled([pulled_send_back("r1", record_id)], "7")
    old.db["send_backs"].drop()  # what a device of the previous version holds
    old.close()
    upgraded = open_store(path)
    try:
        assert [s.id for s in upgraded.send_backs()] == ["r1"]
    finally:
        upgraded.close()
