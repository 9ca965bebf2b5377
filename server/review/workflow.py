"""The township review workflow (issue 5): approve a doctor-week, send a visit back for
correction, excuse a flag, approve or refuse leave, read a doctor's week. Every decision is
written to the append-only audit log in the same transaction as the decision itself.

No Flask here: callers pass the session and the `Actor`; errors are `server.errors` domain
errors (NotFound, InvalidInput, WrongState), which server/api/errors.py turns into HTTP
answers and server/web/errors.py into pages. Every writing transaction starts with the sync
counter lock (server/records/sql_store.py), so a read transaction left open by the caller
(e.g. the sign-in check) is ended first.
"""

from __future__ import annotations

import re
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from forms.definitions import PERIOD_EARLIEST, PERIOD_LATEST, within_period_bounds
from rules.periods import DateRange, label_range, week_label, week_start
from server import evaluation_queue, webhooks
from server.actor import Actor
from server.errors import DomainError, InvalidInput, NotFound, WrongState
from server.flags import EXCUSED, OPEN, flag_body, settle_stale
from server.models import (
    AuditEntry,
    Doctor,
    FlagHistory,
    FlagRecord,
    Leave,
    OrgUnit,
    SendBack,
    SyncRecord,
    Training,
    Visit,
    WeekReview,
)
from server.records.projections import project
from server.records.sql_store import RecordScope, SqlSyncStore, WriteContext, WrittenRecord
from sync.protocol import FLAGS, LEAVE, REVIEWS, VISITS, Op, Status
from sync.records import Change
from sync.values import text_problem

APPROVED, REOPENED, UNREVIEWED = "approved", "reopened", "unreviewed"
LEAVE_DECISIONS = {"approve": "approved", "refuse": "refused"}
MAX_TEXT = 1000
# ASCII digits only (`\d` takes other scripts' digits too; issue 13).
_WEEK = re.compile(r"([0-9]{4})-W([0-9]{2})")


@dataclass(frozen=True, slots=True)
class Subject:
    type: str
    id: str
    scope: RecordScope


# --- input -------------------------------------------------------------------------


def parse_week(label: str) -> DateRange:
    """Monday and Sunday of an ISO week label such as 2026-W11 (`rules.periods.label_range`)
    within the periods the server reads (forms.definitions.PERIOD_EARLIEST to
    PERIOD_LATEST; issue 13: year 1 and year 9999 broke the arithmetic around a week); any
    other text is invalid input naming the field `week`."""
    match = _WEEK.fullmatch(label)
    try:
        if match is None:
            raise ValueError(label)
        monday, sunday = label_range(label)
    except (ValueError, OverflowError) as exc:  # 9999-W52 ends in the year 10000
        raise InvalidInput(
            f"{label[:40]!r} is not an ISO week such as 2026-W11",
            {"week": ["must look like 2026-W11"]},
        ) from exc
    if not (within_period_bounds(monday) and within_period_bounds(sunday)):
        low, high = week_label(week_start(PERIOD_EARLIEST)), week_label(week_start(PERIOD_LATEST))
        raise InvalidInput(
            f"the week {label} is outside the periods this server reads ({low} to {high})",
            {"week": [f"must be a week from {low} to {high}"]},
        )
    return monday, sunday


def text_field(body: Any, name: str, *, required: bool = True) -> str | None:
    """A non-empty string field of a JSON object body, at most MAX_TEXT characters."""
    value = body.get(name) if isinstance(body, dict) else None
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_TEXT:
        raise InvalidInput(
            f"{name} is required: a text of 1 to {MAX_TEXT} characters",
            {name: [f"must be a text of 1 to {MAX_TEXT} characters"]},
        )
    problem = text_problem(value)  # a page's form can carry NUL (issue 13)
    if problem:
        raise InvalidInput(f"{name} {problem}", {name: [problem]})
    return value.strip()


# --- the audit log -----------------------------------------------------------------


