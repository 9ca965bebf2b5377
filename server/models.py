"""Database models (plain SQLAlchemy, no Flask). Sync state (`sync_*` tables) is generic over collections; the typed
tables (org units, doctors, assignments, visits, leave, trainings) are what queries,
rules and summaries read."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql.expression import false


class Base(DeclarativeBase):
    """The declarative base of every table; `server/extensions.py` hands its metadata to
    Flask-SQLAlchemy, so `db.session`, `db.create_all` and Alembic see the same tables
    while this module loads no Flask."""


def utcnow() -> datetime:
    return datetime.now(UTC)


class OrgUnit(Base):
    """County → township → village, by administrative code. A township unit is also its
    township hospital, the place of a sit-in."""

    __tablename__ = "org_units"
    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    level: Mapped[str] = mapped_column(String(16))  # county | township | village
    parent_code: Mapped[str | None] = mapped_column(ForeignKey("org_units.code"), index=True)
    county_code: Mapped[str] = mapped_column(String(32), index=True)
    township_code: Mapped[str | None] = mapped_column(String(32), index=True)
    population: Mapped[int | None] = mapped_column(Integer)
    has_clinic: Mapped[bool] = mapped_column(Boolean, default=False)
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)


class Doctor(Base):
    __tablename__ = "doctors"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    qualification: Mapped[str] = mapped_column(String(32))
    home_code: Mapped[str] = mapped_column(ForeignKey("org_units.code"), index=True)
    county_code: Mapped[str] = mapped_column(String(32), index=True)
    township_code: Mapped[str | None] = mapped_column(String(32), index=True)


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(32))  # doctor | township_reviewer | county_admin
    doctor_id: Mapped[str | None] = mapped_column(ForeignKey("doctors.id"))
    unit_code: Mapped[str | None] = mapped_column(ForeignKey("org_units.code"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # A one-time password (a new account, a reset) must be changed at the next sign-in
    # (server/accounts.py).
    must_change_password: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )
    password_changed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Assignment(Base):
    __tablename__ = "assignments"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    doctor_id: Mapped[str] = mapped_column(ForeignKey("doctors.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # posting | patrol | sitin
    places: Mapped[list[str]] = mapped_column(JSON)
    start: Mapped[date] = mapped_column(Date)
    end: Mapped[date | None] = mapped_column(Date)
    slots: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)


class Visit(Base):
    """Typed projection of the `visits` sync collection, kept in the same transaction."""

    __tablename__ = "visits"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    doctor_id: Mapped[str] = mapped_column(String(64), index=True)
    place_code: Mapped[str] = mapped_column(String(32), index=True)
    assignment_id: Mapped[str | None] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    check_in: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    check_out: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    local_date: Mapped[date] = mapped_column(Date, index=True)
    patients: Mapped[int] = mapped_column(Integer)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    version: Mapped[int] = mapped_column(Integer)

    # Rules on a window read a doctor's visits by date (server/flags.py, issue 14).
    __table_args__ = (Index("ix_visits_doctor_day", "doctor_id", "local_date"),)


class Leave(Base):
    __tablename__ = "leave"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    doctor_id: Mapped[str] = mapped_column(String(64), index=True)
    start: Mapped[date] = mapped_column(Date)
    end: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16))
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)


class Training(Base):
    __tablename__ = "trainings"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    doctor_id: Mapped[str] = mapped_column(String(64), index=True)
    start: Mapped[date] = mapped_column(Date)
    end: Mapped[date] = mapped_column(Date)
    title: Mapped[str] = mapped_column(String(200))
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)


class SyncCounter(Base):
    """One row. Every writing transaction locks it first and holds it to commit, so
    sequence numbers become visible in commit order (docs/sync-protocol.md, "Pull")."""

    __tablename__ = "sync_counter"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)


class SyncRecord(Base):
    """The latest version (or tombstone) of every synced record, with its scope."""

    __tablename__ = "sync_records"
    collection: Mapped[str] = mapped_column(String(32), primary_key=True)
    # Device records use ids of at most 64 characters; server records such as flags use
    # longer keys (rule|subject type|subject id|period).
    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    seq: Mapped[int] = mapped_column(BigInteger, unique=True)
    hlc: Mapped[str | None] = mapped_column(String(96))
    doctor_id: Mapped[str | None] = mapped_column(String(64))
    township_code: Mapped[str | None] = mapped_column(String(32))
    county_code: Mapped[str | None] = mapped_column(String(32))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_by: Mapped[str | None] = mapped_column(String(64))
    device_id: Mapped[str | None] = mapped_column(String(64))
    clock_skew_s: Mapped[float | None] = mapped_column(Float)

    __table_args__ = (
        Index("ix_sync_records_doctor_seq", "doctor_id", "seq"),
        Index("ix_sync_records_township_seq", "township_code", "seq"),
        Index("ix_sync_records_county_seq", "county_code", "seq"),
    )


class SyncApplied(Base):
    """The answer given to each change id, per origin, so a resend gets the same answer."""

    __tablename__ = "sync_applied"
    origin: Mapped[str] = mapped_column(String(64), primary_key=True)
    change_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    result: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SyncConflict(Base):
    """The losing side of a conflict, kept for a person to settle."""

    __tablename__ = "sync_conflicts"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    collection: Mapped[str] = mapped_column(String(32))
    record_id: Mapped[str] = mapped_column(String(64), index=True)
    stored_version: Mapped[int] = mapped_column(Integer)
    incoming_op: Mapped[str] = mapped_column(String(16))
    incoming_data: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    base_version: Mapped[int] = mapped_column(Integer)
    origin: Mapped[str] = mapped_column(String(64))
    device_id: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="open")
    resolution: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_by: Mapped[str | None] = mapped_column(String(64))


class RevokedToken(Base):
    """Revoked JWT ids; in the database so every server process sees a revocation."""

    __tablename__ = "revoked_tokens"
    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    revoked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class FlagRecord(Base):
    """The current judgement of one rule on one subject in one period (key from rules)."""

    __tablename__ = "flags"
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    rule: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(16))  # violation | at_risk (as last judged)
    state: Mapped[str] = mapped_column(String(16), index=True)  # open | resolved | excused
    subject_type: Mapped[str] = mapped_column(String(16))
    subject_id: Mapped[str] = mapped_column(String(64), index=True)
    period: Mapped[str] = mapped_column(String(32), index=True)
    doctor_id: Mapped[str | None] = mapped_column(String(64), index=True)
    township_code: Mapped[str | None] = mapped_column(String(32), index=True)
    county_code: Mapped[str | None] = mapped_column(String(32), index=True)
    scope_start: Mapped[date] = mapped_column(Date)
    scope_end: Mapped[date] = mapped_column(Date)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)  # the flag as rules.Flag.to_dict()
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    # A judgement reads back only its doctors' flags whose scope reaches its weeks, not
    # every flag they ever had (server/flags.py `judge`, issue 14).
    __table_args__ = (Index("ix_flags_doctor_scope", "doctor_id", "scope_end"),)


class FlagHistory(Base):
    """Every change of a flag: a re-evaluation never rewrites a past result silently."""

    __tablename__ = "flag_history"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(200), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    change: Mapped[str] = mapped_column(String(16))  # opened | changed | resolved | reopened
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    cause: Mapped[str] = mapped_column(String(64))


class AuditEntry(Base):
    """One review decision: who, when, what, on which subject, why, and the subject before
    and after. Append-only: no endpoint edits or deletes a row (server/review/workflow.py)."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    username: Mapped[str] = mapped_column(String(64), index=True)
    action: Mapped[str] = mapped_column(String(32))  # e.g. week.approved, flag.excused
    subject_type: Mapped[str] = mapped_column(String(16))  # week | visit | flag | leave
    subject_id: Mapped[str] = mapped_column(String(200), index=True)
    reason: Mapped[str | None] = mapped_column(Text)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # The subject's scope, so the log is listed to whoever may see the subject.
    doctor_id: Mapped[str | None] = mapped_column(String(64))
    township_code: Mapped[str | None] = mapped_column(String(32), index=True)
    county_code: Mapped[str | None] = mapped_column(String(32), index=True)


