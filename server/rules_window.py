"""Judging doctor-weeks on a window of stored data (issue 14): the reads `rules.window`
asks for, in SQL, and the judge the evaluation queue calls (server/evaluation_queue.py).

What one judgement reads: the doctors, their assignments, leave and trainings (few, read
whole); their visits of the window (`visits` by doctor and local date, with the record from
`sync_records`), widened only while `posting.continuity` needs it; the places these name,
with the places above them; and the county's first day (the earliest visit, assignment or
training start), which decides the years `training.*` judges. Records are parsed as
trusted (`rules.scenario.trusted_scenario`): they were validated on the way in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from rules import Place, Scenario, Visit, evaluate
from rules.scenario import trusted_scenario
from rules.window import windowed_index
from server.evaluation_queue import Settings
from server.flags import (
    FlagChanges,
    _places_with_parents,
    _store,
    ruleset_named,
    today_in_china,
)
from server.models import Assignment, Doctor, FlagRecord, SyncRecord, Training
from server.models import Visit as VisitRow
from sync.protocol import LEAVE, TRAININGS, VISITS

DateRange = tuple[date, date]


def _place_dicts(units: Iterable[Any]) -> list[dict[str, Any]]:
    return [
        {"code": u.code, "name": u.name, "level": u.level, "parent": u.parent_code,
         "population": u.population, "has_clinic": u.has_clinic, "lat": u.lat, "lon": u.lon}
        for u in units
    ]  # fmt: skip


def facts_of(session: Session, doctor_ids: list[str]) -> Scenario:
    """Everything but visits for `doctor_ids`: the doctors, their assignments, leave and
    trainings, and the places these name (with the places above them)."""
    connection = session.connection()
    doctors = connection.execute(
        select(Doctor.id, Doctor.name, Doctor.qualification, Doctor.home_code).where(
            Doctor.id.in_(doctor_ids)
        )
    ).all()
    assignments = connection.execute(
        select(
            Assignment.id, Assignment.doctor_id, Assignment.kind, Assignment.places,
            Assignment.start, Assignment.end, Assignment.slots,
        ).where(Assignment.doctor_id.in_(doctor_ids))
    ).all()  # fmt: skip
    records = connection.execute(
        select(SyncRecord.collection, SyncRecord.id, SyncRecord.data).where(
            SyncRecord.doctor_id.in_(doctor_ids),
            SyncRecord.collection.in_((LEAVE, TRAININGS)),
            SyncRecord.deleted.is_(False),
        )
    )
    sections: dict[str, list[dict[str, Any]]] = {LEAVE: [], TRAININGS: []}
    for collection, record_id, data in records:
        sections[collection].append({**data, "id": record_id})
    named = {d.home_code for d in doctors} | {c for a in assignments for c in a.places or ()}
    return trusted_scenario(
        {
            "places": _place_dicts(_places_with_parents(session, named)),
            "doctors": [
                {"id": d.id, "name": d.name, "qualification": d.qualification, "home": d.home_code}
                for d in doctors
            ],  # fmt: skip
            "assignments": [
                {
                    "id": a.id,
                    "doctor": a.doctor_id,
                    "kind": a.kind,
                    "places": a.places,
                    "start": a.start.isoformat(),
                    "end": a.end.isoformat() if a.end else None,
                    "slots": a.slots or [],
                }
                for a in assignments
            ],  # fmt: skip
            "leave": sections[LEAVE],
            "trainings": sections[TRAININGS],
        }
    )


def visit_loader(session: Session, doctor_ids: list[str]) -> Callable[[date, date], list[Visit]]:
    """Reads the doctors' live visits whose check-in local date is in [first, last]."""
    typed = VisitRow.__table__.c
    records = SyncRecord.__table__.c

    def load(first: date, last: date) -> list[Visit]:
        rows = session.connection().execute(
            select(records.id, records.data)
            .select_from(
                VisitRow.__table__.join(
                    SyncRecord.__table__,
                    and_(records.collection == VISITS, records.id == typed.id),
                )
            )
            .where(
                typed.doctor_id.in_(doctor_ids),
                typed.local_date >= first,
                typed.local_date <= last,
                records.deleted.is_(False),
            )
        )
        return list(trusted_scenario({"visits": [{**d, "id": i} for i, d in rows]}).visits)

    return load


def place_loader(session: Session) -> Callable[[set[str]], list[Place]]:
    def load(codes: set[str]) -> list[Place]:
        units = _places_with_parents(session, codes)
        return list(trusted_scenario({"places": _place_dicts(units)}).places)

    return load


def first_day_of(session: Session, county: str | None, as_of: date) -> date:
    """The first day a full evaluation of `county` sees: its earliest visit (up to
    `as_of`), assignment start or training start; each read with one indexed query."""
    who = select(Doctor.id).where(Doctor.county_code == county).scalar_subquery()
    connection = session.connection()
    candidates = [as_of]
    earliest_visit = connection.execute(
        select(VisitRow.local_date)
        .where(VisitRow.doctor_id.in_(who), VisitRow.deleted.is_(False))
        .order_by(VisitRow.local_date)
        .limit(1)
    ).scalar()
    earliest_assignment = connection.execute(
        select(func.min(Assignment.start)).where(Assignment.doctor_id.in_(who))
    ).scalar()
    earliest_training = connection.execute(
        select(func.min(Training.start)).where(
            Training.doctor_id.in_(who), Training.deleted.is_(False)
        )
    ).scalar()
    candidates += [d for d in (earliest_visit, earliest_assignment, earliest_training) if d]
    return min(candidates)


def judge(
    session: Session,
    doctors: list[str],
    period: DateRange,
    *,
    county: str | None,
    ruleset: str,
    as_of: date | None,
    cause: str,
    before_commit: Callable[[Session], None] | None = None,
) -> FlagChanges:
    """Re-evaluate `doctors` over the weeks of `period` on a window, and store their flags
    (place-level flags need everybody's data: the full evaluation judges them). `as_of`
    None is a live evaluation: today in China, still open."""
    live = as_of is None
    day = as_of or today_in_china()
    rules = ruleset_named(ruleset)
    index = windowed_index(
        facts_of(session, doctors),
        visit_loader(session, doctors),
        doctors=doctors,
        period=period,
        as_of=day,
        ruleset=rules,
        first_day=first_day_of(session, county, day),
        load_places=place_loader(session),
    )
    flags = [
        f
        for f in evaluate(
            Scenario(), as_of=day, ruleset=rules, doctors=doctors, period=period, index=index,
            today_open=live,
        )
        if f.doctor is not None
    ]  # fmt: skip
    session.rollback()  # end the read transaction; writing starts with the counter lock
    stored = and_(
        FlagRecord.doctor_id.in_(doctors),
        FlagRecord.scope_start <= period[1],
        FlagRecord.scope_end >= period[0],
    )
    return _store(session, flags, stored, cause=cause, before_commit=before_commit)


def judge_entries(
    session: Session,
    doctors: list[str],
    period: DateRange,
    *,
    county: str | None,
    cause: str,
    settings: Settings,
    before_commit: Callable[[Session], None] | None = None,
) -> int:
    """`judge` as the evaluation queue calls it (server/evaluation_queue.py `Judge`)."""
    return judge(
        session,
        doctors,
        period,
        county=county,
        ruleset=settings.ruleset,
        as_of=settings.as_of,
        cause=cause,
        before_commit=before_commit,
    ).total()