def audit(
    session: Session,
    actor_name: str,
    action: str,
    subject: Subject,
    *,
    reason: str | None,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    at: datetime | None = None,
) -> AuditEntry:
    entry = AuditEntry(
        at=at or datetime.now(UTC),
        username=actor_name,
        action=action,
        subject_type=subject.type,
        subject_id=subject.id,
        reason=reason,
        before=before,
        after=after,
        doctor_id=subject.scope.doctor_id,
        township_code=subject.scope.township_code,
        county_code=subject.scope.county_code,
    )
    session.add(entry)
    return entry


def audit_json(entry: AuditEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "at": entry.at.isoformat() if entry.at else None,
        "who": entry.username,
        "action": entry.action,
        "subject": {"type": entry.subject_type, "id": entry.subject_id},
        "reason": entry.reason,
        "before": entry.before,
        "after": entry.after,
        "doctor": entry.doctor_id,
    }


def audit_log(
    session: Session,
    actor: Actor,
    *,
    subject_type: str | None = None,
    subject_id: str | None = None,
    offset: int = 0,
    limit: int = 200,
) -> list[dict[str, Any]]:
    """The decisions on subjects the actor may see, oldest first."""
    query = select(AuditEntry).where(actor.owns(AuditEntry))
    if subject_type:
        query = query.where(AuditEntry.subject_type == subject_type)
    if subject_id:
        query = query.where(AuditEntry.subject_id == subject_id)
    rows = session.scalars(query.order_by(AuditEntry.id).offset(offset).limit(limit))
    return [audit_json(r) for r in rows]


# --- scope -------------------------------------------------------------------------


def _doctor_in_scope(session: Session, actor: Actor, doctor_id: str) -> Doctor:
    doctor = session.get(Doctor, doctor_id)
    if doctor is None or not actor.may_see(doctor.id, doctor.township_code, doctor.county_code):
        raise NotFound(f"no doctor {doctor_id!r}")
    return doctor


def _doctor_scope(doctor: Doctor) -> RecordScope:
    return RecordScope(doctor.id, doctor.township_code, doctor.county_code)


def _record_in_scope(session: Session, actor: Actor, collection: str, record_id: str) -> SyncRecord:
    row = session.get(SyncRecord, (collection, record_id))
    if row is None or row.deleted or not actor.may_touch(row):
        raise NotFound(f"no {collection} record {record_id!r}")
    return row


def _begin_write(session: Session) -> tuple[SqlSyncStore, Any]:
    """End any read transaction, then take the counter lock as the first statement."""
    session.rollback()
    store = SqlSyncStore(session)
    return store, store.writer()


# --- weeks -------------------------------------------------------------------------


def _week_json(review: WeekReview | None) -> dict[str, Any]:
    if review is None:
        return {"state": UNREVIEWED}
    return {
        "state": review.state,
        "by": review.by,
        "at": review.at.isoformat() if review.at else None,
        "reason": review.reason,
        "visits": dict(review.visits or {}),
    }


def _week_visits(session: Session, doctor_id: str, first: date, last: date) -> list[Visit]:
    return list(
        session.scalars(
            select(Visit)
            .where(
                Visit.doctor_id == doctor_id,
                Visit.deleted.is_(False),
                Visit.local_date >= first,
                Visit.local_date <= last,
            )
            .order_by(Visit.check_in)
        )
    )


def approve_week(
    session: Session, actor: Actor, doctor_id: str, week: str, *, reason: str | None
) -> dict[str, Any]:
    """Approve (lock) a doctor-week; approving an approved week changes nothing."""
    first, last = parse_week(week)
    store, writer = _begin_write(session)
    try:
        doctor = _doctor_in_scope(session, actor, doctor_id)
        review = session.get(WeekReview, (doctor.id, week))
        if review is not None and review.state == APPROVED:
            session.rollback()
            return {"doctor": doctor.id, "week": week, **_week_json(review)}
        before = _week_json(review)
        visits = {v.id: v.version for v in _week_visits(session, doctor.id, first, last)}
        now = datetime.now(UTC)
        if review is None:
            review = WeekReview(doctor_id=doctor.id, week=week)
            session.add(review)
        review.state, review.by, review.at, review.reason = APPROVED, actor.username, now, reason
        review.visits = visits
        after = _week_json(review)
        audit(
            session,
            actor.username,
            "week.approved",
            Subject("week", f"{doctor.id}/{week}", _doctor_scope(doctor)),
            reason=reason,
            before=before,
            after=after,
            at=now,
        )
        writer.finish()
        session.commit()
    except DomainError:
        session.rollback()
        raise
    return {"doctor": doctor.id, "week": week, **after}


