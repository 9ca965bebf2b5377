"""Hostile input (issue 13): no value, body or parameter makes a request answer 5xx or
poisons a pull. Each class of docs/reliability.md's catalogue has its instances pinned
here and a hypothesis property over generated values, on SQLite and on PostgreSQL (the
`app` fixture runs both). Requests go through Flask's test client: the whole WSGI app, its
JSON encoding and error handlers, without a socket per example."""

from __future__ import annotations

import json
import logging
import re
from datetime import date, timedelta
from html import unescape
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forms.definitions import DATE_BOUNDS_MESSAGE
from sync.protocol import ErrorCode
from tests.builders import PASSWORD, VILLAGE_A1, VILLAGE_B1, make_change, new_id, visit_data
from tests.reliability.hostile import (
    Raw,
    deep,
    dumps,
    extreme_dates,
    hostile_params,
    hostile_text,
    hostile_values,
)
from tests.reliability.support import LONG

EXAMPLES = 200 if LONG else 25
# Function-scoped fixtures (one app per test, shared by its examples) are what we want here:
# every example writes fresh ids, and the state they leave is more hostile input.
PROPERTY = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=not LONG,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


class Client:
    """A signed-in test client that can send any text and any URL bytes."""

    def __init__(self, app: Any, username: str) -> None:
        self.app = app
        self.http = app.test_client()
        answer = self.http.post(
            "/api/v1/auth/login", json={"username": username, "password": PASSWORD}
        )
        assert answer.status_code == 200, answer.get_data(as_text=True)
        self.tokens = answer.get_json()
        self.headers = {"Authorization": f"Bearer {self.tokens['access_token']}"}

    def send(self, method: str, path: str, text: str | None = None, **kwargs: Any) -> Any:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        if text is not None:
            headers.setdefault("Content-Type", "application/json")
            kwargs["data"] = text.encode("utf-8", "surrogatepass")
        return self.http.open(path, method=method, headers=headers, **kwargs)

    def get(self, path: str, **params: str) -> Any:
        return self.send("GET", url(path, **params))

    def push(self, *changes: Any, **batch: Any) -> Any:
        body = {"device_id": "tab-h", "batch_id": new_id(), "changes": list(changes), **batch}
        return self.send("POST", "/api/v1/sync/push", dumps(body))

    def pull_all(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Every change in scope, and every record reported as unservable."""
        changes: list[dict[str, Any]] = []
        unservable: list[dict[str, Any]] = []
        cursor = ""
        while True:
            answer = self.get("/api/v1/sync/pull", cursor=cursor, limit="5000")
            assert answer.status_code == 200, answer.get_data(as_text=True)
            page = json.loads(answer.get_data())
            changes.extend(page["changes"])
            unservable.extend(page.get("unservable", []))
            cursor = page["cursor"]
            if not page["has_more"]:
                return changes, unservable


def url(path: str, **params: str) -> str:
    """`path?name=value…` with each value percent-encoded byte for byte (a lone surrogate
    goes as the bytes a careless encoder makes of it)."""
    if not params:
        return path
    query = "&".join(
        f"{name}={quote(value.encode('utf-8', 'surrogatepass'))}" for name, value in params.items()
    )
    return f"{path}?{query}"


@pytest.fixture
def client(app: Any) -> Any:
    return lambda username: Client(app, username)


def assert_envelope(answer: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert answer.status_code == status, answer.get_data(as_text=True)[:500]
    error = answer.get_json()["error"]
    assert {"code", "message", "message_zh"} <= set(error), error
    if code is not None:
        assert error["code"] == code, error
    return dict(error)


def only_result(answer: Any) -> dict[str, Any]:
    assert answer.status_code == 200, answer.get_data(as_text=True)[:500]
    (result,) = answer.get_json()["results"]
    return dict(result)


# --- 1. every accepted record can be sent back -------------------------------------------


@pytest.mark.parametrize(
    ("where", "change", "field"),
    [
        ("a lone surrogate in notes", make_change(visit_data(notes="ok \ud800")), "data.notes"),
        ("a low surrogate alone", make_change(visit_data(notes="\udfff")), "data.notes"),
        ("a NUL in notes", make_change(visit_data(notes="a\x00b")), "data.notes"),
        ("a surrogate in an unknown field", make_change({**visit_data(), "x": "\ud800"}), "data.x"),
        ("a surrogate in a field name", make_change({**visit_data(), "k\ud800": 1}), "data"),
        ("patients beyond 64 bits", make_change(visit_data(patients=2**64)), "data.patients"),
        (
            "patients of 5,000 digits",
            make_change(visit_data(patients=Raw("7" * 5000))),
            "data.patients",
        ),
        ("latitude 1e400", make_change(visit_data(lat=Raw("1e400"))), "data.lat"),
        ("latitude NaN", make_change(visit_data(lat=Raw("NaN"))), "data.lat"),
        ("base_version beyond 64 bits", make_change(base_version=2**64), "base_version"),
        ("base_version of 400 digits", make_change(base_version=Raw("1" * 400)), "base_version"),
        ("an hlc with non-ASCII digits", make_change(hlc="²²-1-tab"), "hlc"),
        ("an hlc of 5,000 digits", make_change(hlc="1" * 5000 + "-1-tab"), "hlc"),
    ],
)
def test_a_value_that_cannot_be_stored_or_served_is_rejected_alone_with_its_field(
    client: Any, where: str, change: dict[str, Any], field: str
) -> None:
    d1 = client("d1")
    good = make_change()
    answer = d1.push(change, good)
    assert answer.status_code == 200, answer.get_data(as_text=True)[:500]
    bad_result, good_result = answer.get_json()["results"]
    assert bad_result["status"] == "rejected", where
    assert field in bad_result["errors"], bad_result
    assert good_result["status"] == "accepted"
    pulled, unservable = d1.pull_all()
    assert {c["id"] for c in pulled if c["collection"] == "visits"} == {good["id"]}
    assert unservable == []


def test_a_bad_id_is_echoed_only_as_servable_text(client: Any) -> None:
    answer = client("d1").push(make_change(record_id="v\ud800\x00"))
    result = only_result(answer)
    assert result["status"] == "rejected" and "id" in result["errors"]
    result["id"].encode("utf-8")
    assert "\x00" not in result["id"]


def _poison(
    app: Any,
    record_id: str,
    notes: str = "before the fix \ud800",
    *,
    collection: str = "visits",
    field: str = "notes",
) -> None:
    """Store what the server accepted before issue 13: a record whose text holds a lone
    surrogate (SQLAlchemy writes it as the JSON escape; SQLite and PostgreSQL's json keep it)."""
    from sqlalchemy.orm.attributes import flag_modified

    from server.extensions import db
    from server.models import SyncRecord

    with app.app_context():
        row = db.session.get(SyncRecord, (collection, record_id))
        row.data = {**row.data, field: notes}
        flag_modified(row, "data")
        db.session.commit()


def test_a_stored_record_that_cannot_be_served_is_reported_and_the_rest_of_the_pull_served(
    app: Any, client: Any
) -> None:
    d1 = client("d1")
    poisoned, healthy = make_change(), make_change(visit_data(patients=4))
    assert [r["status"] for r in d1.push(poisoned, healthy).get_json()["results"]] == [
        "accepted",
        "accepted",
    ]
    _poison(app, poisoned["id"])
    for who in ("d1", "rev_a", "admin"):
        pulled, unservable = client(who).pull_all()
        ids = {c["id"] for c in pulled if c["collection"] == "visits"}
        assert healthy["id"] in ids and poisoned["id"] not in ids, who
        assert [(u["collection"], u["id"]) for u in unservable] == [("visits", poisoned["id"])]
        assert unservable[0]["reason"]
    # Readers of the JSON API get the stored text back losslessly, as a JSON escape.
    one = d1.get(f"/api/v1/visits/{poisoned['id']}")
    assert one.status_code == 200
    assert json.loads(one.get_data())["data"]["notes"] == "before the fix \ud800"
    listed = d1.get("/api/v1/visits")
    assert listed.status_code == 200
    # A conflict answer carrying the stored version is not a 500 either.
    edit = make_change(visit_data(patients=5), record_id=poisoned["id"], base_version=0)
    assert only_result(d1.push(edit))["status"] == "conflict"


def test_a_stored_record_that_cannot_be_served_breaks_no_page_export_or_evaluation(
    app: Any, client: Any
) -> None:
    d1 = client("d1")
    visit = make_change()  # 2026-03-10, in 2026-W11
    leave = make_change(
        {"doctor": "D1", "start": "2026-03-11", "end": "2026-03-11", "reason": "x"},
        collection="leave",
    )
    assert [r["status"] for r in d1.push(visit, leave).get_json()["results"]] == [
        "accepted",
        "accepted",
    ]
    _poison(app, visit["id"])
    _poison(app, leave["id"], collection="leave", field="reason")
    # A reviewer's correction keeps the stored version in the audit trail the page shows.
    corrected = visit_data(patients=3)
    put = client("rev_a").send(
        "PUT",
        f"/api/v1/visits/{visit['id']}",
        json.dumps({"base_version": 1, "data": corrected}),
    )
    assert put.status_code == 200, put.get_data(as_text=True)[:300]
    pages = _page_client(app, "admin")
    for path in ("/review/D1/2026-W11", "/review?until=2026-W11", "/county?month=2026-03"):
        page = pages.get(path)
        assert page.status_code == 200, (path, page.get_data(as_text=True)[:300])
    assert pages.get("/county/summary.csv?month=2026-03").status_code == 200
    admin = client("admin")
    for path in ("/api/v1/review/weeks/D1/2026-W11", "/api/v1/summaries.xlsx?month=2026-03"):
        assert admin.get(path).status_code == 200, path
    assert admin.get("/api/v1/leave").status_code == 200
    _evaluate_everything(app)


@pytest.mark.parametrize("username", ["d1\x00", "\x00"])
def test_a_sign_in_with_a_nul_is_refused_on_the_api_and_the_page(app: Any, username: str) -> None:
    http = app.test_client()
    answer = http.post("/api/v1/auth/login", json={"username": username, "password": "x" * 9})
    assert answer.status_code == 400 and "username" in answer.get_json()["error"]["errors"]
    form = _CSRF.search(http.get("/login").get_data(as_text=True))
    assert form is not None
    page = http.post(
        "/login",
        data={"username": username, "password": "x" * 9, "csrf_token": unescape(form[1])},
    )
    assert page.status_code in (200, 400, 401) and page.mimetype == "text/html"


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/review/D1/2026-W10/leave", "leave"),
        ("/review/D1/2026-W10/excuse", "flag"),
        ("/review/D1/2026-W10/send-back", "visit"),
    ],
)
def test_a_nul_in_any_field_of_a_page_form_gets_a_400_page(app: Any, path: str, field: str) -> None:
    pages = _page_client(app, "admin")
    form = _CSRF.search(pages.get("/review/D1/2026-W10").get_data(as_text=True))
    assert form is not None
    data = {field: "x\x00", "reason": "r", "comment": "c", "decision": "approve"}
    page = pages.post(path, data={**data, "csrf_token": unescape(form[1])})
    assert page.status_code == 400 and page.mimetype == "text/html"
    assert "NUL characters are not allowed" in page.get_data(as_text=True)


