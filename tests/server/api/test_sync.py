"""Push and pull over real HTTP, on a real SQLite file and on PostgreSQL."""

from __future__ import annotations

import gzip as gz
import json
import uuid
from typing import Any

import pytest

from sync.protocol import DEFAULT_MAX_BATCH_CHANGES
from tests.builders import (
    DROP,
    OTHER_VILLAGE,
    VILLAGE_A1,
    VILLAGE_A2,
    make_change,
    visit_data,
)


def visits_of(changes: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {c["id"]: c for c in changes if c["collection"] == "visits"}


def test_a_new_visit_is_accepted_and_pulled_back(api: Any) -> None:
    d1 = api("d1")
    change = make_change()
    answer = d1.push(change)
    assert answer["results"] == [
        {
            "collection": "visits",
            "id": change["id"],
            "change_id": change["change_id"],
            "status": "accepted",
            "version": 1,
        }
    ]
    pulled, _ = d1.pull_all()
    record = visits_of(pulled)[change["id"]]
    assert record["version"] == 1 and record["deleted"] is False
    assert record["data"]["patients"] == 9
    assert record["meta"]["device_id"] == "dev-d1"


def test_resending_the_same_batch_changes_nothing_and_gets_the_same_answer(api: Any) -> None:
    d1 = api("d1")
    changes = [make_change(), make_change(visit_data(patients=3))]
    batch_id = uuid.uuid4().hex
    first = d1.push(*changes, batch_id=batch_id)
    _, cursor = d1.pull_all()
    second = d1.push(*changes, batch_id=batch_id)
    assert second["results"] == first["results"]
    again, _ = d1.pull_all(cursor)
    assert again == [], "a replayed batch must not create new versions"


def test_the_same_record_with_a_new_change_id_and_the_same_data_is_a_duplicate(api: Any) -> None:
    d1 = api("d1")
    change = make_change()
    d1.push(change)
    resend = dict(change, change_id=uuid.uuid4().hex, base_version=1)
    answer = d1.push(resend)
    assert answer["results"][0]["status"] == "duplicate"
    assert answer["results"][0]["version"] == 1


def test_gzip_bodies_are_accepted(api: Any) -> None:
    d1 = api("d1")
    answer = d1.push(*(make_change() for _ in range(50)), gzip=True)
    assert [r["status"] for r in answer["results"]] == ["accepted"] * 50


def test_an_edit_on_the_current_version_is_accepted(api: Any) -> None:
    d1 = api("d1")
    change = make_change()
    d1.push(change)
    edit = make_change(visit_data(patients=15), record_id=change["id"], base_version=1)
    assert d1.push(edit)["results"][0] == {
        "collection": "visits",
        "id": change["id"],
        "change_id": edit["change_id"],
        "status": "accepted",
        "version": 2,
    }


BAD_RECORDS = [
    ("check_out before check_in", {"check_out": "2026-03-10T07:00:00+08:00"}, "data.check_out"),
    ("a 30-hour visit", {"check_out": "2026-03-11T14:00:00+08:00"}, "data.check_out"),
    (
        "a visit dated next year",
        {"check_in": "2027-03-10T08:00:00+08:00", "check_out": "2027-03-10T12:00:00+08:00"},
        "data.check_in",
    ),
    ("negative patients", {"patients": -1}, "data.patients"),
    ("absurd patients", {"patients": 10**7}, "data.patients"),
    ("patients as a string", {"patients": "9"}, "data.patients"),
    ("a missing place", {"place": DROP}, "data.place"),
    ("an unknown place", {"place": "999999999999"}, "data.place"),
    ("a place in another county", {"place": OTHER_VILLAGE}, "data.place"),
    ("an unknown assignment", {"assignment": "A404"}, "data.assignment"),
    ("another doctor's assignment", {"assignment": "A2"}, "data.assignment"),
    ("another doctor's id", {"doctor": "D2", "assignment": DROP}, "data.doctor"),
    ("a time without offset", {"check_in": "2026-03-10T08:00:00"}, "data.check_in"),
    ("a NUL byte in notes", {"notes": "ok\x00no"}, "data.notes"),
    ("a 1 MB note", {"notes": "长" * 1_000_000}, "data.notes"),
    ("an unknown kind", {"kind": "holiday"}, "data.kind"),
    ("a latitude off the globe", {"lat": 123.0}, "data.lat"),
]


@pytest.mark.parametrize(
    ("why", "overrides", "field"), BAD_RECORDS, ids=[b[0] for b in BAD_RECORDS]
)
def test_each_bad_record_is_rejected_alone_with_the_field_named(
    api: Any, why: str, overrides: dict[str, Any], field: str
) -> None:
    d1 = api("d1")
    good_before, good_after = make_change(), make_change()
    bad = make_change(visit_data(**overrides))
    answer = d1.push(good_before, bad, good_after)
    statuses = [r["status"] for r in answer["results"]]
    assert statuses == ["accepted", "rejected", "accepted"], why
    assert field in answer["results"][1]["errors"], answer["results"][1]
    pulled = visits_of(d1.pull_all()[0])
    assert set(pulled) == {good_before["id"], good_after["id"]}


def test_the_same_record_twice_in_one_batch_rejects_the_second(api: Any) -> None:
    d1 = api("d1")
    first = make_change()
    second = make_change(visit_data(patients=1), record_id=first["id"])
    answer = d1.push(first, second)
    assert [r["status"] for r in answer["results"]] == ["accepted", "rejected"]
    assert answer["results"][1]["code"] == "duplicate_in_batch"


def test_malformed_change_records_are_rejected_alone(api: Any) -> None:
    d1 = api("d1")
    good = make_change()
    answer = d1.push(
        "not an object",
        {"collection": "secrets", "id": "x", "op": "upsert", "change_id": "c", "data": {}},
        good,
        {
            "collection": "visits",
            "id": "bad id with spaces",
            "op": "upsert",
            "change_id": "c2",
            "data": visit_data(),
        },
    )
    assert [r["status"] for r in answer["results"]] == [
        "rejected",
        "rejected",
        "accepted",
        "rejected",
    ]
    assert answer["results"][1]["code"] == "unknown_collection"
    assert "id" in answer["results"][3]["errors"]


def test_a_stale_edit_is_a_conflict_that_keeps_both_versions(api: Any) -> None:
    d1 = api("d1")
    change = make_change()
    d1.push(change)
    tablet = make_change(visit_data(patients=20), record_id=change["id"], base_version=1)
    pc = make_change(visit_data(patients=30), record_id=change["id"], base_version=1)
    assert d1.push(tablet)["results"][0]["status"] == "accepted"
    result = d1.push(pc)["results"][0]
    assert result["status"] == "conflict"
    assert result["current"]["data"]["patients"] == 20, "the stored version wins"
    conflicts = d1.get("/conflicts").json()["items"]
    assert [c["data"]["incoming_data"]["patients"] for c in conflicts] == [30]
    record = d1.get(f"/visits/{change['id']}").json()
    assert record["version"] == 2 and record["data"]["patients"] == 20


def test_the_same_id_with_other_data_from_a_stale_device_is_a_conflict(api: Any) -> None:
    d1 = api("d1")
    record_id = uuid.uuid4().hex
    d1.push(make_change(record_id=record_id))
    stale = make_change(visit_data(patients=99), record_id=record_id, base_version=0)
    result = d1.push(stale)["results"][0]
    assert result["status"] == "conflict"
    assert d1.get(f"/visits/{record_id}").json()["data"]["patients"] == 9


def open_conflict(client: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """A visit stored at version 2 (patients 20), and the conflict of a stale edit of
    version 1 (patients 30): the change and the conflict's push result."""
    change = make_change()
    client.push(change)
    client.push(make_change(visit_data(patients=20), record_id=change["id"], base_version=1))
    conflict = client.push(
        make_change(visit_data(patients=30), record_id=change["id"], base_version=1)
    )["results"][0]
    assert conflict["status"] == "conflict"
    return change, conflict


def test_resolving_a_conflict_with_mine_applies_it_and_closes_the_conflict(api: Any) -> None:
    d1 = api("d1")
    change, conflict = open_conflict(d1)
    mine = make_change(
        visit_data(patients=30),
        record_id=change["id"],
        base_version=2,
        resolves=conflict["conflict_id"],
    )
    assert d1.push(mine)["results"][0]["status"] == "accepted"
    assert d1.get(f"/visits/{change['id']}").json()["data"]["patients"] == 30
    assert d1.get("/conflicts").json()["items"] == []
    resolved = d1.get("/conflicts", params={"status": "resolved"}).json()["items"]
    assert resolved[0]["data"]["resolution"] == "mine"


def test_resolving_a_conflict_with_theirs_keeps_the_server_version(api: Any) -> None:
    d1 = api("d1")
    change, conflict = open_conflict(d1)
    theirs = make_change(
        record_id=change["id"], op="resolve", base_version=2, resolves=conflict["conflict_id"]
    )
    assert d1.push(theirs)["results"][0]["status"] == "accepted"
    assert d1.get(f"/visits/{change['id']}").json()["data"]["patients"] == 20
    resolved = d1.get("/conflicts", params={"status": "resolved"}).json()["items"]
    assert resolved[0]["data"]["resolution"] == "theirs"


def test_a_delete_syncs_as_a_tombstone_and_never_resurrects(api: Any) -> None:
    d1 = api("d1")
    change = make_change()
    d1.push(change)
    delete = make_change(record_id=change["id"], op="delete", base_version=1)
    assert d1.push(delete)["results"][0]["status"] == "accepted"
    pulled = visits_of(d1.pull_all()[0])[change["id"]]
    assert pulled["deleted"] is True and pulled["version"] == 2
    # A late edit from a device that never saw the delete, and a replay of the create.
    late = make_change(visit_data(patients=50), record_id=change["id"], base_version=1)
    assert d1.push(late)["results"][0]["status"] == "conflict"
    replay = dict(change, change_id=uuid.uuid4().hex)
    assert d1.push(replay)["results"][0]["status"] == "conflict"
    assert d1.get(f"/visits/{change['id']}").status_code == 200
    assert d1.get(f"/visits/{change['id']}").json()["deleted"] is True
    assert change["id"] not in {i["id"] for i in d1.get("/visits").json()["items"]}


def test_a_delete_of_a_record_never_seen_leaves_a_tombstone(api: Any) -> None:
    d1 = api("d1")
    record_id = uuid.uuid4().hex
    assert (
        d1.push(make_change(record_id=record_id, op="delete"))["results"][0]["status"] == "accepted"
    )
    late_create = make_change(record_id=record_id)
    assert d1.push(late_create)["results"][0]["status"] == "conflict"


@pytest.mark.parametrize("skew_hours", [-7, 3, 24 * 365 * 3])
def test_a_device_clock_far_off_is_accepted_and_its_skew_recorded(
    api: Any, skew_hours: int
) -> None:
    from datetime import UTC, datetime, timedelta

    d1 = api("d1")
    sent_at = (datetime.now(UTC) + timedelta(hours=skew_hours)).isoformat()
    first, second = make_change(), make_change()
    answer = d1.push(first, sent_at=sent_at)
    assert answer["results"][0]["status"] == "accepted"
    assert abs(answer["clock_skew_s"] - skew_hours * 3600) < 120
    d1.push(second)  # from a device with a correct clock, after
    pulled = [c for c in d1.pull_all()[0] if c["collection"] == "visits"]
    assert [c["id"] for c in pulled] == [first["id"], second["id"]], (
        "server order, not device clocks"
    )
    assert abs(pulled[0]["meta"]["clock_skew_s"] - skew_hours * 3600) < 120


def test_pull_pages_follow_the_cursor_without_gaps_or_repeats(api: Any) -> None:
    d1 = api("d1")
    ids = [c["id"] for c in (make_change() for _ in range(25)) if d1.push(c)]
    pulled, cursor = d1.pull_all(limit=7)
    got = [c["id"] for c in pulled if c["collection"] == "visits"]
    assert got == ids
    assert d1.pull_all(cursor)[0] == []


def test_a_doctor_pulls_places_and_their_own_assignments(api: Any) -> None:
    pulled, _ = api("d1").pull_all()
    places = {c["id"] for c in pulled if c["collection"] == "places"}
    assignments = {c["id"] for c in pulled if c["collection"] == "assignments"}
    assert VILLAGE_A1 in places and VILLAGE_A2 in places and OTHER_VILLAGE not in places
    assert assignments == {"A1"}


def test_a_batch_over_the_change_limit_gets_413_naming_the_limit(api: Any) -> None:
    d1 = api("d1")
    limit = DEFAULT_MAX_BATCH_CHANGES
    change = make_change()
    body = {"device_id": "t", "batch_id": "b", "changes": [change] * (limit + 1)}
    answer = d1.push_raw(body)
    assert answer.status_code == 413
    assert answer.json()["error"]["details"]["limit_changes"] == limit
    assert str(limit) in answer.json()["error"]["message"]


def test_a_gzip_bomb_is_refused_with_413(api: Any) -> None:
    d1 = api("d1")
    bomb = gz.compress(b"[" + b" " * (64 * 1024 * 1024) + b"]")
    answer = d1.http.post(
        d1.url("/sync/push"),
        data=bomb,
        timeout=60,
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert answer.status_code == 413
    assert answer.json()["error"]["code"] == "body_too_large"


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        (b"{not json", "application/json", 400, "invalid_json"),
        (json.dumps({"changes": []}).encode(), "text/plain", 415, "unsupported_media_type"),
        (json.dumps([1, 2]).encode(), "application/json", 400, "invalid_request"),
        (
            json.dumps({"device_id": "t", "batch_id": "b", "changes": "x"}).encode(),
            "application/json",
            400,
            "invalid_request",
        ),
        (b"\xff\xfe", "application/json", 400, "invalid_json"),
        (
            gz.compress(b'{"device_id":"t","batch_id":"b","changes":[]}')[:-9],
            "application/json+gz",
            415,
            "unsupported_media_type",
        ),
    ],
)
def test_a_broken_request_gets_a_4xx_envelope(
    api: Any, body: bytes, content_type: str, status: int, code: str
) -> None:
    d1 = api("d1")
    answer = d1.http.post(
        d1.url("/sync/push"), data=body, headers={"Content-Type": content_type}, timeout=30
    )
    assert answer.status_code == status, answer.text
    assert answer.json()["error"]["code"] == code


def test_a_truncated_gzip_body_is_a_clear_400(api: Any) -> None:
    d1 = api("d1")
    body = gz.compress(b'{"device_id":"t","batch_id":"b","changes":[]}')[:-9]
    answer = d1.http.post(
        d1.url("/sync/push"),
        data=body,
        timeout=30,
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert answer.status_code == 400
    assert "gzip" in answer.json()["error"]["message"]


def test_a_reviewer_correction_reaches_the_doctor_on_pull(api: Any) -> None:
    d1, reviewer = api("d1"), api("rev_a")
    change = make_change()
    d1.push(change)
    _, cursor = d1.pull_all()
    fixed = reviewer.put(
        f"/visits/{change['id']}",
        {"base_version": 1, "data": visit_data(patients=7, place=VILLAGE_A2)},
    )
    assert fixed.status_code == 200, fixed.text
    assert fixed.json()["version"] == 2 and fixed.json()["meta"]["updated_by"] == "rev_a"
    pulled = visits_of(d1.pull_all(cursor)[0])
    assert pulled[change["id"]]["data"]["patients"] == 7
    stale = reviewer.put(f"/visits/{change['id']}", {"base_version": 1, "data": visit_data()})
    assert stale.status_code == 409
    assert stale.json()["error"]["details"]["current"]["version"] == 2


@pytest.mark.parametrize(
    "path", ["/visits?doctor=a%00b", "/flags?rule=%00", "/visits/a%00b", "/sync/pull?cursor=%00"]
)
def test_a_nul_character_in_the_url_is_a_400_not_a_crash(api: Any, path: str) -> None:
    answer = api("d1").get(path)
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "invalid_request"
