"""What a reviewer looks at before deciding (issue 5): the doctors in scope × recent ISO
weeks with each week's review state, sessions, patients and open flags, and the audit
trail of one doctor-week. Read-only; the decisions are in server/review/workflow.py.

No Flask here: callers pass the session and the `Actor`, as in server/review/workflow.py.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rules.periods import week_label, week_start
from server.actor import Actor
from server.errors import InvalidInput
from server.flags import OPEN
from server.models import AuditEntry, Doctor, FlagRecord, OrgUnit, Visit, WeekReview
from server.review.workflow import UNREVIEWED, audit_json, parse_week

MAX_WEEKS = 26


def recent_weeks(until: date, count: int) -> list[str]:
    """The `count` ISO weeks ending with the week of `until`, newest first."""
    if not 1 <= count <= MAX_WEEKS:
        raise InvalidInput(
            f"weeks must be between 1 and {MAX_WEEKS}, not {count}",
            {"weeks": [f"must be a whole number from 1 to {MAX_WEEKS}"]},
        )
    return [week_label(week_start(until - timedelta(weeks=n))) for n in range(count)]


def _doctors_in_scope(session: Session, actor: Actor, township: str | None) -> list[Doctor]:
    query = select(Doctor).where(actor.owns(Doctor, doctor_column=Doctor.id))
    if township:
        query = query.where(Doctor.township_code == township)
    return list(session.scalars(query.order_by(Doctor.township_code, Doctor.id)))


def weeks_overview(
    session: Session, actor: Actor, weeks: Sequence[str], *, township: str | None = None
) -> dict[str, Any]:
    """Per doctor in the actor's scope (optionally one township of it) and per week: the
    review state (with who, when and why: a reopening names the visit and the device),
    sessions and patients logged, and the open flags whose dates overlap the week (the
    flags `week_calendar` lists for that week)."""
    ranges = {week: parse_week(week) for week in weeks}
    doctors = _doctors_in_scope(session, actor, township)
    ids = [d.id for d in doctors]
    first = min((r[0] for r in ranges.values()), default=date.max)
    last = max((r[1] for r in ranges.values()), default=date.min)

    logged: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    open_flags: dict[tuple[str, str], int] = defaultdict(int)
    reviews: dict[tuple[str, str], WeekReview] = {}
    if ids and ranges:
        per_day = session.execute(
            select(Visit.doctor_id, Visit.local_date, func.count(), func.sum(Visit.patients))
            .where(
                Visit.doctor_id.in_(ids),
                Visit.deleted.is_(False),
                Visit.local_date >= first,
                Visit.local_date <= last,
            )
            .group_by(Visit.doctor_id, Visit.local_date)
        )
        for doctor_id, day, sessions, patients in per_day:
            totals = logged[(doctor_id, week_label(week_start(day)))]
            totals[0] += sessions
            totals[1] += patients or 0
        spans = session.execute(
            select(FlagRecord.doctor_id, FlagRecord.scope_start, FlagRecord.scope_end).where(
                FlagRecord.doctor_id.in_(ids),
                FlagRecord.state == OPEN,
                FlagRecord.scope_start <= last,
                FlagRecord.scope_end >= first,
            )
        )
        for doctor_id, start, end in spans:
            for week, (monday, sunday) in ranges.items():
                if start <= sunday and end >= monday:
                    open_flags[(doctor_id, week)] += 1
        reviews = {
            (r.doctor_id, r.week): r
            for r in session.scalars(
                select(WeekReview).where(
                    WeekReview.doctor_id.in_(ids), WeekReview.week.in_(list(ranges))
                )
            )
        }
    townships = {
        u.code: u.name
        for u in session.scalars(
            select(OrgUnit).where(OrgUnit.code.in_({d.township_code for d in doctors}))
        )
    }

    def cell(doctor_id: str, week: str) -> dict[str, Any]:
        review = reviews.get((doctor_id, week))
        sessions, patients = logged.get((doctor_id, week), (0, 0))
        return {
            "week": week,
            "state": review.state if review else UNREVIEWED,
            "by": review.by if review else None,
            "at": review.at.isoformat() if review and review.at else None,
            "reason": review.reason if review else None,
            "sessions": sessions,
            "patients": patients,
            "open_flags": open_flags.get((doctor_id, week), 0),
        }

    return {
        "weeks": [
            {"week": week, "start": r[0].isoformat(), "end": r[1].isoformat()}
            for week, r in ranges.items()
        ],
        "doctors": [
            {
                "id": d.id,
                "name": d.name,
                "township": d.township_code,
                "township_name": townships.get(d.township_code or ""),
                "weeks": [cell(d.id, week) for week in ranges],
            }
            for d in doctors
        ],
    }


def week_audit(session: Session, actor: Actor, calendar: dict[str, Any]) -> list[dict[str, Any]]:
    """The decisions on one doctor-week as `week_calendar` shows it: on the week itself and
    on its visits, leave and flags (any state), oldest first, within the actor's scope."""
    doctor_id = calendar["doctor"]["id"]
    first, last = date.fromisoformat(calendar["start"]), date.fromisoformat(calendar["end"])
    subjects = {f"{doctor_id}/{calendar['week']}"}
    subjects |= {s["visit"] for day in calendar["days"] for s in day["sessions"]}
    subjects |= {leave["id"] for leave in calendar["leave"]}
    # Every flag of the week, not only the open ones the calendar lists: an excused flag
    # is no longer open, and its excuse belongs on this trail.
    subjects |= set(
        session.scalars(
            select(FlagRecord.key).where(
                FlagRecord.doctor_id == doctor_id,
                FlagRecord.scope_start <= last,
                FlagRecord.scope_end >= first,
            )
        )
    )
    rows = session.scalars(
        select(AuditEntry)
        .where(
            actor.owns(AuditEntry),
            AuditEntry.doctor_id == doctor_id,
            AuditEntry.subject_id.in_(subjects),
        )
        .order_by(AuditEntry.id)
    )
    return [audit_json(row) for row in rows]


def townships(session: Session, actor: Actor) -> list[dict[str, str]]:
    """The townships the actor may choose between: a reviewer's own, a county admin's
    county's, a doctor's own."""
    query = select(OrgUnit).where(OrgUnit.level == "township")
    if actor.township_code is not None:
        query = query.where(OrgUnit.code == actor.township_code)
    else:
        query = query.where(OrgUnit.county_code == actor.county_code)
    return [{"code": u.code, "name": u.name} for u in session.scalars(query.order_by(OrgUnit.code))]
