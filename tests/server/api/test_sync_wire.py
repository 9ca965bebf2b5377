"""What a sync costs on the wire (issue 7): compact push answers, the HLC stamp standing for
the change id, a pull that leaves out the device's own pushes, pages bounded by bytes, and
gzip answers. Over real HTTP, on SQLite and on PostgreSQL."""

from __future__ import annotations

import gzip
import json
import uuid
from typing import Any

import pytest

from sync.protocol import H_DEVICE_ID
from tests.builders import make_change, visit_data

# Small pages by bytes, so a few visits fill one.
PULL_BYTES = 3000


@pytest.fixture
def app_overrides() -> dict[str, Any]:
    return {"ZHUXUN_MAX_PULL_BYTES": PULL_BYTES}


def visit_ids(changes: list[dict[str, Any]]) -> set[str]:
    return {c["id"] for c in changes if c["collection"] == "visits"}


def compact_body(device_id: str, *changes: dict[str, Any]) -> dict[str, Any]:
    return {
        "device_id": device_id,
        "batch_id": uuid.uuid4().hex,
        "changes": list(changes),
        "compact": True,
    }


def test_a_compact_answer_leaves_out_what_the_device_sent_and_a_resend_gets_it_again(
    api: Any,
) -> None:
    d1 = api("d1")
    stale = make_change(visit_data(patients=4))
    d1.push(stale)
    edit = make_change(visit_data(patients=5), record_id=stale["id"], base_version=0)
    body = compact_body(d1.device_id, make_change(), edit, make_change(visit_data(place="nope")))
    first = d1.push_raw(body).json()["results"]
    assert first[0] == {"status": "accepted", "version": 1}
    assert first[1]["status"] == "conflict" and first[1]["current"]["data"]["patients"] == 4
    assert first[2]["status"] == "rejected" and "data.place" in first[2]["errors"]
    assert all("id" not in r and "change_id" not in r for r in first)
    assert d1.push_raw(body).json()["results"] == first


def test_without_a_change_id_the_hlc_stands_for_it_and_a_resend_is_answered_once(
    api: Any,
) -> None:
    d1 = api("d1")
    change = make_change(hlc="001773014400000-0000000007-devd1")
    del change["change_id"]
    first = d1.push(change)["results"]
    assert first == [
        {
            "collection": "visits",
            "id": change["id"],
            "change_id": change["hlc"],
            "status": "accepted",
            "version": 1,
        }
    ]
    _, cursor = d1.pull_all()
    assert d1.push(change)["results"] == first
    assert d1.pull_all(cursor)[0] == [], "the resend must not make a new version"


def test_a_change_with_neither_change_id_nor_hlc_is_rejected_naming_the_field(api: Any) -> None:
    d1 = api("d1")
    change = make_change()
    del change["change_id"]
    [result] = d1.push(change)["results"]
    assert result["status"] == "rejected"
    assert "change_id" in result["errors"]


def test_a_pull_naming_the_device_leaves_out_what_it_pushed_but_not_what_others_did(
    api: Any,
) -> None:
    tablet = api("d1")
    mine = make_change()
    tablet.push(mine)
    phone = api("d1")
    phone.device_id = "dev-d1-phone"
    theirs = make_change()
    phone.push(theirs)

    tablet.http.headers[H_DEVICE_ID] = tablet.device_id
    pulled, cursor = tablet.pull_all()
    assert theirs["id"] in visit_ids(pulled)
    assert mine["id"] not in visit_ids(pulled)
    del tablet.http.headers[H_DEVICE_ID]
    assert mine["id"] in visit_ids(tablet.pull_all()[0]), "without the header it comes"
    assert tablet.pull_all(cursor)[0] == [], "the cursor passed the device's own record"

    # A reviewer's correction of the device's record is news to the device.
    reviewer = api("rev_a")
    fixed = reviewer.put(
        f"/visits/{mine['id']}", {"base_version": 1, "data": visit_data(patients=2)}
    )
    assert fixed.status_code == 200, fixed.text
    tablet.http.headers[H_DEVICE_ID] = tablet.device_id
    again, _ = tablet.pull_all(cursor)
    assert [c["version"] for c in again if c["id"] == mine["id"]] == [2]


def test_a_device_id_header_that_is_not_an_id_is_refused_naming_the_header(api: Any) -> None:
    d1 = api("d1")
    answer = d1.get("/sync/pull", headers={H_DEVICE_ID: "no spaces allowed"})
    assert answer.status_code == 400
    assert H_DEVICE_ID in answer.json()["error"]["errors"]


def test_a_pull_page_stops_at_its_byte_limit_and_the_pages_miss_nothing(api: Any) -> None:
    d1 = api("d1")
    pushed = [make_change(visit_data(notes="x" * 400)) for _ in range(12)]
    d1.push(*pushed)
    pages = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 5000}
        if cursor:
            params["cursor"] = cursor
        page = d1.get("/sync/pull", params=params).json()
        pages.append(page["changes"])
        cursor = page["cursor"]
        if not page["has_more"]:
            break
    assert len(pages) > 2
    for changes in pages:
        size = sum(len(json.dumps(c, ensure_ascii=False, separators=(",", ":"))) for c in changes)
        assert len(changes) == 1 or size <= PULL_BYTES
    seen = [c["id"] for changes in pages for c in changes]
    assert len(seen) == len(set(seen)), "no record twice"
    assert {c["id"] for c in pushed} <= set(seen), "no record missed"


def test_answers_are_gzipped_for_a_client_that_accepts_gzip_and_plain_otherwise(
    api: Any,
) -> None:
    d1 = api("d1")
    d1.push(*(make_change() for _ in range(10)))
    zipped = d1.http.get(
        d1.url("/sync/pull"), headers={"Accept-Encoding": "gzip"}, stream=True, timeout=30
    )
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in zipped.headers["Vary"]
    raw = zipped.raw.read(decode_content=False)
    assert int(zipped.headers["Content-Length"]) == len(raw)
    page = json.loads(gzip.decompress(raw))
    plain = d1.http.get(d1.url("/sync/pull"), headers={"Accept-Encoding": "identity"}, timeout=30)
    assert "Content-Encoding" not in plain.headers
    assert plain.json() == page