class WeekReview(Base):
    """A reviewer's approval of one doctor-week (ISO week label), which locks it; a later
    change of one of its visits reopens it with the reason."""

    __tablename__ = "week_reviews"
    doctor_id: Mapped[str] = mapped_column(ForeignKey("doctors.id"), primary_key=True)
    week: Mapped[str] = mapped_column(String(8), primary_key=True)  # 2026-W11
    state: Mapped[str] = mapped_column(String(16), index=True)  # approved | reopened
    by: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    reason: Mapped[str | None] = mapped_column(Text)
    # The visits approved, id → version: a visit moved out of the week still reopens it.
    visits: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class SendBack(Base):
    """A visit sent back to its doctor for correction, with the reviewer's comment; mirrored
    to the doctor's device as a record of the `reviews` collection."""

    __tablename__ = "send_backs"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    visit_id: Mapped[str] = mapped_column(String(64), index=True)
    visit_version: Mapped[int] = mapped_column(Integer)
    doctor_id: Mapped[str | None] = mapped_column(String(64), index=True)
    comment: Mapped[str] = mapped_column(Text)
    by: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class WebhookEvent(Base):
    """An outbound notification (a flag opened, a visit sent back), written in the same
    transaction as the change it reports (a transactional outbox) and delivered by
    `zhuxun webhooks run` with retries (server/webhooks.py)."""

    __tablename__ = "webhook_events"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    event: Mapped[str] = mapped_column(String(32))  # flag.opened | visit.sent_back
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    county_code: Mapped[str | None] = mapped_column(String(32), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    state: Mapped[str] = mapped_column(
        String(16), default="pending"
    )  # pending|delivered|failed|expired
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # The next attempt is due at this time; a deliverer leases the row by moving it forward.
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_webhook_events_due", "state", "next_attempt_at"),)


class EvaluationEntry(Base):
    """A doctor-week whose flags a committed write made stale, written in that write's
    transaction and removed by the transaction that stores the week's new flags (the
    durable evaluation queue, server/evaluation_queue.py). Written again while it waits,
    its `generation` goes up: a settler removes only the generation it judged."""

    __tablename__ = "evaluation_queue"
    doctor_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    week: Mapped[date] = mapped_column(Date, primary_key=True)  # its Monday
    county_code: Mapped[str | None] = mapped_column(String(32))
    township_code: Mapped[str | None] = mapped_column(String(32))
    generation: Mapped[int] = mapped_column(Integer, default=1)
    cause: Mapped[str] = mapped_column(String(32))  # push | correction | leave decision
    enqueued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # A settler leases the entry until this time; another skips it meanwhile.
    leased_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    lease: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        Index("ix_evaluation_queue_due", "leased_until"),
        Index("ix_evaluation_queue_county", "county_code"),
        Index("ix_evaluation_queue_township", "township_code"),
    )


class Device(Base):
    """A tablet or client a user syncs from (issue 15): when it first and last pushed and
    pulled, its client version, the records it has had rejected and not sent again since,
    and whether it was revoked (then its tokens and its syncs are refused)."""

    __tablename__ = "devices"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    username: Mapped[str] = mapped_column(String(64), index=True)
    doctor_id: Mapped[str | None] = mapped_column(String(64), index=True)
    township_code: Mapped[str | None] = mapped_column(String(32), index=True)
    county_code: Mapped[str | None] = mapped_column(String(32), index=True)
    client_version: Mapped[str | None] = mapped_column(String(100))
    first_push_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_push_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    first_pull_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_pull_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # "collection/id" → the error code of each record rejected and not accepted since.
    rejected: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_by: Mapped[str | None] = mapped_column(String(64))
    revoke_reason: Mapped[str | None] = mapped_column(Text)
