"""Outbound notifications: a signed webhook when a flag opens or a visit is sent back, so a
county can forward it to SMS or WeChat Work.

The shape is a transactional outbox. `enqueue` adds a `webhook_events` row in the same
transaction as the change it reports, so an event exists exactly when its change committed.
`deliver_due` (run by `zhuxun webhooks run`, any number of processes) leases due rows,
POSTs each one, and records the answer: 2xx delivers it, anything else schedules a retry
with exponential backoff until `max_attempts`, after which the event is `failed` and kept
for `zhuxun webhooks retry`. Delivery is at least once (a receiver that answers after the
lease ran out may see an event twice): receivers de-duplicate on `X-Zhuxun-Delivery`.

Every request carries `X-Zhuxun-Signature: t=<unix seconds>,v1=<hex>`, the HMAC-SHA256 of
`"<t>." + body` under the shared secret; `verify_signature` is what a receiver runs.

No Flask here: the CLI passes the settings in.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from server.models import WebhookEvent

FLAG_OPENED = "flag.opened"
VISIT_SENT_BACK = "visit.sent_back"
EVENTS = (FLAG_OPENED, VISIT_SENT_BACK)

PENDING, DELIVERED, FAILED, EXPIRED = "pending", "delivered", "failed", "expired"

SIGNATURE_HEADER = "X-Zhuxun-Signature"
EVENT_HEADER = "X-Zhuxun-Event"
DELIVERY_HEADER = "X-Zhuxun-Delivery"


@dataclass(frozen=True)
class Settings:
    url: str
    secret: str
    timeout: float = 10.0
    max_attempts: int = 8
    # Events older than this are not sent any more (a receiver wired up late is not
    # flooded with last month's flags); they stay in the table as `expired`.
    max_age: timedelta = timedelta(days=7)
    first_retry: timedelta = timedelta(seconds=30)
    last_retry: timedelta = timedelta(hours=1)


def enqueue(
    session: Session,
    event: str,
    payload: dict[str, Any],
    *,
    county_code: str | None,
    at: datetime | None = None,
) -> WebhookEvent:
    """Add an event to the caller's transaction; it is sent only if that transaction commits."""
    if event not in EVENTS:
        raise ValueError(f"unknown webhook event {event!r}")
    now = at or datetime.now(UTC)
    row = WebhookEvent(
        id=uuid.uuid4().hex,
        event=event,
        payload=payload,
        county_code=county_code,
        created_at=now,
        state=PENDING,
        attempts=0,
        next_attempt_at=now,
    )
    session.add(row)
    return row


def body_of(row: Any) -> bytes:
    """The exact bytes POSTed (and signed) for an event."""
    document = {
        "id": row.id,
        "event": row.event,
        "created_at": _aware(row.created_at).isoformat(),
        "county": row.county_code,
        "data": row.payload,
    }
    return json.dumps(document, ensure_ascii=False, sort_keys=True).encode()