def test_a_page_shows_unservable_stored_text_with_a_replacement_character(app: Any) -> None:
    from flask import render_template_string

    with app.test_request_context("/review"):
        html = render_template_string("<p>{{ text }}</p>", text="before the fix \ud800 村")
    assert html.encode("utf-8") == "<p>before the fix \ufffd 村</p>".encode()


def test_a_reviewers_text_with_a_nul_is_refused_on_the_api_and_the_pages(
    app: Any, client: Any
) -> None:
    answer = client("admin").send(
        "POST", "/api/v1/review/weeks/D1/2026-W10/approve", json.dumps({"reason": "a\x00b"})
    )
    error = assert_envelope(answer, 400)
    assert "reason" in error["errors"]
    pages = _page_client(app, "admin")
    form = _CSRF.search(pages.get("/review/D1/2026-W10").get_data(as_text=True))
    assert form is not None
    page = pages.post(
        "/review/D1/2026-W10/approve",
        data={"reason": "a\x00b", "csrf_token": unescape(form[1])},
    )
    assert page.status_code == 400 and page.mimetype == "text/html"


# --- 2. numbers and digits --------------------------------------------------------------

QUERY_NUMBERS = [
    ("d1", "/api/v1/sync/pull", "limit"),
    ("d1", "/api/v1/sync/pull", "cursor"),
    ("d1", "/api/v1/visits", "limit"),
    ("d1", "/api/v1/visits", "offset"),
    ("d1", "/api/v1/flags", "limit"),
    ("d1", "/api/v1/flags", "offset"),
    ("admin", "/api/v1/review/audit", "limit"),
    ("admin", "/api/v1/review/audit", "offset"),
    ("admin", "/api/v1/summaries/charts/compliance-trend.svg", "months"),
    ("admin", "/api/v1/summaries/charts/duty-heatmap.svg?doctor=D1&x", "weeks"),
]


