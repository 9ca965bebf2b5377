"""The county-running pages (server/admin_pages.py) through Flask's test client, plain form
posts: who may open which page, a one-time password that sends its user to /password
first, accounts created and devices revoked with their audit entries, sync health, the
import's problems in the page's language."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.builders import TOWNSHIP_A
from tests.server.web.pages import Pages, api_token, push, text

ONE_TIME = "one-time-password"


@pytest.fixture
def admin(app: Any) -> Pages:
    pages = Pages(app)
    pages.login("admin")
    pages.get("/admin/users")  # the signed-in session's CSRF token
    return pages


def one_time_password(html: str) -> str:
    start = html.index('<code class="secret">') + len('<code class="secret">')
    return html[start : html.index("</code>", start)]


PAGES = [
    "/admin/users",
    "/admin/users/d1",
    "/admin/users/d3",
    "/admin/sync-health",
    "/admin/import",
    "/admin/import/template.xlsx",
    "/admin/import/users.csv",
]
# role's user → the status of each page above.
EXPECTED = {
    "d1": [403, 403, 403, 403, 403, 403, 403],
    "rev_a": [200, 200, 404, 200, 403, 403, 403],
    "admin": [200, 200, 200, 200, 200, 200, 200],
}


@pytest.mark.parametrize("username", sorted(EXPECTED))
def test_each_role_opens_the_pages_the_table_says(app: Any, username: str) -> None:
    pages = Pages(app)
    if username == "d1":  # the sign-in page is not for doctors: a session made directly
        with pages.client.session_transaction() as session:
            from server.extensions import db
            from server.models import User
            from server.web.session import password_mark

            with app.app_context():
                user = db.session.query(User).filter_by(username="d1").one()
                session["user"], session["mark"] = "d1", password_mark(user)
    else:
        pages.login(username)
    got = [pages.get(path).status_code for path in PAGES]
    assert got == EXPECTED[username]
    anonymous = Pages(app)
    assert {anonymous.get(path).status_code for path in PAGES} == {302}


def test_a_one_time_password_sends_its_user_to_change_it_before_anything_else(
    app: Any, admin: Pages
) -> None:
    reviewer = Pages(app)
    reviewer.login("rev_a")
    assert reviewer.get("/review").status_code == 200
    answer = admin.post("/admin/users/rev_a/reset-password", {})
    assert answer.status_code == 200
    one_time = one_time_password(text(answer))
    # The old password's session ends with it.
    assert reviewer.get("/review").status_code == 302

    fresh = Pages(app)
    fresh.get("/login")
    signed = fresh.post("/login", {"username": "rev_a", "password": one_time})
    assert signed.headers["Location"].endswith("/password")
    for path in ("/review", "/county", "/admin/users"):
        assert fresh.get(path).headers["Location"].endswith("/password")
    form = fresh.get("/password")
    assert 'id="must-change"' in text(form)
    mismatch = fresh.post(
        "/password",
        {"old_password": one_time, "new_password": "mine-and-only-mine", "repeat_password": "x"},
    )
    assert mismatch.status_code == 400
    done = fresh.post(
        "/password",
        {
            "old_password": one_time,
            "new_password": "mine-and-only-mine",
            "repeat_password": "mine-and-only-mine",
        },
    )
    assert done.status_code == 302
    assert fresh.get("/review").status_code == 200
    again = Pages(app)
    again.get("/login")
    assert (
        again.post("/login", {"username": "rev_a", "password": "mine-and-only-mine"}).status_code
        == 302
    )


def test_creating_an_account_shows_its_one_time_password_once_and_field_errors_in_place(
    app: Any, admin: Pages
) -> None:
    bad = admin.post(
        "/admin/users", {"username": "rev_x", "role": "township_reviewer", "unit": "nowhere"}
    )
    assert bad.status_code == 400
    assert "field-error" in text(bad) and 'value="rev_x"' in text(bad)
    made = admin.post(
        "/admin/users", {"username": "rev_x", "role": "township_reviewer", "unit": TOWNSHIP_A}
    )
    assert made.status_code == 201
    assert len(one_time_password(text(made))) >= 12
    listing = admin.get("/admin/users")
    assert 'data-user="rev_x"' in text(listing)
    assert 'class="secret"' not in text(listing)  # shown once, never again


def test_revoking_a_device_on_its_users_page_is_audited_and_stops_its_syncs(
    app: Any, admin: Pages
) -> None:
    client = app.test_client()
    headers = api_token(client, "d1")
    assert (
        client.get("/api/v1/sync/pull", headers={**headers, "X-Device-Id": "tab-9"}).status_code
        == 200
    )
    page = admin.get("/admin/users/d1")
    assert 'data-device="tab-9"' in text(page)
    revoked = admin.post("/admin/devices/tab-9/revoke", {"user": "d1", "reason": "丢失"})
    assert revoked.status_code == 302
    after = text(admin.get("/admin/users/d1"))
    assert 'data-device="tab-9" data-revoked="yes"' in after
    assert 'data-action="device.revoked"' in after
    refused = client.get("/api/v1/sync/pull", headers={**headers, "X-Device-Id": "tab-9"})
    assert refused.status_code == 403
    assert admin.post("/admin/devices/nothing/revoke", {"user": "d1"}).status_code == 404


def test_sync_health_marks_a_doctor_whose_device_has_been_silent_for_more_than_n_days(
    app: Any, admin: Pages
) -> None:
    from server.extensions import db
    from server.models import Device

    client = app.test_client()
    client.get("/api/v1/sync/pull", headers={**api_token(client, "d1"), "X-Device-Id": "tab-old"})
    push(client, "d2")
    with app.app_context():
        device = db.session.get(Device, "tab-old")
        device.last_pull_at = datetime.now(UTC) - timedelta(days=5)
        db.session.commit()
    page = text(admin.get("/admin/sync-health?silent_days=4"))
    assert 'data-doctor="D1" data-silent="yes"' in page
    assert 'data-doctor="D2" data-silent="no"' in page
    assert "5 天前" in page
    assert 'data-doctor="D1" data-silent="no"' in text(
        admin.get("/admin/sync-health?silent_days=6")
    )


def test_the_imports_problems_are_listed_by_row_and_column_in_the_pages_language(
    app: Any, admin: Pages
) -> None:
    content = "编码,名称,级别,上级编码\r\n450999101299,新村,村,999\r\n".encode("utf-8-sig")

    def send() -> Any:
        return admin.client.post(
            "/admin/import",
            data={
                "csrf_token": admin.token,
                "mode": "check",
                "files": (io.BytesIO(content), "places.csv"),
            },
            content_type="multipart/form-data",
        )

    chinese = send()
    assert chinese.status_code == 422
    assert 'data-row="2" data-column="上级编码"' in text(chinese)
    assert "没有编码为“999”的地点" in text(chinese)
    admin.get("/lang/en")
    english = send()
    assert "no place &#39;999&#39;" in text(english)