def sign(secret: str, body: bytes, *, timestamp: int) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify_signature(
    secret: str, header: str, body: bytes, *, tolerance: int = 300, now: float | None = None
) -> bool:
    """True when `header` is our signature of `body` made within `tolerance` seconds (a
    captured request cannot be replayed later)."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
        given = parts["v1"]
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = sign(secret, body, timestamp=timestamp).split("v1=", 1)[1]
    return hmac.compare_digest(expected, given)


@dataclass
class DeliveryReport:
    delivered: int = 0
    retrying: int = 0
    failed: int = 0
    expired: int = 0
    errors: list[str] = field(default_factory=list)

    def total(self) -> int:
        return self.delivered + self.retrying + self.failed + self.expired

    def __str__(self) -> str:
        return (
            f"webhooks: {self.delivered} delivered, {self.retrying} to retry, "
            f"{self.failed} failed for good, {self.expired} expired"
        )


def retry_delay(settings: Settings, attempts: int) -> timedelta:
    """Exponential backoff from `first_retry`, capped at `last_retry`, with jitter so
    many events failing together do not come back together."""
    base = settings.first_retry * (2 ** max(attempts - 1, 0))
    return min(base, settings.last_retry) * random.uniform(0.75, 1.0)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _lease(session: Session, settings: Settings, now: datetime, batch: int) -> list[Any]:
    """Claim up to `batch` due events by moving their next attempt past the time it takes
    to send them all; another deliverer skips them meanwhile. One UPDATE … RETURNING, so
    the transaction writes first (on SQLite a read that later writes can fail as busy)."""
    due = (
        select(WebhookEvent.id)
        .where(WebhookEvent.state == PENDING, WebhookEvent.next_attempt_at <= now)
        .order_by(WebhookEvent.next_attempt_at, WebhookEvent.created_at)
        .limit(batch)
    )
    if session.get_bind().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    until = now + timedelta(seconds=settings.timeout * (batch + 1) + 30)
    leased = list(
        session.execute(
            update(WebhookEvent)
            .where(WebhookEvent.id.in_(due.scalar_subquery()), WebhookEvent.state == PENDING)
            .values(next_attempt_at=until)
            .returning(
                WebhookEvent.id,
                WebhookEvent.event,
                WebhookEvent.payload,
                WebhookEvent.county_code,
                WebhookEvent.created_at,
                WebhookEvent.attempts,
            )
        )
    )
    session.commit()
    return sorted(leased, key=lambda row: _aware(row.created_at))


Post = Callable[..., requests.Response]


def _send(row: Any, settings: Settings, post: Post) -> str | None:
    """POST one event; None when the receiver took it, else what went wrong."""
    body = body_of(row)
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        EVENT_HEADER: row.event,
        DELIVERY_HEADER: row.id,
        SIGNATURE_HEADER: sign(settings.secret, body, timestamp=int(time.time())),
        "User-Agent": "zhuxun-webhooks",
    }
    try:
        answer = post(
            settings.url, data=body, headers=headers, timeout=settings.timeout,
            allow_redirects=False,
        )  # fmt: skip
    except requests.RequestException as exc:
        return f"{type(exc).__name__}: {exc}"[:500]
    if 200 <= answer.status_code < 300:
        return None
    return f"HTTP {answer.status_code}: {answer.text[:200]}"


def _record(session: Session, event_id: str, **values: Any) -> None:
    session.execute(
        update(WebhookEvent)
        .where(WebhookEvent.id == event_id, WebhookEvent.state == PENDING)
        .values(**values)
    )
    session.commit()


def deliver_due(
    session: Session,
    settings: Settings,
    *,
    post: Post | None = None,
    batch: int = 10,
    limit: int = 1000,
    now: Callable[[], datetime] | None = None,
) -> DeliveryReport:
    """Send every due event (at most `limit`), each answer recorded in its own short
    transaction: nothing is held open while a receiver is slow."""
    post = post or requests.post
    clock = now or (lambda: datetime.now(UTC))
    report = DeliveryReport()
    while report.total() < limit:
        leased = _lease(session, settings, clock(), min(batch, limit - report.total()))
        if not leased:
            break
        for row in leased:
            if clock() - _aware(row.created_at) > settings.max_age:
                _record(session, row.id, state=EXPIRED)
                report.expired += 1
                continue
            error = _send(row, settings, post)
            attempts = row.attempts + 1
            if error is None:
                _record(
                    session, row.id, state=DELIVERED, attempts=attempts, delivered_at=clock(),
                    last_error=None,
                )  # fmt: skip
                report.delivered += 1
                continue
            report.errors.append(f"{row.id} ({row.event}): {error}")
            if attempts >= settings.max_attempts:
                _record(session, row.id, state=FAILED, attempts=attempts, last_error=error)
                report.failed += 1
            else:
                retry_at = clock() + retry_delay(settings, attempts)
                _record(
                    session, row.id, attempts=attempts, last_error=error, next_attempt_at=retry_at
                )
                report.retrying += 1
    return report


def retry_failed(session: Session, *, event_id: str | None = None) -> int:
    """Put failed events (or one of them) back in the queue, due now, with a fresh count."""
    query = update(WebhookEvent).where(WebhookEvent.state == FAILED)
    if event_id is not None:
        query = query.where(WebhookEvent.id == event_id)
    result = session.execute(
        query.values(state=PENDING, attempts=0, next_attempt_at=datetime.now(UTC))
    )
    session.commit()
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def counts(session: Session) -> dict[str, int]:
    """Events per state."""
    from sqlalchemy import func

    rows = session.execute(select(WebhookEvent.state, func.count()).group_by(WebhookEvent.state))
    return {state: int(n) for state, n in rows}


# --- the payloads ---------------------------------------------------------------------


def flag_payload(body: dict[str, Any], *, township_code: str | None) -> dict[str, Any]:
    """What a receiver needs to write an SMS: the rule, who, which period, why (no patient
    data is ever in a flag)."""
    keep = ("key", "rule", "status", "subject", "period", "doctor", "measured", "required")
    data = {name: body.get(name) for name in keep}
    data["township"] = township_code
    data["explanation"] = body.get("explanation")
    data["ruleset"] = body.get("ruleset")
    return data