@pytest.mark.parametrize("digits", ["²", "١٢", "𝟙𝟚", "1²", "9" * 5000, "-1", "+1", " 1"])
@pytest.mark.parametrize(("who", "path", "name"), QUERY_NUMBERS)
def test_a_number_in_a_query_is_ascii_digits_only(
    client: Any, who: str, path: str, name: str, digits: str
) -> None:
    joiner = "&" if "?" in path else "?"
    answer = client(who).send("GET", f"{path}{joiner}{name}={quote(digits)}")
    error = assert_envelope(
        answer, 400, ErrorCode.INVALID_CURSOR if name == "cursor" else ErrorCode.INVALID_REQUEST
    )
    assert name in error.get("errors", {}), error


@pytest.mark.parametrize("digits", ["²", "1²", "9" * 5000])
def test_a_number_in_a_page_query_is_ascii_digits_only(app: Any, digits: str) -> None:
    page = _page_client(app, "admin").get(f"/review?weeks={quote(digits)}")
    assert page.status_code == 400
    assert page.mimetype == "text/html"


def test_a_cursor_beyond_the_servers_position_is_invalid(client: Any) -> None:
    d1 = client("d1")
    _pulled, _ = d1.pull_all()
    cursor = d1.get("/api/v1/sync/pull").get_json()["cursor"]
    beyond = str(int(cursor) + 1000)
    error = assert_envelope(
        d1.get("/api/v1/sync/pull", cursor=beyond), 400, ErrorCode.INVALID_CURSOR
    )
    assert "cursor" in error["errors"]
    assert d1.get("/api/v1/sync/pull", cursor=cursor).status_code == 200


