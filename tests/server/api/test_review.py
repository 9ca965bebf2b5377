"""The township review workflow (/api/v1/review) over real HTTP, on SQLite and PostgreSQL:
approving a doctor-week and its reopening by a later push, sending a visit back, excusing a
flag, deciding leave, the append-only audit log, and scope."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from tests.builders import VILLAGE_A1, VILLAGE_A2, make_change, posting_day, visit_data

AS_OF = "2026-01-11"  # the Sunday that ends 2026-W02, the first week of D2's posting
POSTING_WEEK_KEY = "posting.days_per_week|assignment|A2|2026-W02"
WEEK = "2026-W11"  # visit_data's default check-in, 2026-03-10, is in it


@pytest.fixture
def app_overrides() -> dict[str, Any]:
    return {"ZHUXUN_RULES_AS_OF": AS_OF}


def post(client: Any, path: str, body: Any = None) -> Any:
    return client.http.post(client.url(f"/review{path}"), json=body, timeout=30)


def audit(client: Any, **params: Any) -> list[dict[str, Any]]:
    answer = client.get("/review/audit", params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()["items"]


def test_an_approved_week_is_reopened_by_a_later_device_push_with_the_reason(api: Any) -> None:
    d1, rev_a = api("d1"), api("rev_a")
    visit = make_change()
    d1.push(visit)
    approved = post(rev_a, f"/weeks/D1/{WEEK}/approve", {"reason": "checked"})
    assert approved.status_code == 200, approved.text
    assert approved.json()["state"] == "approved"
    assert approved.json()["visits"] == {visit["id"]: 1}

    d1.push(make_change(visit_data(patients=12), record_id=visit["id"], base_version=1))
    state = rev_a.get(f"/review/weeks/D1/{WEEK}").json()["review"]
    assert state["state"] == "reopened"
    assert f"visit {visit['id']} changed by device dev-d1" in state["reason"]
    assert "after approval" in state["reason"]
    reopened = audit(rev_a, subject_type="week", subject_id=f"D1/{WEEK}")[-1]
    assert reopened["action"] == "week.reopened" and reopened["who"] == "d1"
    assert reopened["before"]["state"] == "approved" and reopened["after"]["state"] == "reopened"


def test_a_visit_never_commits_without_its_weeks_reopening(api: Any, monkeypatch: Any) -> None:
    """The reopening runs inside the push's own transaction: if it fails, the push fails
    whole (the device resends it) rather than leave a changed week marked approved."""
    import server.review.workflow

    d1, rev_a = api("d1"), api("rev_a")
    visit = make_change()
    d1.push(visit)
    assert post(rev_a, f"/weeks/D1/{WEEK}/approve").status_code == 200

    def broken_audit(*_: Any, **__: Any) -> None:
        raise RuntimeError("the audit log is unavailable")

    edit = make_change(visit_data(patients=12), record_id=visit["id"], base_version=1)
    body = {"device_id": d1.device_id, "batch_id": "b-reopen", "changes": [edit]}
    monkeypatch.setattr(server.review.workflow, "audit", broken_audit)
    failed = d1.push_raw(body)
    assert failed.status_code >= 500
    assert rev_a.get(f"/review/weeks/D1/{WEEK}").json()["review"]["state"] == "approved"
    assert d1.get(f"/visits/{visit['id']}").json()["version"] == 1, "the edit did not commit"

    monkeypatch.undo()
    resent = d1.push_raw(body)
    assert resent.status_code == 200, resent.text
    assert d1.get(f"/visits/{visit['id']}").json()["version"] == 2
    assert rev_a.get(f"/review/weeks/D1/{WEEK}").json()["review"]["state"] == "reopened"


def test_moving_an_approved_visit_to_another_week_reopens_the_week_it_left(api: Any) -> None:
    d1, rev_a = api("d1"), api("rev_a")
    visit = make_change()
    d1.push(visit)
    assert post(rev_a, f"/weeks/D1/{WEEK}/approve").status_code == 200
    moved = visit_data(
        check_in="2026-03-17T08:00:00+08:00",
        check_out="2026-03-17T12:00:00+08:00",
        recorded_at="2026-03-17T12:05:00+08:00",
    )
    d1.push(make_change(moved, record_id=visit["id"], base_version=1))
    assert rev_a.get(f"/review/weeks/D1/{WEEK}").json()["review"]["state"] == "reopened"


def test_a_push_outside_approved_weeks_leaves_them_approved(api: Any) -> None:
    d1, rev_a = api("d1"), api("rev_a")
    d1.push(make_change())
    assert post(rev_a, f"/weeks/D1/{WEEK}/approve").status_code == 200
    other = visit_data(
        check_in="2026-03-24T08:00:00+08:00",
        check_out="2026-03-24T12:00:00+08:00",
        recorded_at="2026-03-24T12:05:00+08:00",
    )
    d1.push(make_change(other))
    assert rev_a.get(f"/review/weeks/D1/{WEEK}").json()["review"]["state"] == "approved"


def test_the_week_calendar_shows_days_places_patients_flags_and_review_state(api: Any) -> None:
    d1, admin = api("d1"), api("admin")
    d1.push(
        make_change(),
        make_change(
            visit_data(
                place=VILLAGE_A2,
                check_in="2026-03-12T14:00:00+08:00",
                check_out="2026-03-12T17:00:00+08:00",
                recorded_at="2026-03-12T17:05:00+08:00",
                patients=4,
            )
        ),
    )
    week = admin.get(f"/review/weeks/D1/{WEEK}")
    assert week.status_code == 200, week.text
    body = week.json()
    assert (body["start"], body["end"]) == ("2026-03-09", "2026-03-15")
    assert [len(d["sessions"]) for d in body["days"]] == [0, 1, 0, 1, 0, 0, 0]
    assert body["patients"] == 13 and body["sessions"] == 2
    assert {(p["place"], p["patients"]) for p in body["places"]} == {
        (VILLAGE_A1, 9),
        (VILLAGE_A2, 4),
    }
    assert body["days"][1]["sessions"][0]["place_name"] == "石桥村"
    assert body["review"] == {"state": "unreviewed"}
    assert all(f["state"] == "open" for f in body["flags"])


def test_a_visit_sent_back_reaches_the_doctors_pull(api: Any) -> None:
    d1, rev_a = api("d1"), api("rev_a")
    visit = make_change()
    d1.push(visit)
    _, cursor = d1.pull_all()
    sent = post(rev_a, f"/visits/{visit['id']}/send-back", {"comment": "患者人数请核对"})
    assert sent.status_code == 200, sent.text
    pulled = [c for c in d1.pull_all(cursor)[0] if c["collection"] == "reviews"]
    assert len(pulled) == 1
    assert pulled[0]["data"]["visit"] == visit["id"]
    assert pulled[0]["data"]["comment"] == "患者人数请核对"
    assert pulled[0]["data"]["by"] == "rev_a"
    assert not [c for c in api("d2").pull_all()[0] if c["collection"] == "reviews"]

    import sqlite_utils

    from offline_client.local import LocalStore

    device = LocalStore(sqlite_utils.Database(memory=True))
    device.apply_pulled(pulled, "c")
    kept = device.get("reviews", pulled[0]["id"])
    assert kept is not None and kept.data["comment"] == "患者人数请核对", "the device keeps it"


def test_excusing_a_flag_records_its_history_and_syncs_the_new_state(api: Any, app: Any) -> None:
    d2, rev_a = api("d2"), api("rev_a")
    d2.push(*(make_change(posting_day(day)) for day in (5, 6, 7, 8)))
    _, cursor = d2.pull_all()
    excused = post(rev_a, f"/flags/{POSTING_WEEK_KEY}/excuse", {"reason": "村里停电一天"})
    assert excused.status_code == 200, excused.text
    assert excused.json()["state"] == "excused"
    flags = [c for c in d2.pull_all(cursor)[0] if c["collection"] == "flags"]
    assert [(c["id"], c["data"]["state"]) for c in flags] == [(POSTING_WEEK_KEY, "excused")]

    again = post(rev_a, f"/flags/{POSTING_WEEK_KEY}/excuse", {"reason": "again"})
    assert again.status_code == 409 and again.json()["error"]["code"] == "wrong_state"

    from sqlalchemy import select

    from server.extensions import db
    from server.models import FlagHistory

    with app.app_context():
        changes = list(
            db.session.scalars(
                select(FlagHistory.change)
                .where(FlagHistory.key == POSTING_WEEK_KEY)
                .order_by(FlagHistory.id)
            )
        )
    assert changes == ["opened", "excused"]


def test_approving_leave_syncs_a_new_version_to_the_doctor(api: Any) -> None:
    d1, rev_a = api("d1"), api("rev_a")
    leave = make_change(
        {"doctor": "D1", "start": "2026-03-16", "end": "2026-03-17", "reason": "家事"},
        collection="leave",
    )
    d1.push(leave)
    _, cursor = d1.pull_all()
    approved = post(rev_a, f"/leave/{leave['id']}/approve", {"reason": "同意"})
    assert approved.status_code == 200, approved.text
    assert approved.json()["version"] == 2 and approved.json()["data"]["status"] == "approved"
    pulled = [c for c in d1.pull_all(cursor)[0] if c["collection"] == "leave"]
    assert [(c["id"], c["version"], c["data"]["status"]) for c in pulled] == [
        (leave["id"], 2, "approved")
    ]
    assert pulled[0]["meta"]["updated_by"] == "rev_a"
    assert post(rev_a, f"/leave/{leave['id']}/approve", {}).status_code == 409
    refused = post(rev_a, f"/leave/{leave['id']}/refuse", {})
    assert refused.status_code == 400, "a refusal needs its reason"
    assert post(rev_a, f"/leave/{leave['id']}/refuse", {"reason": "人手不足"}).json()["data"][
        "status"
    ] == ("refused")
    actions = [e["action"] for e in audit(rev_a, subject_type="leave")]
    assert actions == ["leave.approved", "leave.refused"]


def test_the_audit_log_records_who_when_what_why_before_and_after(api: Any) -> None:
    d1, rev_a = api("d1"), api("rev_a")
    d1.push(make_change())
    post(rev_a, f"/weeks/D1/{WEEK}/approve", {"reason": "核对无误"})
    [entry] = audit(rev_a)
    assert entry["who"] == "rev_a"
    assert datetime.fromisoformat(entry["at"])
    assert entry["action"] == "week.approved"
    assert entry["subject"] == {"type": "week", "id": f"D1/{WEEK}"}
    assert entry["reason"] == "核对无误"
    assert entry["before"] == {"state": "unreviewed"}
    assert entry["after"]["state"] == "approved" and entry["after"]["by"] == "rev_a"
    assert audit(api("admin")) == [entry]
    assert audit(api("rev_b")) == []
    assert audit(api("admin_other")) == []


def test_the_audit_log_has_no_write_endpoint(api: Any) -> None:
    admin = api("admin")
    for method, path in [(m, p) for m in ("put", "delete", "post", "patch") for p in ("", "/1")]:
        answer = getattr(admin.http, method)(admin.url(f"/review/audit{path}"), json={}, timeout=30)
        assert answer.status_code == 405, method
        assert "error" in answer.json()


def test_a_reviewer_of_another_township_cannot_act_on_township_a(api: Any) -> None:
    d1, d2, rev_b = api("d1"), api("d2"), api("rev_b")
    visit = make_change()
    leave = make_change(
        {"doctor": "D1", "start": "2026-03-16", "end": "2026-03-17"}, collection="leave"
    )
    d1.push(visit, leave)
    d2.push(*(make_change(posting_day(day)) for day in (5, 6, 7, 8)))
    for path, body in (
        (f"/weeks/D1/{WEEK}/approve", {}),
        (f"/visits/{visit['id']}/send-back", {"comment": "x"}),
        (f"/flags/{POSTING_WEEK_KEY}/excuse", {"reason": "x"}),
        (f"/leave/{leave['id']}/approve", {"reason": "x"}),
    ):
        for outsider in (rev_b, api("admin_other")):
            answer = post(outsider, path, body)
            assert answer.status_code == 404, (path, answer.text)
            assert answer.json()["error"]["code"] == "not_found"
        assert post(d1, path, body).status_code == 403, "doctors do not review"
    assert rev_b.get(f"/review/weeks/D1/{WEEK}").status_code == 404
    assert d1.get(f"/review/weeks/D1/{WEEK}").status_code == 403
    assert d1.get("/review/audit").status_code == 403
    assert audit(api("rev_a")) == []


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/weeks/D1/2026-11/approve", {}),
        ("/weeks/D1/2026-W60/approve", {}),
        ("/weeks/D1/2026-W11/approve", {"reason": 5}),
        ("/weeks/D1/2026-W11/approve", ["not", "an", "object"]),
        ("/visits/{visit}/send-back", {}),
        ("/visits/{visit}/send-back", {"comment": "   "}),
        ("/visits/{visit}/send-back", {"comment": "x" * 1001}),
        ("/flags/whatever/excuse", {"reason": ""}),
        ("/leave/whatever/refuse", {"reason": ["no"]}),
    ],
)
def test_bad_input_answers_400_in_the_one_envelope(api: Any, path: str, body: Any) -> None:
    d1, rev_a = api("d1"), api("rev_a")
    visit = make_change()
    d1.push(visit)
    answer = post(rev_a, path.format(visit=visit["id"]), body)
    assert answer.status_code == 400, answer.text
    assert set(answer.json()["error"]) >= {"code", "message"}


def test_a_body_that_is_not_json_answers_in_the_envelope(api: Any) -> None:
    rev_a = api("rev_a")
    answer = rev_a.http.post(
        rev_a.url("/review/visits/x/send-back"),
        data="comment",
        headers={"Content-Type": "text/plain"},
        timeout=30,
    )
    assert answer.status_code == 415 and answer.json()["error"]["code"]
    answer = rev_a.http.post(
        rev_a.url("/review/visits/x/send-back"),
        data="{not json",
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "invalid_json"
