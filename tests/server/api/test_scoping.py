"""The scoping matrix: who can read and write whose records, over real HTTP."""

from __future__ import annotations

from typing import Any

import pytest

from tests.builders import VILLAGE_A1, VILLAGE_B1, make_change, visit_data

# One visit of each doctor in county 450999: D1 and D2 in township A, D3 in township B.
VISITS = {
    "D1": dict(doctor="D1", assignment="A1", place=VILLAGE_A1),
    "D2": dict(doctor="D2", assignment="A2", place=VILLAGE_A1, kind="posting"),
    "D3": dict(doctor="D3", assignment="A3", place=VILLAGE_B1),
}

# Who sees which doctor's visit (reads: pull, list, get).
SEES = {
    "d1": {"D1"},
    "d2": {"D2"},
    "d3": {"D3"},
    "d9": set(),
    "rev_a": {"D1", "D2"},
    "rev_b": {"D3"},
    "admin": {"D1", "D2", "D3"},
    "admin_other": set(),
}


@pytest.fixture
def visit_ids(api: Any) -> dict[str, str]:
    ids = {}
    for doctor, fields in VISITS.items():
        change = make_change(visit_data(**fields))
        result = api(f"d{doctor[1:]}").push(change)["results"][0]
        assert result["status"] == "accepted", result
        ids[doctor] = change["id"]
    return ids


@pytest.mark.parametrize("username", sorted(SEES))
def test_each_role_reads_exactly_its_scope(
    api: Any, visit_ids: dict[str, str], username: str
) -> None:
    client = api(username)
    expected = {visit_ids[d] for d in SEES[username]}
    pulled = {c["id"] for c in client.pull_all()[0] if c["collection"] == "visits"}
    listed = {i["id"] for i in client.get("/visits").json()["items"]}
    assert pulled == expected
    assert listed == expected
    for doctor, record_id in visit_ids.items():
        status = client.get(f"/visits/{record_id}").status_code
        assert status == (200 if doctor in SEES[username] else 404), (username, doctor)


def test_a_doctor_cannot_overwrite_or_delete_another_doctors_visit(
    api: Any, visit_ids: dict[str, str]
) -> None:
    d1 = api("d1")
    hijack = make_change(visit_data(), record_id=visit_ids["D2"], base_version=1)
    delete = make_change(record_id=visit_ids["D2"], op="delete", base_version=1)
    results = d1.push(hijack)["results"] + d1.push(delete)["results"]
    assert [r["status"] for r in results] == ["rejected", "rejected"]
    assert {r["code"] for r in results} == {"forbidden_record"}
    d2_view = api("d2").get(f"/visits/{visit_ids['D2']}").json()
    assert d2_view["version"] == 1 and d2_view["deleted"] is False


def test_a_doctor_cannot_push_a_visit_in_another_doctors_name(api: Any) -> None:
    result = api("d1").push(make_change(visit_data(doctor="D2", assignment="A2")))["results"][0]
    assert result["status"] == "rejected"
    assert "data.doctor" in result["errors"]


def test_a_reviewer_cannot_correct_a_visit_outside_their_township(
    api: Any, visit_ids: dict[str, str]
) -> None:
    answer = api("rev_b").put(
        f"/visits/{visit_ids['D1']}", {"base_version": 1, "data": visit_data()}
    )
    assert answer.status_code == 404


def test_a_doctor_cannot_use_the_reviewer_correction_endpoint(
    api: Any, visit_ids: dict[str, str]
) -> None:
    answer = api("d1").put(f"/visits/{visit_ids['D1']}", {"base_version": 1, "data": visit_data()})
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "forbidden"


def test_a_doctor_cannot_approve_their_own_leave(api: Any) -> None:
    leave = {
        "doctor": "D1",
        "start": "2026-03-02",
        "end": "2026-03-04",
        "reason": "病假",
        "status": "approved",
    }
    result = api("d1").push(make_change(leave, collection="leave"))["results"][0]
    assert result["status"] == "rejected"
    assert "data.status" in result["errors"]
    pending = dict(leave, status="pending")
    assert (
        api("d1").push(make_change(pending, collection="leave"))["results"][0]["status"]
        == "accepted"
    )


def test_change_ids_are_remembered_per_user_so_another_user_cannot_read_an_answer(api: Any) -> None:
    d1, d3 = api("d1"), api("d3")
    change = make_change()
    d1.push(change)
    # d3 replays d1's change id: it is a new change for d3, judged on its own (and refused).
    stolen = d3.push(change)["results"][0]
    assert stolen["status"] == "rejected"
    assert "current" not in stolen
