"""The audit of who can read and write what: every endpoint x every role x a visit of their
own, of another doctor in the same township, of another township, of another county, and a
visit of a doctor at a village of another township (seen by both townships' reviewers, issue
13), over real HTTP, on SQLite and PostgreSQL. One table; the test prints every cell that
differs, not just the first."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import requests

from tests.builders import (
    OTHER_TOWNSHIP,
    OTHER_VILLAGE,
    PASSWORD,
    TOWNSHIP_A,
    TOWNSHIP_B,
    VILLAGE_A1,
    VILLAGE_B1,
    make_change,
    visit_data,
)
from tests.conftest import BACKENDS

# The visit each target stands for, and the doctor user who records it.
TARGETS = {
    "D1": ("d1", dict(doctor="D1", assignment="A1", place=VILLAGE_A1)),
    "D2": ("d2", dict(doctor="D2", assignment="A2", place=VILLAGE_A1, kind="posting")),
    "D3": ("d3", dict(doctor="D3", assignment="A3", place=VILLAGE_B1)),
    "D9": ("d9", dict(doctor="D9", assignment="A9", place=OTHER_VILLAGE, kind="posting")),
    # D1 (township A) at a village of township B: attendance for A, coverage for B.
    "D1@B": ("d1", dict(doctor="D1", assignment=None, place=VILLAGE_B1)),
}
# The township of the target's place (its summary).
TOWNSHIPS = {
    "D1": TOWNSHIP_A,
    "D2": TOWNSHIP_A,
    "D3": TOWNSHIP_B,
    "D9": OTHER_TOWNSHIP,
    "D1@B": TOWNSHIP_B,
}
# role -> (user, how each target relates to that user)
ROLES = {
    "doctor": (
        "d1",
        {
            "D1": "own",
            "D2": "same township",
            "D3": "other township",
            "D9": "other county",
            "D1@B": "own, elsewhere",
        },
    ),
    "township_reviewer": (
        "rev_a",
        {
            "D1": "own township",
            "D2": "own township",
            "D3": "other township",
            "D9": "other county",
            "D1@B": "own doctor, elsewhere",
        },
    ),
    "place_township_reviewer": (
        "rev_b",
        {
            "D1": "other township",
            "D2": "other township",
            "D3": "own township",
            "D9": "other county",
            "D1@B": "other doctor, own place",
        },
    ),
    "county_admin": (
        "admin",
        {
            "D1": "own county",
            "D2": "own county",
            "D3": "own county",
            "D9": "other county",
            "D1@B": "own county",
        },
    ),
}
SEES = {
    "doctor": {"own", "own, elsewhere"},
    "township_reviewer": {"own township", "own doctor, elsewhere"},
    "place_township_reviewer": {"own township", "other doctor, own place"},
    "county_admin": {"own county"},
}
# Cells that differ from the rule of `expected`: the visit of D1 at B1 is in both reviewers'
# scope, but the doctor's week and heatmap are the doctor's township's, the place's summary
# the place's township's.
EXCEPTIONS: dict[tuple[str, str, str], int] = {
    ("township_reviewer", "D1@B", "summary"): 404,
    ("township_reviewer", "D1@B", "summary xlsx"): 404,
    ("place_township_reviewer", "D1@B", "review week"): 404,
    ("place_township_reviewer", "D1@B", "approve week"): 404,
    ("place_township_reviewer", "D1@B", "heatmap"): 404,
}

# Endpoints that answer every signed-in role alike (their content is scoped; see
# tests/server/api/test_scoping.py), and 401 without a token.
SIGNED_IN = [
    ("GET", "/api/v1/me"),
    ("GET", "/api/v1/sync/pull"),
    ("GET", "/api/v1/visits"),
    ("GET", "/api/v1/leave"),
    ("GET", "/api/v1/trainings"),
    ("GET", "/api/v1/conflicts"),
    ("GET", "/api/v1/flags"),
]
PUBLIC = [
    ("GET", "/api/v1/health"),
    ("GET", "/api/v1/openapi.json"),
    ("GET", "/api/v1/forms"),
    ("GET", "/metrics"),
    ("GET", "/health/live"),
    ("GET", "/health/ready"),
]
# Running a county (server/accounts_api.py): reviewers and admins read; a doctor gets 403.
MANAGERS_READ = [
    ("GET", "/api/v1/admin/users"),
    ("GET", "/api/v1/admin/devices"),
    ("GET", "/api/v1/admin/sync-health"),
    ("GET", "/api/v1/admin/audit"),
]
# County admins only (a reviewer and a doctor get 403).
ADMINS_ONLY = [
    ("GET", "/api/v1/admin/import/template.xlsx"),
    ("GET", "/api/v1/admin/import/doctors.csv"),
]
# The accounts of each target's doctor, by user name.
ACCOUNTS = {"D1": "d1", "D2": "d2", "D3": "d3", "D9": "d9"}


def expected(role: str, relation: str, action: str) -> int | str:
    visible = relation in SEES[role]
    if action == "review":  # the reviewers' workflow (server/api/review.py)
        if role == "doctor":
            return 403
        return 200 if visible else 404
    if action == "get":
        return 200 if visible else 404
    if action == "put":
        if role == "doctor":
            return 403
        return 200 if visible else 404
    # push upsert / push delete: a per-record result
    return "accepted" if visible else "rejected"


class Client:
    def __init__(self, base: str, username: str | None) -> None:
        self.base = base
        self.http = requests.Session()
        if username:
            answer = self.http.post(
                f"{base}/api/v1/auth/login",
                timeout=30,
                json={"username": username, "password": PASSWORD},
            )
            assert answer.status_code == 200, answer.text
            self.tokens = answer.json()
            self.http.headers["Authorization"] = f"Bearer {self.tokens['access_token']}"

    def call(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> requests.Response:
        return self.http.request(
            method, f"{self.base}{path}", json=body, timeout=30, headers=headers
        )

    def push(self, change: dict[str, Any]) -> dict[str, Any]:
        answer = self.call(
            "POST",
            "/api/v1/sync/push",
            {"device_id": "audit", "batch_id": uuid.uuid4().hex, "changes": [change]},
        )
        assert answer.status_code == 200, answer.text
        return dict(answer.json()["results"][0])


def _record(clients: dict[str, Client], target: str) -> tuple[str, dict[str, Any]]:
    """A fresh visit of `target`, recorded by that doctor; its id and data."""
    user, fields = TARGETS[target]
    data = visit_data(**fields)
    change = make_change(data)
    result = clients[user].push(change)
    assert result["status"] == "accepted", result
    return change["id"], data


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_endpoint_answers_every_role_as_the_table_says(live: Any) -> None:
    users = {"d1", "d2", "d3", "d9", "rev_a", "rev_b", "admin"}
    clients = {u: Client(live.url, u) for u in users}
    anonymous = Client(live.url, None)
    got: dict[tuple[str, str, str], Any] = {}
    want: dict[tuple[str, str, str], Any] = {}

    for role, (user, relations) in ROLES.items():
        client = clients[user]
        for target, relation in relations.items():
            cell = (role, relation + f" ({target})", "")
            record_id, data = _record(clients, target)
            path = f"/api/v1/visits/{record_id}"

            want[cell[:2] + ("GET visit",)] = expected(role, relation, "get")
            got[cell[:2] + ("GET visit",)] = client.call("GET", path).status_code

            # The review workflow on this record's doctor and week, and on the record.
            doctor = TARGETS[target][1]["doctor"]
            for label, method, review_path, body in (
                ("review week", "GET", f"/api/v1/review/weeks/{doctor}/2026-W11", None),
                ("approve week", "POST", f"/api/v1/review/weeks/{doctor}/2026-W10/approve", {}),
                (
                    "send back",
                    "POST",
                    f"/api/v1/review/visits/{record_id}/send-back",
                    {"comment": "请补充患者人数"},
                ),
            ):
                want[cell[:2] + (label,)] = EXCEPTIONS.get(
                    (role, target, label), expected(role, relation, "review")
                )
                got[cell[:2] + (label,)] = client.call(method, review_path, body).status_code

            # County summaries (server/api/summaries.py): the target's township, the
            # duty heatmap of its doctor. Reviewers' and admins' only, scoped like the rest.
            township = TOWNSHIPS[target]
            for label, summary_path in (
                ("summary", f"/api/v1/summaries?month=2026-03&township={township}"),
                ("summary xlsx", f"/api/v1/summaries.xlsx?month=2026-03&township={township}"),
                ("heatmap", f"/api/v1/summaries/charts/duty-heatmap.svg?doctor={doctor}"),
            ):
                want[cell[:2] + (label,)] = EXCEPTIONS.get(
                    (role, target, label), expected(role, relation, "review")
                )
                got[cell[:2] + (label,)] = client.call("GET", summary_path).status_code

            # The target doctor's account and one of their devices (server/api/admin.py);
            # an account belongs to the doctor's own township, so the cross-township
            # visit (D1@B) adds no rows here.
            if target in ACCOUNTS:
                account = ACCOUNTS[target]
                for label, method, admin_path in (
                    ("GET account", "GET", f"/api/v1/admin/users/{account}"),
                    ("deactivate account", "POST", f"/api/v1/admin/users/{account}/deactivate"),
                    ("reactivate account", "POST", f"/api/v1/admin/users/{account}/reactivate"),
                    ("devices of doctor", "GET", f"/api/v1/admin/devices?doctor={doctor}"),
                ):
                    answer = client.call(method, admin_path)
                    want[cell[:2] + (label,)] = (
                        (403 if role == "doctor" else 200)
                        if label == "devices of doctor"
                        else expected(role, relation, "review")
                    )
                    got[cell[:2] + (label,)] = answer.status_code
                    if label == "devices of doctor" and answer.status_code == 200:
                        # Out of scope, the list is empty rather than 404: the filter is the scope.
                        want[cell[:2] + ("devices listed",)] = relation in SEES[role]
                        got[cell[:2] + ("devices listed",)] = bool(answer.json()["items"])
                device = f"m-{role}-{target}"
                clients[TARGETS[target][0]].call(
                    "GET", "/api/v1/sync/pull", headers={"X-Device-Id": device}
                )
                want[cell[:2] + ("revoke device",)] = expected(role, relation, "review")
                got[cell[:2] + ("revoke device",)] = client.call(
                    "POST", f"/api/v1/admin/devices/{device}/revoke", {}
                ).status_code

            corrected = dict(data, patients=data["patients"] + 1)
            put = client.call("PUT", path, {"base_version": 1, "data": corrected})
            want[cell[:2] + ("PUT visit",)] = expected(role, relation, "put")
            got[cell[:2] + ("PUT visit",)] = put.status_code
            version = 2 if put.status_code == 200 else 1

            edit = make_change(
                dict(data, patients=data["patients"] + 2), record_id=record_id, base_version=version
            )
            result = client.push(edit)
            want[cell[:2] + ("push upsert",)] = expected(role, relation, "push")
            got[cell[:2] + ("push upsert",)] = result["status"]
            if result["status"] == "accepted":
                version += 1

            delete = make_change(record_id=record_id, op="delete", base_version=version)
            want[cell[:2] + ("push delete",)] = expected(role, relation, "push")
            got[cell[:2] + ("push delete",)] = client.push(delete)["status"]

            # What the record's own doctor sees afterwards: the refused writes left no trace.
            owner = clients[TARGETS[target][0]].call("GET", path).json()
            allowed = relation in SEES[role]
            want[cell[:2] + ("owner sees",)] = (version + 1, True) if allowed else (1, False)
            got[cell[:2] + ("owner sees",)] = (owner["version"], owner["deleted"])

        for method, path in SIGNED_IN:
            want[(role, "-", f"{method} {path}")] = 200
            got[(role, "-", f"{method} {path}")] = client.call(method, path).status_code
        for method, path in MANAGERS_READ:
            want[(role, "-", f"{method} {path}")] = 403 if role == "doctor" else 200
            got[(role, "-", f"{method} {path}")] = client.call(method, path).status_code
        for method, path in ADMINS_ONLY:
            want[(role, "-", f"{method} {path}")] = 200 if role == "county_admin" else 403
            got[(role, "-", f"{method} {path}")] = client.call(method, path).status_code
        dry_run = client.http.post(
            f"{live.url}/api/v1/admin/import?mode=check",
            files={"files": ("doctors.csv", "医生编号,姓名,资质,所属单位编码\r\n".encode())},
            timeout=30,
        )
        want[(role, "-", "POST import dry run")] = 200 if role == "county_admin" else 403
        got[(role, "-", "POST import dry run")] = dry_run.status_code
        created = client.call(
            "POST",
            "/api/v1/admin/users",
            {"username": f"new-{role}", "role": "doctor", "doctor": "D1"},
        )
        # D1 is a doctor of township A: its reviewer and the county admin may, no one else.
        may_create = role in ("township_reviewer", "county_admin")
        want[(role, "-", "POST create doctor account D1")] = 201 if may_create else 403
        got[(role, "-", "POST create doctor account D1")] = created.status_code
        made_admin = client.call(
            "POST",
            "/api/v1/admin/users",
            {"username": f"boss-{role}", "role": "county_admin", "unit": "450999"},
        )
        want[(role, "-", "POST create county admin")] = 201 if role == "county_admin" else 403
        got[(role, "-", "POST create county admin")] = made_admin.status_code
        role_change = client.call(
            "POST",
            "/api/v1/admin/users/rev_b/role",
            {"role": "township_reviewer", "unit": TOWNSHIP_B},
        )
        want[(role, "-", "POST change role of rev_b")] = 200 if role == "county_admin" else 403
        got[(role, "-", "POST change role of rev_b")] = role_change.status_code
        wrong_password = client.call(
            "POST",
            "/api/v1/auth/password",
            {"old_password": "not-it", "new_password": "whatever-1"},
        )
        want[(role, "-", "POST own password, wrong old")] = 400
        got[(role, "-", "POST own password, wrong old")] = wrong_password.status_code
        # The week plans the doctor's app counts against are a doctor's own (issue 12).
        want[(role, "-", "GET duty plan")] = 200 if role == "doctor" else 403
        got[(role, "-", "GET duty plan")] = client.call("GET", "/api/v1/duty/plan").status_code
        want[(role, "-", "GET review audit")] = 403 if role == "doctor" else 200
        got[(role, "-", "GET review audit")] = client.call(
            "GET", "/api/v1/review/audit"
        ).status_code
        # The audit log is append-only for everyone.
        for method in ("POST", "PUT", "DELETE"):
            want[(role, "-", f"{method} review audit")] = 405
            got[(role, "-", f"{method} review audit")] = client.call(
                method, "/api/v1/review/audit", {}
            ).status_code
        # A reviewer's correction endpoint does not reach server-owned collections.
        want[(role, "-", "PUT places")] = 403 if role == "doctor" else 404
        got[(role, "-", "PUT places")] = client.call(
            "PUT", f"/api/v1/places/{VILLAGE_A1}", {"base_version": 1, "data": {}}
        ).status_code
        # An access token cannot refresh; the refresh token can.
        want[(role, "-", "refresh with access token")] = 401
        got[(role, "-", "refresh with access token")] = client.call(
            "POST", "/api/v1/auth/refresh"
        ).status_code
        refresh = requests.post(
            f"{live.url}/api/v1/auth/refresh",
            timeout=30,
            headers={"Authorization": f"Bearer {client.tokens['refresh_token']}"},
        )
        want[(role, "-", "refresh with refresh token")] = 200
        got[(role, "-", "refresh with refresh token")] = refresh.status_code

    admin_routes = [
        ("POST", "/api/v1/admin/users"),
        ("GET", "/api/v1/admin/users/d1"),
        ("POST", "/api/v1/admin/users/d1/deactivate"),
        ("POST", "/api/v1/admin/users/d1/reactivate"),
        ("POST", "/api/v1/admin/users/d1/reset-password"),
        ("POST", "/api/v1/admin/users/d1/role"),
        ("POST", "/api/v1/admin/devices/audit/revoke"),
        ("POST", "/api/v1/admin/import"),
        ("POST", "/api/v1/auth/password"),
    ]
    for method, path in (
        SIGNED_IN
        + MANAGERS_READ
        + ADMINS_ONLY
        + admin_routes
        + [
            ("PUT", "/api/v1/visits/x"),
            ("GET", "/api/v1/visits/x"),
            ("POST", "/api/v1/sync/push"),
            ("POST", "/api/v1/auth/logout"),
            ("GET", "/api/v1/duty/plan"),
        ]
    ):
        want[("anonymous", "-", f"{method} {path}")] = 401
        got[("anonymous", "-", f"{method} {path}")] = anonymous.call(method, path, {}).status_code
    for method, path in PUBLIC:
        want[("anonymous", "-", f"{method} {path}")] = 200
        got[("anonymous", "-", f"{method} {path}")] = anonymous.call(method, path).status_code

    # Logging out revokes the token: the next call with it is refused.
    for role, (user, _) in ROLES.items():
        client = clients[user]
        want[(role, "-", "logout")] = (200, 401)
        got[(role, "-", "logout")] = (
            client.call("POST", "/api/v1/auth/logout").status_code,
            client.call("GET", "/api/v1/me").status_code,
        )

    differences = {
        cell: (want[cell], got.get(cell)) for cell in want if want[cell] != got.get(cell)
    }
    assert not differences, "\n".join(
        f"{c}: want {w}, got {g}" for c, (w, g) in differences.items()
    )
    assert len(want) > 80  # the table covers every cell