def _touched_weeks(row: SyncRecord) -> set[str]:
    """The weeks a visit record is in now (its data is kept on a tombstone too)."""
    try:
        day = datetime.fromisoformat((row.data or {})["check_in"]).date()
        return {week_label(week_start(day))}
    except (KeyError, TypeError, ValueError):
        return set()


# Run inside every push (built once: building it cost more than running it, issue 14).
_APPROVED_OF = select(WeekReview).where(
    WeekReview.doctor_id.in_(bindparam("doctors", expanding=True)), WeekReview.state == APPROVED
)


def reopen_weeks_touched(session: Session, rows: Iterable[WrittenRecord]) -> list[tuple[str, str]]:
    """Reopen every approved doctor-week that a newly written visit record falls in, or
    that held the visit when it was approved. Runs inside the push's own write transaction
    (the counter lock held; the push commits it), so a visit never commits without its
    week's reopening; the reason names the visit and the device, so nothing changes after
    approval silently. Returns the (doctor, week) pairs reopened."""
    touched = [
        (row.id, row.doctor_id, row.device_id, row.updated_by, row.version, _touched_weeks(row))
        for row in rows
        if row.collection == VISITS and row.doctor_id
    ]
    doctors = {doctor for _, doctor, *_ in touched}
    if not doctors:
        return []

    def due() -> dict[tuple[str, str], tuple[WeekReview, list[str]]]:
        approved = session.scalars(_APPROVED_OF, {"doctors": sorted(doctors)})
        found: dict[tuple[str, str], tuple[WeekReview, list[str]]] = {}
        for review in approved:
            for visit_id, doctor, device, user, version, weeks in touched:
                if doctor != review.doctor_id:
                    continue
                held = (review.visits or {}).get(visit_id)
                if review.week in weeks or (held is not None and held != version):
                    reason = (
                        f"visit {visit_id} changed by device {device or 'unknown'} "
                        f"({user or 'unknown'}) after approval"
                    )
                    found.setdefault((review.doctor_id, review.week), (review, []))[1].append(
                        reason
                    )
        return found

    found = due()
    if not found:  # the common case: nothing approved was touched
        return []
    now = datetime.now(UTC)
    scopes = {
        d.id: _doctor_scope(d)
        for d in session.scalars(select(Doctor).where(Doctor.id.in_(doctors)))
    }
    for (doctor_id, week), (review, reasons) in sorted(found.items()):
        before = _week_json(review)
        review.state, review.at, review.reason = REOPENED, now, "; ".join(reasons)
        review.by = next((user for _, d, _, user, *_ in touched if d == doctor_id), None) or "?"
        audit(
            session,
            review.by,
            "week.reopened",
            Subject("week", f"{doctor_id}/{week}", scopes.get(doctor_id, RecordScope(doctor_id))),
            reason=review.reason,
            before=before,
            after=_week_json(review),
            at=now,
        )
    session.flush()
    return sorted(found)