# --- 3. structure ------------------------------------------------------------------------


def _json_endpoints(app: Any) -> list[tuple[str, str]]:
    """Every POST, PUT and PATCH under /api/v1 from the app's URL map, path variables
    filled with a plain id (the deep body must be refused before anything else)."""
    found = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1"):
            continue
        for method in sorted((rule.methods or set()) & {"POST", "PUT", "PATCH"}):
            path = rule.rule
            for arg in rule.arguments:
                path = path.replace(f"<path:{arg}>", "x").replace(f"<{arg}>", "visits")
            found.append((method, path))
    return sorted(set(found))


@pytest.mark.parametrize("kind", ["array", "object"])
def test_a_deeply_nested_body_is_a_400_on_every_json_endpoint(
    app: Any, client: Any, kind: str
) -> None:
    admin = client("admin")
    endpoints = _json_endpoints(app)
    assert len(endpoints) >= 10, endpoints
    refused = {}
    # Sign-out last: it revokes the token the others use.
    for method, path in sorted(endpoints, key=lambda e: e[1].endswith("/logout")):
        answer = admin.send(method, path, deep(50_000, kind=kind))
        refused[(method, path)] = answer.status_code
        assert answer.status_code < 500, (method, path, answer.get_data(as_text=True)[:300])
        assert answer.is_json, (method, path)
    readers = {
        k: v for k, v in refused.items() if "audit" not in k[1] and not k[1].endswith("refresh")
    }
    assert set(readers.values()) == {400}, readers
    assert refused[("POST", "/api/v1/sync/push")] == 400
    assert refused[("POST", "/api/v1/auth/login")] == 400


