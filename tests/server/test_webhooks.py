"""The outbound webhook (server/webhooks.py), on SQLite and PostgreSQL: events written with
the change they report, delivered signed to a real HTTP receiver on 127.0.0.1, retried with
backoff, given up after the last attempt, expired when old, leased to one of two deliverers."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from server import webhooks
from server.extensions import db
from server.models import WebhookEvent
from tests.builders import make_change, posting_day

SECRET = "s" * 40
AS_OF = "2026-01-11"
POSTING_WEEK_KEY = "posting.days_per_week|assignment|A2|2026-W02"


@pytest.fixture
def app_overrides() -> dict[str, Any]:
    return {"ZHUXUN_RULES_AS_OF": AS_OF}


class Receiver:
    """A real HTTP endpoint that answers `fail_first` requests with 503, then 204, and keeps
    what it was sent."""

    def __init__(self, fail_first: int = 0, delay: float = 0.0) -> None:
        self.fail_first = fail_first
        self.delay = delay
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    receiver.requests.append({"headers": dict(self.headers), "body": body})
                    failing = len(receiver.requests) <= receiver.fail_first
                time.sleep(receiver.delay)
                self.send_response(503 if failing else 204)
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


def settings(url: str, **overrides: Any) -> webhooks.Settings:
    return webhooks.Settings(url=url, secret=SECRET, timeout=5, **overrides)


def events(app: Any) -> list[WebhookEvent]:
    with app.app_context():
        rows = list(db.session.scalars(select(WebhookEvent).order_by(WebhookEvent.created_at)))
        db.session.expunge_all()
        return rows


def add_event(app: Any, *, at: datetime | None = None) -> str:
    with app.app_context():
        row = webhooks.enqueue(
            db.session, webhooks.FLAG_OPENED, {"key": "k1", "rule": "r"}, county_code="450226",
            at=at,
        )  # fmt: skip
        db.session.commit()
        return row.id


def test_a_flag_opened_by_a_push_and_a_send_back_are_each_one_event(api: Any, app: Any) -> None:
    d2, rev_a = api("d2"), api("rev_a")
    d2.push(*(make_change(posting_day(day)) for day in (5, 6, 7, 8)))
    opened = [e for e in events(app) if e.event == webhooks.FLAG_OPENED]
    assert POSTING_WEEK_KEY in {e.payload["key"] for e in opened}
    flag = next(e for e in opened if e.payload["key"] == POSTING_WEEK_KEY)
    assert flag.payload["doctor"] == "D2" and flag.payload["rule"] == "posting.days_per_week"
    assert flag.county_code and flag.state == "pending" and flag.attempts == 0

    d2.push(make_change(posting_day(9)))  # the same flag judged again: no second event
    assert len([e for e in events(app) if e.payload.get("key") == POSTING_WEEK_KEY]) == 1

    visit = make_change(posting_day(12))
    d2.push(visit)
    answer = rev_a.http.post(
        rev_a.url(f"/review/visits/{visit['id']}/send-back"), json={"comment": "请核对"}, timeout=30
    )
    assert answer.status_code == 200, answer.text
    sent = [e for e in events(app) if e.event == webhooks.VISIT_SENT_BACK]
    assert len(sent) == 1
    assert sent[0].payload["visit"] == visit["id"] and sent[0].payload["comment"] == "请核对"
    assert sent[0].payload["week"] == "2026-W03" and sent[0].payload["by"] == "rev_a"


def test_a_refused_send_back_leaves_no_event(api: Any, app: Any) -> None:
    d1, rev_b = api("d1"), api("rev_b")
    visit = make_change()
    d1.push(visit)
    before = len(events(app))
    answer = rev_b.http.post(
        rev_b.url(f"/review/visits/{visit['id']}/send-back"), json={"comment": "x"}, timeout=30
    )
    assert answer.status_code == 404
    assert len(events(app)) == before


def test_delivery_is_signed_and_retried_until_the_receiver_takes_it(app: Any) -> None:
    receiver = Receiver(fail_first=2)
    try:
        event_id = add_event(app)
        now = datetime.now(UTC)
        clock = {"now": now}
        with app.app_context():
            first = webhooks.deliver_due(
                db.session, settings(receiver.url), now=lambda: clock["now"]
            )
            assert (first.delivered, first.retrying) == (0, 1)
            assert "HTTP 503" in first.errors[0]
            row = db.session.get(WebhookEvent, event_id)
            assert row.attempts == 1 and row.state == "pending"
            due = webhooks._aware(row.next_attempt_at)
            assert now + timedelta(seconds=22) <= due <= now + timedelta(seconds=31)

            # Not due yet: nothing is sent.
            again = webhooks.deliver_due(
                db.session, settings(receiver.url), now=lambda: clock["now"]
            )
            assert again.total() == 0 and len(receiver.requests) == 1

            clock["now"] = now + timedelta(minutes=1)
            second = webhooks.deliver_due(
                db.session, settings(receiver.url), now=lambda: clock["now"]
            )
            assert second.retrying == 1
            row = db.session.get(WebhookEvent, event_id)
            db.session.refresh(row)
            # The second delay doubles the first (30 s, then 60 s, less up to a quarter).
            assert webhooks._aware(row.next_attempt_at) >= clock["now"] + timedelta(seconds=45)

            clock["now"] = now + timedelta(minutes=5)
            third = webhooks.deliver_due(
                db.session, settings(receiver.url), now=lambda: clock["now"]
            )
            assert third.delivered == 1
            db.session.refresh(row)
            assert row.state == "delivered" and row.attempts == 3 and row.last_error is None
    finally:
        receiver.stop()

    assert len(receiver.requests) == 3
    sent = receiver.requests[-1]
    headers = {k.lower(): v for k, v in sent["headers"].items()}
    assert headers["x-zhuxun-delivery"] == event_id
    assert headers["x-zhuxun-event"] == "flag.opened"
    assert webhooks.verify_signature(SECRET, headers["x-zhuxun-signature"], sent["body"])
    document = json.loads(sent["body"])
    assert document["id"] == event_id and document["data"] == {"key": "k1", "rule": "r"}
    assert document["county"] == "450226"


def test_signatures_refuse_tampering_another_secret_and_replay() -> None:
    body = b'{"id": "e1"}'
    header = webhooks.sign(SECRET, body, timestamp=int(time.time()))
    assert webhooks.verify_signature(SECRET, header, body)
    assert not webhooks.verify_signature(SECRET, header, body + b" ")
    assert not webhooks.verify_signature("t" * 40, header, body)
    old = webhooks.sign(SECRET, body, timestamp=int(time.time()) - 3600)
    assert not webhooks.verify_signature(SECRET, old, body)
    assert not webhooks.verify_signature(SECRET, "garbage", body)


def test_after_the_last_attempt_an_event_fails_and_can_be_queued_again(app: Any) -> None:
    receiver = Receiver(fail_first=100)
    try:
        event_id = add_event(app)
        clock = {"now": datetime.now(UTC)}
        with app.app_context():
            for _ in range(3):
                webhooks.deliver_due(
                    db.session, settings(receiver.url, max_attempts=3), now=lambda: clock["now"]
                )
                clock["now"] += timedelta(hours=2)
            row = db.session.get(WebhookEvent, event_id)
            assert row.state == "failed" and row.attempts == 3
            assert webhooks.retry_failed(db.session) == 1
            receiver.fail_first = 0
            report = webhooks.deliver_due(db.session, settings(receiver.url))
            assert report.delivered == 1
    finally:
        receiver.stop()
    assert len(receiver.requests) == 4


def test_an_unreachable_receiver_is_a_retry_not_a_crash(app: Any) -> None:
    add_event(app)
    with app.app_context():
        report = webhooks.deliver_due(db.session, settings("http://127.0.0.1:9/nothing"))
    assert report.retrying == 1 and "ConnectionError" in report.errors[0]


def test_old_events_expire_instead_of_flooding_a_late_receiver(
    app: Any, receiver: Receiver
) -> None:
    add_event(app, at=datetime.now(UTC) - timedelta(days=8))
    fresh = add_event(app)
    with app.app_context():
        report = webhooks.deliver_due(db.session, settings(receiver.url))
    assert (report.delivered, report.expired) == (1, 1)
    assert [json.loads(r["body"])["id"] for r in receiver.requests] == [fresh]


def test_two_deliverers_send_each_event_once(app: Any) -> None:
    receiver = Receiver(delay=0.05)
    try:
        for _ in range(12):
            add_event(app)
        reports: list[webhooks.DeliveryReport] = []

        def run() -> None:
            with app.app_context():
                reports.append(webhooks.deliver_due(db.session, settings(receiver.url), batch=3))
                db.session.remove()

        threads = [threading.Thread(target=run) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        receiver.stop()
    ids = [r["headers"]["X-Zhuxun-Delivery"] for r in receiver.requests]
    assert len(ids) == 12 and len(set(ids)) == 12
    assert sum(r.delivered for r in reports) == 12
    assert all(e.state == "delivered" for e in events(app))


def test_the_cli_delivers_and_reports(app: Any, receiver: Receiver, monkeypatch: Any) -> None:
    from server.cli import cli

    add_event(app)
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    connect_args = app.config.get("SQLALCHEMY_ENGINE_OPTIONS", {}).get("connect_args")
    if connect_args:  # the test's PostgreSQL schema, in the URL the CLI reads
        url += "?options=" + quote(connect_args["options"].replace(" ", ""))
    monkeypatch.setenv("ZHUXUN_DATABASE_URL", url)
    monkeypatch.setenv("ZHUXUN_ENV", "development")
    runner = CliRunner()
    missing = runner.invoke(cli, ["webhooks", "deliver"])
    assert missing.exit_code != 0 and "ZHUXUN_WEBHOOK_URL is not set" in missing.output

    monkeypatch.setenv("ZHUXUN_WEBHOOK_URL", receiver.url)
    monkeypatch.setenv("ZHUXUN_WEBHOOK_SECRET", "short")
    weak = runner.invoke(cli, ["webhooks", "deliver"])
    assert weak.exit_code != 0 and "ZHUXUN_WEBHOOK_SECRET must be set" in weak.output

    monkeypatch.setenv("ZHUXUN_WEBHOOK_SECRET", SECRET)
    done = runner.invoke(cli, ["webhooks", "deliver"])
    assert done.exit_code == 0, done.output
    assert "1 delivered" in done.output
    status = runner.invoke(cli, ["webhooks", "status"])
    assert "delivered  1" in status.output