def week_calendar(session: Session, actor: Actor, doctor_id: str, week: str) -> dict[str, Any]:
    """A doctor's duty week for a reviewer: days and sessions by place, patients, leave and
    training, open flags of the week, and the review state."""
    first, last = parse_week(week)
    doctor = _doctor_in_scope(session, actor, doctor_id)
    visits = _week_visits(session, doctor.id, first, last)
    names = {
        u.code: u.name
        for u in session.scalars(
            select(OrgUnit).where(OrgUnit.code.in_({v.place_code for v in visits}))
        )
    }
    by_day: dict[date, list[dict[str, Any]]] = defaultdict(list)
    by_place: dict[str, dict[str, Any]] = {}
    for v in visits:
        by_day[v.local_date].append(
            {
                "visit": v.id,
                "place": v.place_code,
                "place_name": names.get(v.place_code),
                "kind": v.kind,
                "assignment": v.assignment_id,
                "check_in": v.check_in.isoformat(),
                "check_out": v.check_out.isoformat(),
                "patients": v.patients,
                "version": v.version,
            }
        )
        place = by_place.setdefault(
            v.place_code,
            {"place": v.place_code, "name": names.get(v.place_code), "sessions": 0, "patients": 0},
        )
        place["sessions"] += 1
        place["patients"] += v.patients
    days = []
    for offset in range(7):
        day = first + timedelta(days=offset)
        sessions = by_day.get(day, [])
        days.append(
            {
                "date": day.isoformat(),
                "sessions": sessions,
                "patients": sum(s["patients"] for s in sessions),
            }
        )

    def spans(model: type[Leave] | type[Training]) -> list[Any]:
        return list(
            session.scalars(
                select(model).where(
                    model.doctor_id == doctor.id,
                    model.deleted.is_(False),
                    model.start <= last,
                    model.end >= first,
                )
            )
        )

    flags = session.scalars(
        select(FlagRecord)
        .where(
            FlagRecord.doctor_id == doctor.id,
            FlagRecord.state == OPEN,
            FlagRecord.scope_start <= last,
            FlagRecord.scope_end >= first,
        )
        .order_by(FlagRecord.key)
    )
    return {
        "doctor": {"id": doctor.id, "name": doctor.name, "township": doctor.township_code},
        "week": week,
        "start": first.isoformat(),
        "end": last.isoformat(),
        "days": days,
        "places": sorted(by_place.values(), key=lambda p: p["place"]),
        "sessions": len(visits),
        "patients": sum(v.patients for v in visits),
        "leave": [
            {"id": r.id, "start": r.start.isoformat(), "end": r.end.isoformat(), "status": r.status}
            for r in spans(Leave)
        ],
        "trainings": [
            {"id": r.id, "start": r.start.isoformat(), "end": r.end.isoformat(), "title": r.title}
            for r in spans(Training)
        ],
        "flags": [flag_body(f) for f in flags],
        "review": _week_json(session.get(WeekReview, (doctor.id, week))),
    }


# --- visits, flags, leave ------------------------------------------------------------


def send_back(session: Session, actor: Actor, visit_id: str, *, comment: str) -> dict[str, Any]:
    """Send a visit back to its doctor for correction; the doctor's device pulls the
    comment as a record of the `reviews` collection."""
    store, writer = _begin_write(session)
    try:
        row = _record_in_scope(session, actor, VISITS, visit_id)
    except DomainError:
        session.rollback()
        raise
    now = datetime.now(UTC)
    item = SendBack(
        id=uuid.uuid4().hex,
        visit_id=row.id,
        visit_version=row.version,
        doctor_id=row.doctor_id,
        comment=comment,
        by=actor.username,
        at=now,
    )
    session.add(item)
    body = {
        "kind": "send_back",
        "visit": row.id,
        "visit_version": row.version,
        "doctor": row.doctor_id,
        "comment": comment,
        "by": actor.username,
        "at": now.isoformat(),
    }
    scope = RecordScope(row.doctor_id, row.township_code, row.county_code)
    store.put_server_record(REVIEWS, item.id, body, scope, updated_by=actor.username, writer=writer)
    webhooks.enqueue(
        session,
        webhooks.VISIT_SENT_BACK,
        {**body, "week": min(_touched_weeks(row), default=None), "township": row.township_code},
        county_code=row.county_code,
        at=now,
    )
    audit(
        session,
        actor.username,
        "visit.sent_back",
        Subject("visit", row.id, scope),
        reason=comment,
        before={"version": row.version, "data": row.data},
        after={"review": item.id, **body},
        at=now,
    )
    writer.finish()
    session.commit()
    return {"id": item.id, **body}