_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def _page_client(app: Any, username: str) -> Any:
    """A signed-in client of the pages (the sign-in form with its CSRF token)."""
    http = app.test_client()
    form = _CSRF.search(http.get("/login").get_data(as_text=True))
    assert form is not None
    page = http.post(
        "/login",
        data={"username": username, "password": PASSWORD, "csrf_token": unescape(form[1])},
        follow_redirects=False,
    )
    assert page.status_code in (302, 303), page.get_data(as_text=True)[:300]
    return http


@pytest.mark.parametrize(
    "path",
    [
        "/login",
        "/logout",
        "/review/D1/2026-W11/approve",
        "/review/D1/2026-W11/send-back",
        "/review/D1/2026-W11/excuse",
        "/review/D1/2026-W11/leave",
    ],
)
def test_a_deeply_nested_json_body_posted_to_a_page_gets_a_page_not_a_500(
    app: Any, path: str
) -> None:
    http = _page_client(app, "admin")
    answer = http.post(path, data=deep(50_000), content_type="application/json")
    assert 400 <= answer.status_code < 500 or answer.status_code in (302, 303)
    assert answer.mimetype == "text/html", answer.mimetype


# --- 4. dates ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("check_in", "check_out"),
    [
        ("0001-01-01T08:00:00+08:00", "0001-01-01T12:00:00+08:00"),
        ("0001-01-01T00:00:00+14:00", "0001-01-01T01:00:00+14:00"),
        ("1999-12-31T08:00:00+08:00", "1999-12-31T12:00:00+08:00"),
    ],
)
def test_a_visit_dated_before_the_bound_is_rejected_naming_the_bound(
    client: Any, check_in: str, check_out: str
) -> None:
    d1 = client("d1")
    result = only_result(
        d1.push(make_change(visit_data(check_in=check_in, check_out=check_out, recorded_at=None)))
    )
    assert result["status"] == "rejected"
    assert DATE_BOUNDS_MESSAGE in result["errors"]["data.check_in"]


@pytest.mark.parametrize("day", ["0001-01-01", "9999-12-31", "1999-12-31", "2100-01-01"])
def test_leave_and_training_beyond_the_bounds_are_rejected_naming_the_bound(
    client: Any, day: str
) -> None:
    d1 = client("d1")
    leave = make_change(
        {"doctor": "D1", "start": day, "end": day, "reason": "x"}, collection="leave"
    )
    training = make_change(
        {"doctor": "D1", "start": day, "end": day, "title": "x"}, collection="trainings"
    )
    answer = d1.push(leave, training)
    for result in answer.get_json()["results"]:
        assert result["status"] == "rejected"
        assert DATE_BOUNDS_MESSAGE in result["errors"]["data.start"]


