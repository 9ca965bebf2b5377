"""The server-rendered pages through Flask's test client, on SQLite and PostgreSQL: plain
form posts with no JavaScript, CSRF, the cookie session, scope, the language switch, and
the audit entry each decision writes."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from tests.builders import make_change
from tests.server.web.pages import (
    AS_OF,
    POSTING_WEEK_KEY,
    WEEK,
    Pages,
    api_token,
    posting_day,
    push,
    seed_review_week,
    text,
)


@pytest.fixture
def app_overrides() -> dict[str, Any]:
    return {"ZHUXUN_RULES_AS_OF": AS_OF, "ZHUXUN_LOGIN_RATE_LIMIT": "5 per minute"}


@pytest.fixture
def seeded(app: Any) -> dict[str, Any]:
    return seed_review_week(app)


@pytest.fixture
def rev_a(app: Any) -> Pages:
    pages = Pages(app)
    pages.login("rev_a")
    return pages


def audit_entries(app: Any) -> list[Any]:
    from server.extensions import db
    from server.models import AuditEntry

    with app.app_context():
        rows = list(db.session.scalars(select(AuditEntry).order_by(AuditEntry.id)))
        db.session.expunge_all()
        return rows


def api_get(app: Any, username: str, path: str) -> Any:
    client = app.test_client()
    answer = client.get(f"/api/v1{path}", headers=api_token(client, username))
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return answer.get_json()


# --- sign-in, session, CSRF ------------------------------------------------------------


def test_the_login_page_is_chinese_by_default_and_english_after_the_switch(app: Any) -> None:
    pages = Pages(app)
    page = pages.get("/login")
    assert page.status_code == 200
    assert '<html lang="zh-CN">' in text(page) and "用户名" in text(page)
    switched = pages.get("/lang/en?next=/login")
    assert switched.status_code == 302 and switched.headers["Location"] == "/login"
    cookie = switched.headers["Set-Cookie"]
    assert "zhuxun_lang=en" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    english = pages.get("/login")
    assert '<html lang="en">' in text(english) and "Username" in text(english)
    assert "用户名" not in text(english)
    assert english.headers["Content-Language"] == "en"
    back = pages.get("/lang/zh-CN?next=/login")
    assert back.status_code == 302 and "用户名" in text(pages.get("/login"))


def test_the_language_switch_never_sends_anybody_to_another_site(app: Any) -> None:
    pages = Pages(app)
    for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example", "javascript:x"):
        answer = pages.get("/lang/en", query_string={"next": target})
        assert answer.status_code == 302
        assert answer.headers["Location"] == "/", target
    assert pages.get("/lang/fr").status_code == 404


def test_signing_in_sets_an_httponly_samesite_session_and_goes_where_the_role_works(
    app: Any,
) -> None:
    pages = Pages(app)
    pages.get("/login")
    answer = pages.post("/login", {"username": "rev_a", "password": "correct-horse-battery"})
    assert answer.status_code == 302 and answer.headers["Location"] == "/review"
    cookie = answer.headers["Set-Cookie"]
    assert cookie.startswith("zhuxun_session=")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie, "not in test mode over plain HTTP"
    expires = parsedate_to_datetime(re.search(r"Expires=([^;]+)", cookie)[1])
    assert timedelta(hours=11) < expires - datetime.now(UTC) <= timedelta(hours=12)
    admin = Pages(app)
    assert admin.login("admin").headers["Location"] == "/county"


def test_the_session_cookie_is_secure_in_production(app: Any) -> None:
    from server.app import create_app

    production = create_app(
        {
            "ZHUXUN_ENV": "production",
            "TESTING": False,
            "SECRET_KEY": "x" * 48,
            "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
            "SQLALCHEMY_ENGINE_OPTIONS": app.config["SQLALCHEMY_ENGINE_OPTIONS"],
            "ZHUXUN_PASSWORD_METHOD": "scrypt:1024:8:1",
        }
    )
    client = production.test_client()
    page = client.get("/login", base_url="https://zhuxun.example")
    token = re.search(r'name="csrf_token" value="([^"]+)"', text(page))
    assert token
    answer = client.post(
        "/login",
        base_url="https://zhuxun.example",
        data={
            "csrf_token": token[1],
            "username": "rev_a",
            "password": "correct-horse-battery",
        },
        # Sent by a browser because the pages say Referrer-Policy: same-origin; Flask-WTF
        # refuses an HTTPS post without it.
        headers={"Referer": "https://zhuxun.example/login"},
    )
    assert answer.status_code == 302, text(answer)
    assert "Secure" in answer.headers["Set-Cookie"]
    assert page.headers["Referrer-Policy"] == "same-origin"
    with production.app_context():
        from server.extensions import db

        db.engine.dispose()


def test_signing_in_without_the_csrf_token_is_refused(app: Any) -> None:
    pages = Pages(app)
    pages.get("/login")
    answer = pages.post(
        "/login", {"username": "rev_a", "password": "correct-horse-battery"}, token=False
    )
    assert answer.status_code == 400
    assert answer.mimetype == "text/html" and "表单已失效" in text(answer)
    assert "Set-Cookie" not in answer.headers or "zhuxun_session=;" in answer.headers.get(
        "Set-Cookie", ""
    )
    assert pages.get("/review").status_code == 302, "not signed in"


def test_every_writing_route_outside_the_api_refuses_a_post_without_the_token(
    app: Any, seeded: dict[str, Any], rev_a: Pages
) -> None:
    """Any cookie-authenticated route that writes, now or added later, checks the token."""
    routes = [
        rule
        for rule in app.url_map.iter_rules()
        if "POST" in (rule.methods or ()) and not rule.rule.startswith("/api/")
    ]
    assert {r.endpoint for r in routes} >= {
        "web.login",
        "web.logout",
        "web.approve_week",
        "web.send_back",
        "web.excuse_flag",
        "web.decide_leave",
    }
    form = {
        "visit": seeded["visits"][0],
        "comment": "c",
        "flag": POSTING_WEEK_KEY,
        "reason": "r",
        "leave": seeded["leave"],
        "decision": "approve",
        "username": "rev_a",
        "password": "correct-horse-battery",
    }
    for rule in routes:
        path = rule.rule.replace("<doctor>", "D2").replace("<week>", WEEK)
        answer = rev_a.post(path, form, token=False)
        assert answer.status_code == 400, (rule.rule, answer.status_code)
        assert "表单已失效" in text(answer)
        wrong = rev_a.post(path, {**form, "csrf_token": "forged"}, token=False)
        assert wrong.status_code == 400, rule.rule
    assert audit_entries(app) == [], "nothing was decided"
    assert rev_a.get("/review").status_code == 200, "and the session is still signed in"


def test_the_api_needs_no_csrf_token_even_with_a_page_session_cookie(
    app: Any, seeded: dict[str, Any], rev_a: Pages
) -> None:
    answer = rev_a.client.post(
        f"/api/v1/review/weeks/D2/{WEEK}/approve",
        json={"reason": "via the API"},
        headers=api_token(rev_a.client, "rev_a"),
    )
    assert answer.status_code == 200, answer.get_data(as_text=True)


def test_a_wrong_password_answers_401_on_the_page_and_names_no_account(app: Any) -> None:
    pages = Pages(app)
    pages.get("/login")
    for username in ("rev_a", "nobody"):
        answer = pages.post("/login", {"username": username, "password": "wrong-password"})
        assert answer.status_code == 401
        assert "用户名或密码错误" in text(answer)
    empty = pages.post("/login", {"username": "", "password": ""})
    assert empty.status_code == 400
    assert "请输入用户名" in text(empty) and "请输入密码" in text(empty)


def test_the_page_and_the_api_share_one_login_budget(app: Any) -> None:
    pages = Pages(app)
    pages.get("/login")
    client = app.test_client()
    statuses = []
    for attempt in range(6):
        if attempt % 2:
            answer = client.post(
                "/api/v1/auth/login", json={"username": "rev_a", "password": "guess"}
            )
        else:
            answer = pages.post("/login", {"username": "rev_a", "password": "guess"})
        statuses.append(answer.status_code)
    assert statuses == [401, 401, 401, 401, 401, 429]
    throttled = pages.post("/login", {"username": "rev_a", "password": "correct-horse-battery"})
    assert throttled.status_code == 429 and throttled.mimetype == "text/html"
    assert "尝试次数过多" in text(throttled)
    pages.get("/lang/en")
    in_english = pages.post("/login", {"username": "rev_a", "password": "x"})
    assert in_english.status_code == 429 and "Too many attempts" in text(in_english)
    assert (
        pages.post("/login", {"username": "rev_b", "password": "correct-horse-battery"}).status_code
        == 302
    )


def test_a_page_asks_for_sign_in_and_returns_to_it_afterwards(app: Any) -> None:
    pages = Pages(app)
    answer = pages.get(f"/review/D2/{WEEK}")
    assert answer.status_code == 302
    assert answer.headers["Location"] == f"/login?next=/review/D2/{WEEK}"
    login = pages.get(answer.headers["Location"])
    assert f'name="next" value="/review/D2/{WEEK}"' in text(login)
    signed_in = pages.post(
        "/login",
        {"username": "rev_a", "password": "correct-horse-battery", "next": f"/review/D2/{WEEK}"},
    )
    assert signed_in.headers["Location"] == f"/review/D2/{WEEK}"
    elsewhere = Pages(app)
    elsewhere.get("/login")
    answer = elsewhere.post(
        "/login",
        {"username": "rev_a", "password": "correct-horse-battery", "next": "//evil.example/"},
    )
    assert answer.headers["Location"] == "/review"


def test_signing_out_ends_the_session(app: Any, rev_a: Pages) -> None:
    assert rev_a.get("/review").status_code == 200
    confirm = rev_a.get("/logout")
    assert confirm.status_code == 200 and "退出" in text(confirm)
    out = rev_a.post("/logout", {})
    assert out.status_code == 302 and out.headers["Location"] == "/login"
    assert rev_a.get("/review").status_code == 302


def test_a_deactivated_account_is_signed_out_at_its_next_page(app: Any, rev_a: Pages) -> None:
    from server.extensions import db
    from server.models import User

    with app.app_context():
        db.session.scalar(select(User).where(User.username == "rev_a")).active = False
        db.session.commit()
    answer = rev_a.get("/review")
    assert answer.status_code == 302 and answer.headers["Location"].startswith("/login")


def test_a_changed_password_signs_out_the_old_sessions(app: Any, rev_a: Pages) -> None:
    from server.database import hash_password
    from server.extensions import db
    from server.models import User

    with app.app_context():
        user = db.session.scalar(select(User).where(User.username == "rev_a"))
        user.password_hash = hash_password("a-brand-new-password")
        db.session.commit()
    assert rev_a.get("/review").status_code == 302


# --- pages: headers, scope, errors ------------------------------------------------------


def test_pages_send_a_self_only_content_security_policy_and_no_script(
    app: Any, seeded: dict[str, Any], rev_a: Pages
) -> None:
    for path in ("/login", "/review", f"/review/D2/{WEEK}"):
        answer = (Pages(app) if path == "/login" else rev_a).get(path)
        assert answer.status_code == 200, path
        policy = answer.headers["Content-Security-Policy"]
        assert "default-src 'none'" in policy and "style-src 'self'" in policy
        assert "script" not in policy, "no scripts allowed at all"
        assert "<script" not in text(answer)
        assert answer.headers["X-Frame-Options"] == "DENY"
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
    css = rev_a.get("/static/site.css")
    assert css.status_code == 200 and css.mimetype == "text/css"
    assert len(css.data) < 8000, "one small stylesheet"
    css.close()


def test_a_township_reviewer_sees_only_their_township(
    app: Any, seeded: dict[str, Any], rev_a: Pages
) -> None:
    overview = text(rev_a.get("/review?weeks=2"))
    assert 'data-doctor="D1"' in overview and 'data-doctor="D2"' in overview
    assert 'data-doctor="D3"' not in overview, "D3 works in township B"
    rev_b = Pages(app)
    rev_b.login("rev_b")
    listing = text(rev_b.get("/review?weeks=2"))
    assert 'data-doctor="D3"' in listing and 'data-doctor="D2"' not in listing
    outside = rev_b.get(f"/review/D2/{WEEK}")
    assert outside.status_code == 404 and outside.mimetype == "text/html"
    assert "D2" in text(outside)
    for path, form in (
        (f"/review/D2/{WEEK}/approve", {}),
        (f"/review/D2/{WEEK}/send-back", {"visit": seeded["visits"][0], "comment": "x"}),
        (f"/review/D2/{WEEK}/excuse", {"flag": POSTING_WEEK_KEY, "reason": "x"}),
        (f"/review/D2/{WEEK}/leave", {"leave": seeded["leave"], "decision": "approve"}),
    ):
        answer = rev_b.post(path, form)
        assert answer.status_code == 404, (path, text(answer))
    other_county = Pages(app)
    other_county.login("admin_other")
    assert other_county.get(f"/review/D2/{WEEK}").status_code == 404
    assert audit_entries(app) == []


def test_a_county_admin_sees_every_township_of_the_county(app: Any, seeded: dict[str, Any]) -> None:
    admin = Pages(app)
    admin.login("admin")
    listing = text(admin.get("/review?weeks=2"))
    assert all(f'data-doctor="{d}"' in listing for d in ("D1", "D2", "D3"))
    assert 'data-doctor="D9"' not in listing
    only_b = text(admin.get("/review?weeks=2&township=450999102"))
    assert 'data-doctor="D3"' in only_b and 'data-doctor="D1"' not in only_b
    assert admin.get(f"/review/D2/{WEEK}").status_code == 200


def test_doctors_get_403_on_every_page(app: Any, seeded: dict[str, Any]) -> None:
    doctor = Pages(app)
    doctor.get("/login")
    signed_in = doctor.post("/login", {"username": "d2", "password": "correct-horse-battery"})
    assert signed_in.status_code == 302
    for path in ("/", "/review", f"/review/D2/{WEEK}", "/county"):
        answer = doctor.get(path)
        assert answer.status_code == 403, path
        assert "zhuxun" not in answer.headers.get("Location", "")
        assert "仅供乡镇审核人员和县级管理员使用" in text(answer)
    assert doctor.post(f"/review/D2/{WEEK}/approve", {}).status_code == 403
    assert audit_entries(app) == []


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/review/D2/2026-W60", 400),
        ("/review/D2/last-week", 400),
        ("/review/NOBODY/2026-W02", 404),
        ("/review?weeks=abc", 400),
        ("/review?weeks=500", 400),
        ("/review?until=2026-13", 400),
    ],
)
def test_bad_input_on_a_page_answers_a_4xx_page_naming_it(
    app: Any, rev_a: Pages, path: str, status: int
) -> None:
    answer = rev_a.get(path)
    assert answer.status_code == status, text(answer)
    assert answer.mimetype == "text/html"
    body = text(answer)
    assert 'role="alert"' in body
    assert any(word in body for word in ("week", "weeks", "NOBODY")), body


def test_a_blank_comment_or_a_refusal_without_reason_is_a_400_page_naming_the_field(
    app: Any, seeded: dict[str, Any], rev_a: Pages
) -> None:
    rev_a.get(f"/review/D2/{WEEK}")
    blank = rev_a.post(
        f"/review/D2/{WEEK}/send-back", {"visit": seeded["visits"][0], "comment": "   "}
    )
    assert blank.status_code == 400 and "<code>comment</code>" in text(blank)
    assert f'href="/review/D2/{WEEK}"' in text(blank), "a way back to the week"
    refusal = rev_a.post(
        f"/review/D2/{WEEK}/leave", {"leave": seeded["leave"], "decision": "refuse"}
    )
    assert refusal.status_code == 400 and "<code>reason</code>" in text(refusal)
    odd = rev_a.post(f"/review/D2/{WEEK}/leave", {"leave": seeded["leave"], "decision": "maybe"})
    assert odd.status_code == 400 and "<code>decision</code>" in text(odd)
    assert audit_entries(app) == []


# --- the decisions, as plain form posts -----------------------------------------------------


def test_approving_a_week_by_form_locks_it_and_writes_the_audit_entry(
    app: Any, seeded: dict[str, Any], rev_a: Pages
) -> None:
    page = rev_a.get(f"/review/D2/{WEEK}")
    assert 'data-state="unreviewed"' in text(page)
    answer = rev_a.post(f"/review/D2/{WEEK}/approve", {"reason": "核对无误"})
    assert answer.status_code == 302 and answer.headers["Location"] == f"/review/D2/{WEEK}"
    after = text(rev_a.get(answer.headers["Location"]))
    assert 'data-state="approved"' in after and "已审核通过并锁定" in after
    assert 'id="approve-form"' not in after
    [entry] = audit_entries(app)
    assert (entry.username, entry.action, entry.subject_id) == (
        "rev_a",
        "week.approved",
        f"D2/{WEEK}",
    )
    assert entry.reason == "核对无误"
    assert entry.before == {"state": "unreviewed"} and entry.after["state"] == "approved"
    assert 'data-action="week.approved"' in after, "the trail on the page shows it"
    assert api_get(app, "rev_a", f"/review/weeks/D2/{WEEK}")["review"]["state"] == "approved"
    overview = text(rev_a.get(f"/review?until={WEEK}&weeks=1"))
    assert f'data-week="{WEEK}" data-state="approved"' in overview


def test_an_approved_week_edited_on_a_device_shows_reopened_with_the_reason(
    app: Any, seeded: dict[str, Any], rev_a: Pages
) -> None:
    rev_a.get(f"/review/D2/{WEEK}")
    rev_a.post(f"/review/D2/{WEEK}/approve", {})
    visit = seeded["visits"][0]
    push(
        app.test_client(),
        "d2",
        make_change(posting_day(5, patients=40), record_id=visit, base_version=1),
    )
    page = text(rev_a.get(f"/review/D2/{WEEK}"))
    assert 'data-state="reopened"' in page
    reason = re.search(r'id="reopen-reason">([^<]+)<', page)
    assert reason and f"visit {visit} changed by device dev-d2" in reason[1]
    assert 'id="approve-form"' in page, "it can be approved again"
    overview = text(rev_a.get(f"/review?until={WEEK}&weeks=1"))
    assert 'data-state="reopened"' in overview and f"visit {visit} changed" in overview
    assert [e.action for e in audit_entries(app)] == ["week.approved", "week.reopened"]


def test_sending_a_visit_back_by_form_reaches_the_doctor_and_the_audit(
    app: Any, seeded: dict[str, Any], rev_a: Pages
) -> None:
    visit = seeded["visits"][1]
    rev_a.get(f"/review/D2/{WEEK}")
    answer = rev_a.post(
        f"/review/D2/{WEEK}/send-back", {"visit": visit, "comment": "患者人数请核对"}
    )
    assert answer.status_code == 302, text(answer)
    [entry] = audit_entries(app)
    assert (entry.action, entry.subject_id, entry.reason) == (
        "visit.sent_back",
        visit,
        "患者人数请核对",
    )
    assert entry.before["version"] == 1 and entry.after["comment"] == "患者人数请核对"
    pulled = api_get(app, "d2", "/sync/pull?limit=500")["changes"]
    reviews = [c for c in pulled if c["collection"] == "reviews"]
    assert [(c["data"]["visit"], c["data"]["by"]) for c in reviews] == [(visit, "rev_a")]
    page = text(rev_a.get(f"/review/D2/{WEEK}"))
    assert 'data-action="visit.sent_back"' in page and "患者人数请核对" in page


def test_excusing_a_flag_by_form_records_it_and_the_flag_leaves_the_open_list(
    app: Any, seeded: dict[str, Any], rev_a: Pages
) -> None:
    page = text(rev_a.get(f"/review/D2/{WEEK}"))
    assert f'data-flag="{POSTING_WEEK_KEY}"' in page, "the posting flag is open"
    overview = text(rev_a.get(f"/review?until={WEEK}&weeks=1"))
    assert re.search(r'data-doctor="D2" data-week="2026-W02" [^>]*data-open-flags="[1-9]', overview)
    answer = rev_a.post(
        f"/review/D2/{WEEK}/excuse", {"flag": POSTING_WEEK_KEY, "reason": "村里停电一天"}
    )
    assert answer.status_code == 302, text(answer)
    [entry] = audit_entries(app)
    assert (entry.action, entry.subject_id, entry.reason) == (
        "flag.excused",
        POSTING_WEEK_KEY,
        "村里停电一天",
    )
    assert entry.before["state"] == "open" and entry.after["state"] == "excused"
    after = text(rev_a.get(f"/review/D2/{WEEK}"))
    assert f'data-flag="{POSTING_WEEK_KEY}"' not in after
    assert 'data-action="flag.excused"' in after, "the excuse stays on the week's trail"
    flags = api_get(app, "rev_a", "/flags?state=excused")["items"]
    assert [f["key"] for f in flags] == [POSTING_WEEK_KEY]
    again = rev_a.post(f"/review/D2/{WEEK}/excuse", {"flag": POSTING_WEEK_KEY, "reason": "x"})
    assert again.status_code == 409 and "not open" in text(again)


def test_deciding_leave_by_form_syncs_it_and_writes_the_audit(
    app: Any, seeded: dict[str, Any], rev_a: Pages
) -> None:
    rev_a.get(f"/review/D2/{WEEK}")
    approved = rev_a.post(
        f"/review/D2/{WEEK}/leave", {"leave": seeded["leave"], "decision": "approve", "reason": ""}
    )
    assert approved.status_code == 302, text(approved)
    refused = rev_a.post(
        f"/review/D2/{WEEK}/leave",
        {"leave": seeded["leave"], "decision": "refuse", "reason": "人手不足"},
    )
    assert refused.status_code == 302, text(refused)
    entries = audit_entries(app)
    assert [(e.action, e.reason) for e in entries] == [
        ("leave.approved", None),
        ("leave.refused", "人手不足"),
    ]
    pulled = api_get(app, "d2", "/sync/pull?limit=500")["changes"]
    [leave] = [c for c in pulled if c["collection"] == "leave"]
    assert (leave["version"], leave["data"]["status"]) == (3, "refused")


# --- the words ------------------------------------------------------------------------------


def test_every_text_of_the_pages_has_its_chinese_translation() -> None:
    from server.web.text import ZH

    root = Path(__file__).resolve().parents[3] / "server"
    sources = [*sorted((root / "web").glob("*.py")), *sorted((root / "templates").glob("*.html"))]
    literal = re.compile(r"""_\(\s*((?:"[^"]*"\s*)+|'[^']*')""")
    found: set[str] = set()
    for source in sources:
        for match in literal.finditer(source.read_text()):
            found.add("".join(re.findall(r'"([^"]*)"', match[1])) or match[1].strip("'"))
    assert len(found) > 60, "the scan finds the texts"
    missing = sorted(t for t in found if t not in ZH)
    assert missing == [], missing
    assert all(value.strip() and value != key for key, value in ZH.items())


# --- the county summary ---------------------------------------------------------------------


def test_the_county_page_downloads_the_same_files_as_the_api(
    app: Any, seeded: dict[str, Any]
) -> None:
    admin = Pages(app)
    admin.login("admin")
    page = admin.get("/county?month=2026-01")
    assert page.status_code == 200, text(page)
    assert 'href="/county/summary.xlsx?month=2026-01"' in text(page)
    client = app.test_client()
    headers = api_token(client, "admin")
    for extension in ("csv", "xlsx"):
        mine = admin.get(f"/county/summary.{extension}?month=2026-01")
        theirs = client.get(f"/api/v1/summaries.{extension}?month=2026-01", headers=headers)
        assert mine.status_code == theirs.status_code == 200
        assert mine.headers["Content-Disposition"] == theirs.headers["Content-Disposition"]
        assert mine.mimetype == theirs.mimetype
        if extension == "csv":
            assert mine.data == theirs.data, "the same bytes"
    assert admin.get("/county/summary.pdf?month=2026-01").status_code == 404


def test_a_township_reviewer_sees_only_their_township_in_the_summary(
    app: Any, seeded: dict[str, Any], rev_a: Pages
) -> None:
    page = text(rev_a.get("/county?month=2026-01"))
    assert 'data-unit="450999101"' in page and 'data-unit="450999102"' not in page
    other = rev_a.get("/county?month=2026-01&township=450999102")
    assert other.status_code == 404 and other.mimetype == "text/html"
    assert rev_a.get("/county/summary.csv?month=2026-01&township=450999102").status_code == 404
    neighbour = Pages(app)
    neighbour.login("admin_other")
    assert "<h1>邻县 · 2026-01</h1>" in text(neighbour.get("/county?month=2026-01"))


@pytest.mark.parametrize(
    ("query", "field"),
    [("month=2026-13", "month"), ("month=March", "month"), ("month=2026-01&view=pie", "view")],
)
def test_a_bad_summary_question_is_a_400_page_naming_the_parameter(
    app: Any, query: str, field: str
) -> None:
    admin = Pages(app)
    admin.login("admin")
    answer = admin.get(f"/county?{query}")
    assert answer.status_code == 400 and answer.mimetype == "text/html"
    assert f"<code>{field}</code>" in text(answer)


def test_pages_are_gzipped_for_a_browser_that_takes_gzip(
    app: Any, seeded: dict[str, Any], rev_a: Pages
) -> None:
    import gzip

    plain = rev_a.get(f"/review/D2/{WEEK}")
    assert "Content-Encoding" not in plain.headers
    packed = rev_a.client.get(f"/review/D2/{WEEK}", headers={"Accept-Encoding": "gzip, br"})
    assert packed.headers["Content-Encoding"] == "gzip"
    assert {"Accept-Encoding", "Cookie"} <= set(packed.vary)
    page = gzip.decompress(packed.data).decode()
    assert len(packed.data) < len(page) / 3
    # The same page but for the CSRF token, which is signed anew (with a timestamp).
    assert re.sub(r'value="[^"]+\.[^"]+"', "", page) == re.sub(
        r'value="[^"]+\.[^"]+"', "", text(plain)
    )
