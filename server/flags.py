"""Flags on the server: evaluate the rules (`rules/`) over stored data, keep each flag with
its history, and mirror it into the sync log so the doctor's device pulls it.

After a push only the affected doctors and weeks are re-evaluated (`reevaluate`); place-
and county-level rules (coverage, staffing), which depend on everybody's data, are judged
by the full evaluation (`evaluate_all`, run after an import and by `zhuxun reevaluate`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from functools import cache
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from rules import Flag, RuleSet, evaluate, load_ruleset, load_scenario
from server import webhooks
from server.models import Assignment, Doctor, FlagHistory, FlagRecord, OrgUnit, SyncRecord
from server.store import RecordScope, SqlSyncStore, WrittenRecord
from sync.protocol import FLAGS, LEAVE, TRAININGS, VISITS

log = logging.getLogger(__name__)

OPEN, RESOLVED, EXCUSED = "open", "resolved", "excused"
CHINA = timezone(timedelta(hours=8))
DateRange = tuple[date, date]


@cache
def ruleset_named(name: str) -> RuleSet:
    return load_ruleset(name)


def today_in_china() -> date:
    return datetime.now(CHINA).date()


@dataclass
class FlagChanges:
    opened: int = 0
    changed: int = 0
    resolved: int = 0
    reopened: int = 0
    keys: list[str] = field(default_factory=list)

    def total(self) -> int:
        return self.opened + self.changed + self.resolved + self.reopened

    def add(self, other: FlagChanges) -> None:
        self.opened += other.opened
        self.changed += other.changed
        self.resolved += other.resolved
        self.reopened += other.reopened
        self.keys += other.keys

    def __str__(self) -> str:
        return (
            f"flags: {self.opened} opened, {self.changed} changed, "
            f"{self.resolved} resolved, {self.reopened} reopened"
        )


def _scenario(session: Session, counties: set[str], doctor_ids: set[str] | None) -> dict[str, Any]:
    units = list(session.scalars(select(OrgUnit).where(OrgUnit.county_code.in_(counties))))
    doctors = list(session.scalars(select(Doctor).where(Doctor.county_code.in_(counties))))
    who = doctor_ids if doctor_ids is not None else {d.id for d in doctors}
    assignments = list(session.scalars(select(Assignment).where(Assignment.doctor_id.in_(who))))
    records = session.scalars(
        select(SyncRecord).where(
            SyncRecord.collection.in_((VISITS, LEAVE, TRAININGS)),
            SyncRecord.deleted.is_(False),
            SyncRecord.doctor_id.in_(who),
        )
    )
    sections: dict[str, list[dict[str, Any]]] = {VISITS: [], LEAVE: [], TRAININGS: []}
    for row in records:
        sections[row.collection].append({**row.data, "id": row.id})
    return {
        "places": [
            {
                "code": u.code,
                "name": u.name,
                "level": u.level,
                "parent": u.parent_code,
                "population": u.population,
                "has_clinic": u.has_clinic,
                "lat": u.lat,
                "lon": u.lon,
            }
            for u in units
        ],
        "doctors": [
            {"id": d.id, "name": d.name, "qualification": d.qualification, "home": d.home_code}
            for d in doctors
        ],
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
        ],
        "visits": sections[VISITS],
        "leave": sections[LEAVE],
        "trainings": sections[TRAININGS],
    }


def _flag_scope(flag: Flag, units: dict[str, OrgUnit], doctors: dict[str, Doctor]) -> RecordScope:
    if flag.doctor and flag.doctor in doctors:
        doctor = doctors[flag.doctor]
        return RecordScope(doctor.id, doctor.township_code, doctor.county_code)
    unit = units.get(flag.subject_id)
    if unit is not None:
        return RecordScope(
            None,
            unit.township_code or (unit.code if unit.level == "township" else None),
            unit.county_code,
        )
    return RecordScope()


def _body(row: FlagRecord) -> dict[str, Any]:
    return {**row.body, "state": row.state}


def _notify_opened(session: Session, row: FlagRecord, now: datetime) -> None:
    """A flag opened (or reopened): a webhook event in the same transaction."""
    payload = webhooks.flag_payload(row.body, township_code=row.township_code)
    webhooks.enqueue(session, webhooks.FLAG_OPENED, payload, county_code=row.county_code, at=now)


def _store(
    session: Session,
    flags: list[Flag],
    stored_query: Any,
    *,
    cause: str,
    counties: set[str],
) -> FlagChanges:
    """Replace the stored flags selected by `stored_query` with `flags`, recording history."""
    changes = FlagChanges()
    store = SqlSyncStore(session)
    writer = store.writer()  # the counter lock first: this transaction writes sync records
    units = {
        u.code: u for u in session.scalars(select(OrgUnit).where(OrgUnit.county_code.in_(counties)))
    }
    doctors = {
        d.id: d for d in session.scalars(select(Doctor).where(Doctor.county_code.in_(counties)))
    }
    stored = {row.key: row for row in session.scalars(stored_query)}
    now = datetime.now(UTC)
    touched: list[FlagRecord] = []
    fresh = {flag.key: flag for flag in flags}
    existing = (
        {
            row.key: row
            for row in session.scalars(select(FlagRecord).where(FlagRecord.key.in_(list(fresh))))
        }
        if fresh
        else {}
    )
    for key, flag in fresh.items():
        body = flag.to_dict()
        row = existing.get(key)
        if row is None:
            scope = _flag_scope(flag, units, doctors)
            row = FlagRecord(
                key=key,
                rule=flag.rule,
                status=flag.status,
                state=OPEN,
                subject_type=flag.subject_type,
                subject_id=flag.subject_id,
                period=flag.period,
                doctor_id=scope.doctor_id,
                township_code=scope.township_code,
                county_code=scope.county_code,
                scope_start=flag.scope[0],
                scope_end=flag.scope[1],
                body=body,
                opened_at=now,
                updated_at=now,
            )
            session.add(row)
            session.add(
                FlagHistory(key=key, at=now, change="opened", before=None, after=body, cause=cause)
            )
            changes.opened += 1
            _notify_opened(session, row, now)
        elif row.state == RESOLVED:
            session.add(
                FlagHistory(
                    key=key, at=now, change="reopened", before=_body(row), after=body, cause=cause
                )
            )
            row.state, row.status, row.body, row.updated_at = OPEN, flag.status, body, now
            changes.reopened += 1
            _notify_opened(session, row, now)
        elif row.body != body:
            session.add(
                FlagHistory(
                    key=key, at=now, change="changed", before=_body(row), after=body, cause=cause
                )
            )
            row.status, row.body, row.updated_at = flag.status, body, now
            changes.changed += 1
        else:
            continue
        touched.append(row)
    for key, row in stored.items():
        if key in fresh or row.state == RESOLVED:
            continue
        session.add(
            FlagHistory(
                key=key, at=now, change="resolved", before=_body(row), after=None, cause=cause
            )
        )
        row.state, row.updated_at = RESOLVED, now
        changes.resolved += 1
        touched.append(row)
    preloaded = store.load_many((FLAGS, row.key) for row in touched)
    for row in touched:
        store.put_server_record(
            FLAGS,
            row.key,
            _body(row),
            RecordScope(row.doctor_id, row.township_code, row.county_code),
            updated_by="rules",
            writer=writer,
            preloaded=preloaded,
        )
        changes.keys.append(row.key)
    writer.finish()
    session.commit()
    return changes


def week_bounds(first: date, last: date) -> DateRange:
    return first - timedelta(days=first.weekday()), last + timedelta(days=6 - last.weekday())


def reevaluate(
    session: Session,
    doctors: Iterable[str],
    period: DateRange,
    *,
    ruleset: str,
    as_of: date,
    cause: str,
) -> FlagChanges:
    """Re-evaluate only `doctors` over the ISO weeks of `period` (after a push or edit)."""
    doctor_ids = set(doctors)
    if not doctor_ids:
        return FlagChanges()
    counties = set(session.scalars(select(Doctor.county_code).where(Doctor.id.in_(doctor_ids))))
    scenario = load_scenario(_scenario(session, counties, doctor_ids))
    weeks = week_bounds(*period)
    flags = [
        f
        for f in evaluate(
            scenario, as_of=as_of, ruleset=ruleset_named(ruleset), doctors=doctor_ids, period=weeks
        )
        if f.doctor is not None  # place-level flags need everybody's data: full evaluation
    ]
    session.rollback()  # end the read transaction; writing starts with the counter lock
    stored = select(FlagRecord).where(
        FlagRecord.doctor_id.in_(doctor_ids),
        FlagRecord.scope_start <= weeks[1],
        FlagRecord.scope_end >= weeks[0],
    )
    return _store(session, flags, stored, cause=cause, counties=counties)


def evaluate_all(
    session: Session,
    *,
    ruleset: str,
    as_of: date,
    cause: str,
    counties: Iterable[str] | None = None,
) -> FlagChanges:
    """Evaluate every rule for whole counties (after an import; `zhuxun reevaluate`)."""
    wanted = (
        set(counties)
        if counties is not None
        else set(session.scalars(select(OrgUnit.code).where(OrgUnit.level == "county")))
    )
    total = FlagChanges()
    for county in sorted(wanted):
        scenario = load_scenario(_scenario(session, {county}, None))
        flags = evaluate(scenario, as_of=as_of, ruleset=ruleset_named(ruleset))
        session.rollback()
        stored = select(FlagRecord).where(
            or_(
                FlagRecord.county_code == county,
                and_(FlagRecord.county_code.is_(None), FlagRecord.subject_id == county),
            )
        )
        result = _store(session, flags, stored, cause=cause, counties={county})
        total.add(result)
    return total


def affected_by(rows: Iterable[WrittenRecord]) -> tuple[set[str], DateRange | None]:
    """The doctors and the date span touched by written visit, leave and training records."""
    doctors: set[str] = set()
    first: date | None = None
    last: date | None = None
    for row in rows:
        data = row.data or {}
        if row.collection not in (VISITS, LEAVE, TRAININGS) or not row.doctor_id:
            continue
        try:
            if row.collection == VISITS:
                start = datetime.fromisoformat(data["check_in"]).date()
                end = datetime.fromisoformat(data["check_out"]).date()
            else:
                start, end = date.fromisoformat(data["start"]), date.fromisoformat(data["end"])
        except (KeyError, TypeError, ValueError):
            continue
        doctors.add(row.doctor_id)
        first = start if first is None else min(first, start)
        last = end if last is None else max(last, end)
    return doctors, (first, last) if first and last else None