def test_leave_at_the_edges_of_the_bounds_is_accepted_and_evaluations_still_run(
    app: Any, client: Any
) -> None:
    d1 = client("d1")
    changes = [
        make_change({"doctor": "D1", "start": day, "end": day}, collection="leave")
        for day in ("2000-01-01", "2099-12-31")
    ]
    answer = d1.push(*changes)
    assert [r["status"] for r in answer.get_json()["results"]] == ["accepted", "accepted"]
    _evaluate_everything(app)


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/api/v1/summaries?month=0001-01", 400),
        ("/api/v1/summaries?month=9999-12", 400),
        ("/api/v1/summaries?month=²⁰²⁶-03", 400),
        ("/api/v1/summaries.csv?month=9999-12", 400),
        ("/api/v1/summaries/charts/coverage-map.svg?month=9999-12", 400),
        ("/api/v1/review/weeks/D1/0001-W01", 400),
        ("/api/v1/review/weeks/D1/9999-W52", 400),
        ("/api/v1/review/weeks/D1/2026-W99", 400),
        ("/api/v1/review/weeks/D1/2099-W53", 200),  # 2099-12-31 is in it
        ("/api/v1/review/weeks/D1/2110-W01", 400),
        ("/api/v1/review/weeks/D1/1989-W52", 400),
        ("/api/v1/review/weeks/D1/1990-W02", 200),
        ("/api/v1/review/weeks/D1/2099-W52", 200),
        ("/api/v1/review/weeks/D1/2000-W01", 200),
        ("/api/v1/summaries?month=2099-12", 400),  # after the date of the figures
        ("/api/v1/summaries?month=2000-01", 200),
    ],
)
def test_periods_in_the_api_are_bounded_and_answered_at_the_bounds(
    client: Any, path: str, status: int
) -> None:
    answer = client("admin").send("GET", path)
    assert answer.status_code == status, answer.get_data(as_text=True)[:300]
    if status == 400:
        assert_envelope(answer, 400)


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/review/D1/0001-W01", 400),
        ("/review/D1/9999-W52", 400),
        ("/review?until=9999-W52", 400),
        ("/review?until=0001-W01", 400),
        ("/county?month=9999-12", 400),
        ("/county?month=0001-01", 400),
        ("/county/summary.csv?month=9999-12", 400),
        ("/review/D1/2099-W52", 200),
        ("/review?until=2000-W01", 200),
        ("/county?month=2000-01", 200),
    ],
)
def test_periods_in_the_pages_are_bounded_and_answered_at_the_bounds(
    app: Any, path: str, status: int
) -> None:
    answer = _page_client(app, "admin").get(path)
    assert answer.status_code == status, answer.get_data(as_text=True)[:300]
    assert answer.mimetype in ("text/html", "text/csv")


# --- 5. a stored batch never answers 500 ------------------------------------------------


@pytest.mark.parametrize("clock", ["²²²-1-tab", "1" * 5000 + "-1-tab", "12", "1-2-\ud800", ""])
def test_an_invalid_device_clock_is_a_field_error_and_nothing_is_written(
    client: Any, clock: str
) -> None:
    d1 = client("d1")
    change = make_change()
    error = assert_envelope(d1.push(change, clock=clock), 400, ErrorCode.INVALID_REQUEST)
    assert "clock" in error["errors"]
    pulled, _ = d1.pull_all()
    assert change["id"] not in {c["id"] for c in pulled}
    # The same batch with a good clock goes through.
    assert only_result(d1.push(change))["status"] == "accepted"


def test_a_device_clock_years_ahead_is_not_merged_and_the_batch_is_stored(client: Any) -> None:
    d1 = client("d1")
    ahead = f"{9 * 10**14:015d}-0000000000-tab"  # the year 30,000
    answer = d1.push(make_change(), clock=ahead)
    assert only_result(answer)["status"] == "accepted"
    assert answer.get_json()["clock"] < ahead


