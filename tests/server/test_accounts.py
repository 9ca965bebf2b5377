"""Users and devices (server/accounts.py, /api/v1/admin, /api/v1/auth/password): one-time
passwords that must be changed, scope of who manages whom, deactivation signing out at
once, the device registry from pushes and pulls, revoking a device (its tokens and its
syncs refused with `device_revoked`, its records kept), sync health, the audit log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.builders import COUNTY, PASSWORD, TOWNSHIP_A, TOWNSHIP_B, make_change, visit_data

ADMIN = "/api/v1/admin"


class Client:
    """The Flask test client signed in as one user (optionally naming its device)."""

    def __init__(self, app: Any, username: str, password: str = PASSWORD, **login: Any) -> None:
        self.http = app.test_client()
        answer = self.http.post(
            "/api/v1/auth/login", json={"username": username, "password": password, **login}
        )
        self.login = answer
        body = answer.get_json()
        self.headers = (
            {"Authorization": f"Bearer {body['access_token']}"} if answer.status_code == 200 else {}
        )
        self.refresh_token = body.get("refresh_token") if answer.status_code == 200 else None

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.http.get(path, headers={**self.headers, **kwargs.pop("headers", {})}, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        return self.http.post(
            path, json=body, headers={**self.headers, **kwargs.pop("headers", {})}, **kwargs
        )

    def push(self, device: str, *changes: dict[str, Any], **headers: str) -> Any:
        body = {"device_id": device, "batch_id": make_change()["id"], "changes": list(changes)}
        return self.post("/api/v1/sync/push", body, headers=headers)

    def pull(self, device: str | None = None) -> Any:
        return self.get("/api/v1/sync/pull", headers={"X-Device-Id": device} if device else {})


def code(answer: Any) -> str:
    return str(answer.get_json()["error"]["code"])


@pytest.fixture
def admin(app: Any) -> Client:
    return Client(app, "admin")


# --- accounts ------------------------------------------------------------------------------


def test_a_new_account_signs_in_with_its_one_time_password_and_must_change_it_first(
    app: Any, admin: Client
) -> None:
    created = admin.post(f"{ADMIN}/users", {"username": "d1b", "role": "doctor", "doctor": "D1"})
    assert created.status_code == 201, created.get_data(as_text=True)
    body = created.get_json()
    assert body["user"]["must_change_password"] is True
    one_time = body["one_time_password"]
    assert len(one_time) >= 12

    doctor = Client(app, "d1b", one_time)
    assert doctor.login.status_code == 200
    assert doctor.login.get_json()["user"]["must_change_password"] is True
    refused = doctor.pull()
    assert refused.status_code == 403
    assert code(refused) == "password_change_required"
    assert refused.get_json()["error"]["message_zh"]
    assert doctor.get("/api/v1/me").status_code == 200  # who am I still answers

    weak = doctor.post("/api/v1/auth/password", {"old_password": one_time, "new_password": "short"})
    assert weak.status_code == 400 and "new_password" in weak.get_json()["error"]["errors"]
    changed = doctor.post(
        "/api/v1/auth/password", {"old_password": one_time, "new_password": "my-own-secret-9"}
    )
    assert changed.status_code == 200, changed.get_data(as_text=True)
    assert doctor.pull().status_code == 200
    assert Client(app, "d1b", one_time).login.status_code == 401
    assert Client(app, "d1b", "my-own-secret-9").login.status_code == 200


def test_a_reset_password_replaces_the_old_one_at_once(app: Any, admin: Client) -> None:
    reset = admin.post(f"{ADMIN}/users/d1/reset-password")
    assert reset.status_code == 200
    one_time = reset.get_json()["one_time_password"]
    assert Client(app, "d1").login.status_code == 401
    doctor = Client(app, "d1", one_time)
    assert code(doctor.pull()) == "password_change_required"


def test_deactivating_an_account_stops_its_tokens_and_reactivating_restores_them(
    app: Any, admin: Client
) -> None:
    doctor = Client(app, "d3")
    assert doctor.pull().status_code == 200
    off = admin.post(f"{ADMIN}/users/d3/deactivate")
    assert off.status_code == 200 and off.get_json()["active"] is False
    assert doctor.pull().status_code == 401
    assert Client(app, "d3").login.status_code == 401
    assert admin.post(f"{ADMIN}/users/d3/reactivate").get_json()["active"] is True
    assert doctor.pull().status_code == 200


def test_a_county_admin_changes_a_role_and_unit_and_cannot_deactivate_themselves(
    app: Any, admin: Client
) -> None:
    moved = admin.post(
        f"{ADMIN}/users/rev_a/role", {"role": "township_reviewer", "unit": TOWNSHIP_B}
    )
    assert moved.status_code == 200
    assert (moved.get_json()["unit"], moved.get_json()["township"]) == (TOWNSHIP_B, TOWNSHIP_B)
    wrong = admin.post(f"{ADMIN}/users/rev_a/role", {"role": "county_admin", "unit": TOWNSHIP_A})
    assert wrong.status_code == 400 and "unit" in wrong.get_json()["error"]["errors"]
    assert admin.post(f"{ADMIN}/users/admin/deactivate").status_code == 403


def test_a_township_reviewer_manages_only_their_townships_doctor_accounts(
    app: Any, admin: Client
) -> None:
    reviewer = Client(app, "rev_a")
    names = {u["username"] for u in reviewer.get(f"{ADMIN}/users").get_json()["items"]}
    assert names == {"d1", "d2"}
    assert reviewer.post(f"{ADMIN}/users/d1/reset-password").status_code == 200
    assert reviewer.post(f"{ADMIN}/users/d3/reset-password").status_code == 404  # township B
    assert reviewer.post(f"{ADMIN}/users/rev_b/deactivate").status_code == 404
    assert (
        reviewer.post(f"{ADMIN}/users/d1/role", {"role": "doctor", "doctor": "D2"}).status_code
        == 403
    )
    made = reviewer.post(
        f"{ADMIN}/users", {"username": "boss", "role": "county_admin", "unit": COUNTY}
    )
    assert made.status_code == 403
    ok = reviewer.post(f"{ADMIN}/users", {"username": "d2b", "role": "doctor", "doctor": "D2"})
    assert ok.status_code == 201
    elsewhere = reviewer.post(
        f"{ADMIN}/users", {"username": "d3b", "role": "doctor", "doctor": "D3"}
    )
    assert elsewhere.status_code == 403
    other_county = {u["username"] for u in admin.get(f"{ADMIN}/users").get_json()["items"]}
    assert "d9" not in other_county and "admin_other" not in other_county
    assert Client(app, "d2").get(f"{ADMIN}/users").status_code == 403  # a doctor


def test_every_account_change_is_in_the_audit_log(app: Any, admin: Client) -> None:
    admin.post(
        f"{ADMIN}/users", {"username": "rev_c", "role": "township_reviewer", "unit": TOWNSHIP_A}
    )
    admin.post(f"{ADMIN}/users/rev_c/deactivate")
    admin.post(f"{ADMIN}/users/rev_c/reactivate")
    admin.post(f"{ADMIN}/users/rev_c/reset-password")
    admin.post(f"{ADMIN}/users/rev_c/role", {"role": "township_reviewer", "unit": TOWNSHIP_B})
    entries = admin.get(f"{ADMIN}/audit", query_string={"subject_id": "rev_c"}).get_json()["items"]
    assert [e["action"] for e in entries] == [
        "user.created",
        "user.deactivated",
        "user.activated",
        "user.password_reset",
        "user.changed",
    ]
    assert {e["who"] for e in entries} == {"admin"}
    assert (
        entries[-1]["before"]["unit"] == TOWNSHIP_A and entries[-1]["after"]["unit"] == TOWNSHIP_B
    )
    # The reviewer of township B sees the entries of their township's subject only.
    seen = Client(app, "rev_b").get(f"{ADMIN}/audit", query_string={"subject_id": "rev_c"})
    assert [e["action"] for e in seen.get_json()["items"]] == ["user.changed"]


# --- devices -------------------------------------------------------------------------------


def test_the_registry_records_each_devices_pushes_pulls_version_and_pending_rejections(
    app: Any, admin: Client
) -> None:
    doctor = Client(app, "d1")
    agent = {"User-Agent": "zhuxun-client/0.1.0"}
    bad = make_change(visit_data(patients=-1))
    assert doctor.push("tab-1", make_change(), bad, **agent).status_code == 200
    pulled = doctor.get("/api/v1/sync/pull", headers={"X-Device-Id": "tab-1", **agent})
    assert pulled.status_code == 200
    assert doctor.push("tab-2", make_change()).status_code == 200
    devices = {d["id"]: d for d in admin.get(f"{ADMIN}/users/d1").get_json()["devices"]}
    assert set(devices) == {"tab-1", "tab-2"}
    tab1 = devices["tab-1"]
    assert tab1["client_version"] == "zhuxun-client/0.1.0"
    assert tab1["first_push_at"] and tab1["last_push_at"] and tab1["last_pull_at"]
    assert tab1["rejected_pending"] == 1
    assert devices["tab-2"]["last_pull_at"] is None
    # The rejected record sent again, fixed: nothing pending any more.
    fixed = dict(bad, change_id=make_change()["change_id"], data=visit_data(patients=1))
    assert doctor.push("tab-1", fixed).status_code == 200
    again = admin.get(f"{ADMIN}/devices", query_string={"user": "d1"}).get_json()["items"]
    assert {d["id"]: d["rejected_pending"] for d in again} == {"tab-1": 0, "tab-2": 0}


def test_a_revoked_devices_tokens_stop_at_once_and_its_syncs_are_refused_while_records_stay(
    app: Any, admin: Client
) -> None:
    lost = Client(app, "d1", device_id="tab-lost")
    other = Client(app, "d1", device_id="tab-ok")
    kept = make_change()
    assert lost.push("tab-lost", kept).status_code == 200
    assert other.push("tab-ok", make_change()).status_code == 200

    revoked = admin.post(f"{ADMIN}/devices/tab-lost/revoke", {"reason": "丢失"})
    assert revoked.status_code == 200 and revoked.get_json()["revoked"] is True

    # Its token: refused on every endpoint, with the documented code.
    for answer in (
        lost.pull("tab-lost"),
        lost.get("/api/v1/visits"),
        lost.push("tab-lost", make_change()),
    ):
        assert answer.status_code == 403, answer.get_data(as_text=True)
        assert code(answer) == "device_revoked"
        assert answer.get_json()["error"]["message_zh"]
    refreshed = lost.http.post(
        "/api/v1/auth/refresh", headers={"Authorization": f"Bearer {lost.refresh_token}"}
    )
    assert refreshed.status_code == 403 and code(refreshed) == "device_revoked"
    # A fresh sign-in naming it, or a push or pull naming it with another token: refused.
    assert code(Client(app, "d1", device_id="tab-lost").login) == "device_revoked"
    assert code(other.push("tab-lost", make_change())) == "device_revoked"
    assert code(other.pull("tab-lost")) == "device_revoked"
    # The other device syncs, and what the lost one sent stays.
    assert other.push("tab-ok", make_change()).status_code == 200
    assert other.pull("tab-ok").status_code == 200
    assert admin.get(f"/api/v1/visits/{kept['id']}").status_code == 200
    entries = admin.get(f"{ADMIN}/audit", query_string={"subject_id": "tab-lost"}).get_json()
    assert [(e["action"], e["reason"]) for e in entries["items"]] == [("device.revoked", "丢失")]


def test_devices_are_revoked_only_within_scope(app: Any, admin: Client) -> None:
    assert Client(app, "d3").push("tab-d3", make_change(visit_data(doctor="D3", assignment="A3", place="450999102201"))).status_code == 200  # fmt: skip
    assert Client(app, "d9").pull("tab-d9").status_code == 200
    assert Client(app, "rev_a").post(f"{ADMIN}/devices/tab-d3/revoke").status_code == 404
    assert admin.post(f"{ADMIN}/devices/tab-d9/revoke").status_code == 404
    assert Client(app, "d3").post(f"{ADMIN}/devices/tab-d3/revoke").status_code == 403
    assert admin.post(f"{ADMIN}/devices/nothing/revoke").status_code == 404
    assert Client(app, "rev_b").post(f"{ADMIN}/devices/tab-d3/revoke").status_code == 200


# --- sync health -----------------------------------------------------------------------------


def test_sync_health_lists_a_doctor_whose_device_has_not_synced_for_more_than_n_days(
    app: Any, admin: Client
) -> None:
    from server.extensions import db
    from server.models import Device

    Client(app, "d1").pull("tab-old")
    Client(app, "d2").pull("tab-new")
    with app.app_context():
        device = db.session.get(Device, "tab-old")
        device.last_pull_at = device.first_pull_at = datetime.now(UTC) - timedelta(days=9)
        db.session.commit()
    health = admin.get(f"{ADMIN}/sync-health", query_string={"silent_days": 7}).get_json()
    by_doctor = {d["doctor"]: d for d in health["doctors"]}
    assert health["silent_days"] == 7
    assert by_doctor["D1"]["silent"] is True and by_doctor["D1"]["days_silent"] == 9
    assert by_doctor["D2"]["silent"] is False
    assert by_doctor["D3"]["silent"] is True and by_doctor["D3"]["last_sync_at"] is None  # never
    assert set(health["silent"]) == {"D1", "D3"}
    assert "D9" not in by_doctor  # another county
    longer = admin.get(f"{ADMIN}/sync-health", query_string={"silent_days": 10}).get_json()
    assert set(longer["silent"]) == {"D3"}
    township = Client(app, "rev_a").get(f"{ADMIN}/sync-health").get_json()
    assert {d["doctor"] for d in township["doctors"]} == {"D1", "D2"}
    bad = admin.get(f"{ADMIN}/sync-health", query_string={"silent_days": "x"})
    assert bad.status_code == 400


# --- the offline client --------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["sqlite"])
def test_the_client_changes_a_one_time_password_and_its_tokens_are_its_devices(
    app: Any, live: Any, admin: Client, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from offline_client.cli import cli

    one_time = admin.post(f"{ADMIN}/users/d2/reset-password").get_json()["one_time_password"]
    monkeypatch.setenv("ZHUXUN_CLIENT_MAX_ATTEMPTS", "1")
    runner = CliRunner()

    def client(*args: str, **env: str) -> Any:
        return runner.invoke(cli, ["--data-dir", str(tmp_path / "tablet"), *args], env=env)

    signed = client("login", "--server", live.url, "--username", "d2", "--password", one_time)
    assert signed.exit_code == 0, signed.output
    assert "zhuxun-client password" in signed.output
    device = signed.output.split("; device ")[1].split()[0]
    refused = client("sync")
    assert refused.exit_code == 1 and "password_change_required" in refused.output
    changed = client("password", ZHUXUN_PASSWORD=one_time, ZHUXUN_NEW_PASSWORD="tablet-pass-77")
    assert changed.exit_code == 0, changed.output
    assert client("sync").exit_code == 0

    listed = admin.get(f"{ADMIN}/devices", query_string={"user": "d2"}).get_json()["items"]
    assert [(d["id"], d["client_version"].split("/")[0]) for d in listed] == [
        (device, "zhuxun-client")
    ]
    assert admin.post(f"{ADMIN}/devices/{device}/revoke").status_code == 200
    gone = client("sync")
    assert gone.exit_code == 1 and "device_revoked" in gone.output