def excuse_flag(session: Session, actor: Actor, key: str, *, reason: str) -> dict[str, Any]:
    """Excuse an open flag with a reason: its history records it and the doctor's device
    pulls the flag's new state."""
    store, writer = _begin_write(session)
    try:
        flag = session.get(FlagRecord, key)
        if flag is None or not actor.may_see(flag.doctor_id, flag.township_code, flag.county_code):
            raise NotFound(f"no flag {key!r}")
        if flag.state != OPEN:
            raise WrongState(f"the flag is {flag.state}, not open; only an open flag is excused")
    except DomainError:
        session.rollback()
        raise
    now = datetime.now(UTC)
    before = flag_body(flag)
    flag.state, flag.updated_at = EXCUSED, now
    after = flag_body(flag)
    session.add(
        FlagHistory(
            key=key,
            at=now,
            change="excused",
            before=before,
            after=after,
            cause=f"review:{actor.username}"[:64],
        )
    )
    scope = RecordScope(flag.doctor_id, flag.township_code, flag.county_code)
    store.put_server_record(FLAGS, key, after, scope, updated_by=actor.username, writer=writer)
    audit(
        session,
        actor.username,
        "flag.excused",
        Subject("flag", key, scope),
        reason=reason,
        before=before,
        after=after,
        at=now,
    )
    writer.finish()
    session.commit()
    return after


def decide_leave(
    session: Session,
    actor: Actor,
    leave_id: str,
    decision: str,
    *,
    reason: str | None,
    evaluation: evaluation_queue.Settings | None = None,
) -> SyncRecord:
    """Approve or refuse a leave request: a new server version of the leave record, with
    the reviewer as origin, so it syncs to the doctor. Returns the written record."""
    status = LEAVE_DECISIONS.get(decision)
    if status is None:
        raise InvalidInput(
            f"decide with approve or refuse, not {decision!r}",
            {"decision": ["must be approve or refuse"]},
        )
    row = _record_in_scope(session, actor, LEAVE, leave_id)
    data = dict(row.data or {})
    if data.get("status") == status:
        session.rollback()
        raise WrongState(f"the leave is {status} already")
    before = {"version": row.version, "data": dict(row.data or {})}
    change = Change(
        LEAVE,
        leave_id,
        Op.UPSERT,
        f"review-{uuid.uuid4().hex}",
        row.version,
        {**data, "status": status},
    )
    scope = RecordScope(row.doctor_id, row.township_code, row.county_code)
    subject = Subject("leave", leave_id, scope)

    def project_and_audit(session: Session, collection: str, written: SyncRecord) -> None:
        # In the store's own transaction, so the decision and its audit entry commit
        # together (apply_batch commits itself).
        project(session, collection, written)
        if collection == LEAVE and written.id == leave_id:
            audit(
                session,
                actor.username,
                f"leave.{status}",
                subject,
                reason=reason,
                before=before,
                after={"version": written.version, "data": dict(written.data or {})},
            )

    session.rollback()  # the store's transaction starts with the counter lock
    store = SqlSyncStore(session, projector=project_and_audit)
    [result] = store.apply_batch(
        [(change, scope)],
        WriteContext(origin=actor.username, device_id="server"),
        guard=actor.may_touch,
        # Approved leave excuses duty days (RULES.md): its weeks are judged again, through
        # the evaluation queue like every write's.
        stale=evaluation_queue.LEAVE_DECISION,
    )
    if result.status is Status.CONFLICT:
        raise WrongState(
            f"the leave record moved on to version {result.version} meanwhile; look again"
        )
    if result.status is not Status.ACCEPTED:
        raise WrongState(f"the leave decision was {result.status}: {result.errors}")
    if evaluation is not None and evaluation.in_requests:
        settle_stale(session, evaluation, evaluation_queue.of_doctors([row.doctor_id or ""]))
    written = session.get(SyncRecord, (LEAVE, leave_id))
    assert written is not None
    return written