def test_work_after_the_commit_that_fails_does_not_fail_the_push_or_its_resend(
    client: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from server import flags

    def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("evaluation broke after the commit")

    monkeypatch.setattr(flags, "judge_entries", broken)
    d1 = client("d1")
    change = make_change()
    caplog.set_level(logging.ERROR)
    first = d1.push(change, batch_id="b-after-commit")
    assert only_result(first)["status"] == "accepted"
    again = d1.push(change, batch_id="b-after-commit")
    assert again.get_json()["results"] == first.get_json()["results"]
    assert "evaluation broke after the commit" in caplog.text


def test_an_after_push_hook_that_raises_does_not_fail_the_stored_push(
    client: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from server import flags

    def broken(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("the hook broke after the commit")

    monkeypatch.setattr(flags, "settle_stale", broken)
    d1 = client("d1")
    change = make_change()
    caplog.set_level(logging.ERROR)
    first = d1.push(change, batch_id="b-hook")
    assert only_result(first)["status"] == "accepted"
    assert d1.push(change, batch_id="b-hook").get_json()["results"] == first.get_json()["results"]
    assert "the push stands" in caplog.text
    pulled, _ = d1.pull_all()
    assert change["id"] in {c["id"] for c in pulled}


# --- 7. one error envelope ----------------------------------------------------------------


def test_every_error_code_has_a_chinese_message() -> None:
    from server.errors import envelope

    for code in ErrorCode:
        body = envelope(code, "x")["error"]
        assert body.get("message_zh"), code


def test_an_expired_and_a_revoked_token_answer_in_the_whole_envelope(app: Any, client: Any) -> None:
    from flask_jwt_extended import create_access_token

    with app.app_context():
        expired = create_access_token(identity="d1", expires_delta=timedelta(seconds=-60))
    http = app.test_client()
    answer = http.get("/api/v1/me", headers={"Authorization": f"Bearer {expired}"})
    assert_envelope(answer, 401, ErrorCode.TOKEN_EXPIRED)
    d1 = client("d1")
    assert d1.send("POST", "/api/v1/auth/logout").status_code == 200
    assert_envelope(d1.get("/api/v1/me"), 401, ErrorCode.TOKEN_REVOKED)
    assert_envelope(http.get("/api/v1/me"), 401, ErrorCode.UNAUTHORIZED)
    assert_envelope(
        http.get("/api/v1/me", headers={"Authorization": "Bearer x.y.z"}), 401, "unauthorized"
    )


# --- the properties -------------------------------------------------------------------------

VISIT_FIELDS = list(visit_data()) + ["notes", "accuracy_m", "unknown_field"]
CHANGE_FIELDS = ["id", "change_id", "base_version", "hlc", "op", "collection", "resolves"]


@st.composite
def hostile_changes(draw: Any) -> dict[str, Any]:
    """A visit of D1 with a few of its fields, or of its change record, made hostile."""
    data = visit_data(
        check_in="2026-03-10T08:00:00+08:00",
        check_out="2026-03-10T12:00:00+08:00",
        recorded_at="2026-03-10T12:05:00+08:00",
    )
    for name in draw(st.lists(st.sampled_from(VISIT_FIELDS), max_size=3, unique=True)):
        value = draw(extreme_dates if name.startswith("check") else hostile_values)
        data[name] = value
    change = make_change(data)
    for name in draw(st.lists(st.sampled_from(CHANGE_FIELDS), max_size=2, unique=True)):
        change[name] = draw(hostile_values)
    return change


def _evaluate_everything(app: Any) -> None:
    """Every rule over the whole county, as `zhuxun reevaluate` runs it: must not raise."""
    from server import flags
    from server.extensions import db

    with app.app_context():
        flags.evaluate_all(
            db.session,
            ruleset=app.config["ZHUXUN_RULESET"],
            as_of=date(2026, 3, 31),
            cause="test",
        )


def test_property_a_hostile_batch_is_answered_record_by_record_and_what_is_accepted_pulls_back(
    app: Any, client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from forms import validate

    d1 = client("d1")
    accepted: dict[str, dict[str, Any]] = {}
    caplog.set_level(logging.ERROR)

    @PROPERTY
    @given(st.lists(hostile_changes(), min_size=1, max_size=5))
    def push_hostile(changes: list[dict[str, Any]]) -> None:
        answer = d1.push(*changes)
        assert answer.status_code in (200, 400), answer.get_data(as_text=True)[:500]
        if answer.status_code == 400:
            return  # the batch itself was malformed (a change record that is not an object)
        results = answer.get_json()["results"]
        assert len(results) == len(changes)
        for change, result in zip(changes, results, strict=True):
            assert result["status"] in ("accepted", "rejected", "duplicate", "conflict")
            if result["status"] == "accepted" and change.get("op", "upsert") == "upsert":
                normal = validate("visits", json.loads(dumps(change["data"])))
                accepted[change["id"]] = normal.data

    push_hostile()
    pulled, unservable = d1.pull_all()
    assert unservable == []
    served = {c["id"]: c["data"] for c in pulled if c["collection"] == "visits"}
    for record_id, data in accepted.items():
        assert served.get(record_id) == data, record_id
    assert "Traceback" not in caplog.text and "failed" not in caplog.text, caplog.text
    _evaluate_everything(app)


def test_property_no_json_body_makes_any_endpoint_answer_5xx(app: Any, client: Any) -> None:
    admin, d1 = client("admin"), client("d1")
    endpoints = _json_endpoints(app)
    bodies = st.one_of(
        hostile_values.map(dumps),
        st.dictionaries(
            st.sampled_from(
                ["username", "password", "refresh_token", "reason", "comment", "data"]
                + ["base_version", "device_id", "batch_id", "changes", "clock", "sent_at"]
            ),
            hostile_values,
        ).map(dumps),
        st.integers(33, 3000).map(deep),
        hostile_text,
    )

    @PROPERTY
    @given(st.sampled_from(endpoints), bodies, st.booleans())
    def post_anything(endpoint: tuple[str, str], body: str, as_admin: bool) -> None:
        method, path = endpoint
        if path.endswith("/logout"):
            return  # it would revoke the token the next examples use (covered above)
        who = admin if as_admin else d1
        answer = who.send(method, path, body)
        assert answer.status_code < 500, (method, path, body[:200], answer.get_data()[:300])
        assert answer.is_json

    post_anything()


# Query parameters of the pages (the API's come from its OpenAPI document).
PAGE_PARAMETERS = {
    "/review": ["weeks", "until", "township"],
    "/county": ["month", "township", "view"],
    "/county/summary.csv": ["month", "township", "view"],
    "/review/D1/2026-W11": [],
}


def _api_parameters(app: Any) -> dict[str, list[str]]:
    document = app.test_client().get("/api/v1/openapi.json").get_json()
    found: dict[str, list[str]] = {}
    for path, operations in document["paths"].items():
        if "get" not in operations:
            continue
        concrete = (
            path.replace("{collection}", "visits")
            .replace("{record_id}", "x")
            .replace("{name}", "duty-heatmap")
            .replace("{doctor}", "D1")
            .replace("{week}", "2026-W11")
        )
        params = operations["get"].get("parameters", []) + operations.get("parameters", [])
        found[concrete] = [p["name"] for p in params if p["in"] == "query"]
    return found


def test_property_no_query_parameter_or_path_segment_makes_any_get_answer_5xx(
    app: Any, client: Any
) -> None:
    admin, d1 = client("admin"), client("d1")
    pages = _page_client(app, "admin")
    api = _api_parameters(app)
    assert sum(len(names) for names in api.values()) >= 15, api
    targets = [(path, names, False) for path, names in api.items()] + [
        (path, names, True) for path, names in PAGE_PARAMETERS.items()
    ]

    @PROPERTY
    @given(
        st.sampled_from(targets),
        st.dictionaries(st.integers(0, 5), hostile_params, max_size=3),
        st.booleans(),
        hostile_params,
    )
    def get_anything(
        target: tuple[str, list[str], bool], values: dict[int, str], as_admin: bool, segment: str
    ) -> None:
        path, names, is_page = target
        params = {names[i % len(names)]: v for i, v in values.items()} if names else {}
        if "/x" in path:
            path = path.replace("/x", "/" + quote(segment.encode("utf-8", "surrogatepass"), ""))
        target_url = url(path, **params)
        answer = (
            pages.get(target_url)
            if is_page
            else (admin if as_admin else d1).send("GET", target_url)
        )
        assert answer.status_code < 500, (target_url, answer.get_data()[:300])
        if is_page:
            assert answer.mimetype in ("text/html", "text/csv"), answer.mimetype
        elif answer.status_code >= 400:
            assert_envelope(answer, answer.status_code)

    get_anything()


# --- 9. who sees a visit ----------------------------------------------------------------


def test_a_visit_in_another_township_is_seen_by_both_townships_reviewers(client: Any) -> None:
    d1 = client("d1")  # D1 works in township A; VILLAGE_B1 is in township B
    change = make_change(visit_data(place=VILLAGE_B1, assignment=None))
    assert only_result(d1.push(change))["status"] == "accepted"
    for who in ("rev_a", "rev_b", "admin"):
        reviewer = client(who)
        assert reviewer.get(f"/api/v1/visits/{change['id']}").status_code == 200, who
        pulled, _ = reviewer.pull_all()
        assert change["id"] in {c["id"] for c in pulled}, who
    assert client("d3").get(f"/api/v1/visits/{change['id']}").status_code == 404
    home = make_change(visit_data(place=VILLAGE_A1))
    assert only_result(d1.push(home))["status"] == "accepted"
    assert client("rev_b").get(f"/api/v1/visits/{home['id']}").status_code == 404
