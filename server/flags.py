"""Flags on the server: evaluate the rules (`rules/`) over stored data, keep each flag with
its history, and mirror it into the sync log so the doctor's device pulls it.

After a write only the doctor-weeks it touched are judged again: the write puts them in
the evaluation queue (server/evaluation_queue.py) and whoever settles the queue calls
`judge_entries`, which judges them on a window of the stored data (`judge`). Place- and
county-level rules (coverage, staffing), which depend on everybody's data, are judged by
the full evaluation (`evaluate_all`, run after an import and by `zhuxun reevaluate`). No
Flask here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, func, insert, or_, select, update
from sqlalchemy.orm import Session

from rules import Flag, Place, RuleSet, Scenario, Visit, evaluate, load_ruleset
from rules.periods import CHINA_TZ
from rules.plan import WeekPlan, week_plans
from rules.scenario import trusted_scenario
from rules.window import windowed_index
from server import evaluation_queue, webhooks
from server.actor import Actor
from server.models import (
    Assignment,
    Doctor,
    FlagHistory,
    FlagRecord,
    OrgUnit,
    SyncRecord,
    Training,
)
from server.models import Visit as VisitRow
from server.records.importer import place_record
from server.records.sql_store import RecordScope, SqlSyncStore
from sync.protocol import FLAGS, LEAVE, TRAININGS, VISITS

log = logging.getLogger(__name__)

OPEN, RESOLVED, EXCUSED = "open", "resolved", "excused"
DateRange = tuple[date, date]


@cache
def ruleset_named(name: str) -> RuleSet:
    return load_ruleset(name)


def today_in_china() -> date:
    return datetime.now(CHINA_TZ).date()


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


def scenario_for(
    session: Session, counties: set[str], doctor_ids: set[str] | None
) -> dict[str, Any]:
    """The rules scenario of whole counties (`doctor_ids` None), or of some doctors only:
    their assignments, records, and the places these name with the places above them (a
    doctor's own flags need no other doctor's data nor other places). Read with plain
    column queries, no ORM object a row."""
    if doctor_ids is None:
        who: Any = select(Doctor.id).where(Doctor.county_code.in_(counties)).scalar_subquery()
        doctor_filter = Doctor.county_code.in_(counties)
    else:
        who = list(doctor_ids)
        doctor_filter = Doctor.id.in_(who)
    # On the connection, not the session: plain rows, without the ORM's loading machinery.
    connection = session.connection()
    doctors = connection.execute(
        select(Doctor.id, Doctor.name, Doctor.qualification, Doctor.home_code).where(doctor_filter)
    ).all()
    assignments = connection.execute(
        select(
            Assignment.id,
            Assignment.doctor_id,
            Assignment.kind,
            Assignment.places,
            Assignment.start,
            Assignment.end,
            Assignment.slots,
        ).where(Assignment.doctor_id.in_(who))
    ).all()
    records = connection.execute(
        select(SyncRecord.collection, SyncRecord.id, SyncRecord.data).where(
            SyncRecord.collection.in_((VISITS, LEAVE, TRAININGS)),
            SyncRecord.deleted.is_(False),
            SyncRecord.doctor_id.in_(who),
        )
    )
    sections: dict[str, list[dict[str, Any]]] = {VISITS: [], LEAVE: [], TRAININGS: []}
    for collection, record_id, data in records:
        sections[collection].append({**data, "id": record_id})
    if doctor_ids is None:
        units = connection.execute(select(*_PLACE_COLUMNS).where(_UNITS.county_code.in_(counties)))
    else:
        named = {d.home_code for d in doctors} | {v["place"] for v in sections[VISITS]}
        named |= {code for a in assignments for code in a.places or ()}
        units = _places_with_parents(session, named)
    return {
        "places": [place_record(u) for u in units],
        "doctors": [_doctor_dict(d) for d in doctors],
        "assignments": [_assignment_dict(a) for a in assignments],
        "visits": sections[VISITS],
        "leave": sections[LEAVE],
        "trainings": sections[TRAININGS],
    }


_UNITS = OrgUnit.__table__.c
_PLACE_COLUMNS = (
    _UNITS.code,
    _UNITS.name,
    _UNITS.level,
    _UNITS.parent_code,
    _UNITS.population,
    _UNITS.has_clinic,
    _UNITS.lat,
    _UNITS.lon,
)


def _places_with_parents(
    session: Session, codes: set[str], known: dict[str, Any] | None = None
) -> list[Any]:
    """The org units of `codes` and every unit above them (village → township → county).
    `known` holds units read before, by code: they are not read again, nor the units
    above them (a judgement reads its facts' places, then its visits', issue 14); the
    units read are added to it."""
    found: dict[str, Any] = known if known is not None else {}
    asked = set(codes)
    wanted = sorted(asked - found.keys())
    while wanted:
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            for unit in session.connection().execute(
                select(*_PLACE_COLUMNS).where(_UNITS.code.in_(chunk))
            ):
                found[unit.code] = unit
        # A code that is not stored stays missing (the rules skip what names it).
        wanted = sorted(
            {u.parent_code for u in found.values() if u.parent_code} - asked - found.keys()
        )
        asked.update(wanted)
    return list(found.values())


def _flag_scope(flag: Flag, units: dict[str, Any], doctors: dict[str, Any]) -> RecordScope:
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


def flag_body(row: Any) -> dict[str, Any]:
    """A flag as devices and the API see it: its rules body and its state (a FlagRecord
    or a _StoredFlag)."""
    return {**row.body, "state": row.state}


def _notify_opened(session: Session, row: Any, now: datetime) -> None:
    """A flag opened (or reopened): a webhook event in the same transaction."""
    payload = webhooks.flag_payload(row.body, township_code=row.township_code)
    webhooks.enqueue(session, webhooks.FLAG_OPENED, payload, county_code=row.county_code, at=now)


_FLAGS = FlagRecord.__table__


@dataclass(slots=True)
class _StoredFlag:
    """A row of `flags` as plain values (read and written with one query a batch)."""

    key: str
    rule: str
    status: str
    state: str
    subject_type: str
    subject_id: str
    period: str
    doctor_id: str | None
    township_code: str | None
    county_code: str | None
    scope_start: date
    scope_end: date
    body: dict[str, Any]
    opened_at: datetime
    updated_at: datetime


_FLAG_COLUMNS = tuple(f.name for f in fields(_StoredFlag))
_UPDATE_FLAG = (
    update(_FLAGS)
    .where(_FLAGS.c.key == bindparam("key_"))
    .values(
        status=bindparam("status"),
        state=bindparam("state"),
        body=bindparam("body"),
        updated_at=bindparam("updated_at"),
    )
)


def _load_flags(session: Session, where: ColumnElement[bool]) -> dict[str, _StoredFlag]:
    query = select(*(_FLAGS.c[name] for name in _FLAG_COLUMNS)).where(where)
    return {row[0]: _StoredFlag(*row) for row in session.connection().execute(query)}


@dataclass
class _FlagWrites:
    """What storing a judgement changes: rows to insert and update, their history, the
    webhook events of flags opened, and the tally."""

    inserted: list[_StoredFlag] = field(default_factory=list)
    updated: list[_StoredFlag] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    opened: list[_StoredFlag] = field(default_factory=list)
    changes: FlagChanges = field(default_factory=FlagChanges)

    def empty(self) -> bool:
        return not (self.inserted or self.updated)


def _flag_writes(
    session: Session, flags: list[Flag], stored_where: ColumnElement[bool], *, cause: str
) -> _FlagWrites:
    """Compare `flags` with the stored flags `stored_where` selects (and any stored flag
    with a key of `flags`): the writes that make the stored ones equal. Reads only."""
    out = _FlagWrites()
    changes = out.changes
    stored = _load_flags(session, stored_where)
    now = datetime.now(UTC)
    fresh = {flag.key: flag for flag in flags}
    existing = dict(stored)
    elsewhere = [key for key in fresh if key not in stored]
    for start in range(0, len(elsewhere), 500):
        existing.update(_load_flags(session, _FLAGS.c.key.in_(elsewhere[start : start + 500])))
    new = [flag for key, flag in fresh.items() if key not in existing]
    doctors, units = _scope_rows(session, new)

    def record(key: str, change: str, before: Any, after: Any) -> None:
        out.history.append(
            {"key": key, "at": now, "change": change, "before": before, "after": after,
             "cause": cause}
        )  # fmt: skip

    for key, flag in fresh.items():
        body = flag.to_dict()
        row = existing.get(key)
        if row is None:
            scope = _flag_scope(flag, units, doctors)
            row = _StoredFlag(
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
            out.inserted.append(row)
            out.opened.append(row)
            record(key, "opened", None, body)
            changes.opened += 1
        elif row.state == RESOLVED:
            record(key, "reopened", flag_body(row), body)
            row.state, row.status, row.body, row.updated_at = OPEN, flag.status, body, now
            out.updated.append(row)
            out.opened.append(row)
            changes.reopened += 1
        elif row.body != body:
            record(key, "changed", flag_body(row), body)
            row.status, row.body, row.updated_at = flag.status, body, now
            out.updated.append(row)
            changes.changed += 1
    for key, row in stored.items():
        if key in fresh or row.state == RESOLVED:
            continue
        record(key, "resolved", flag_body(row), None)
        row.state, row.updated_at = RESOLVED, now
        out.updated.append(row)
        changes.resolved += 1
    return out


def store_flags(
    session: Session,
    flags: list[Flag],
    stored_where: ColumnElement[bool],
    *,
    cause: str,
    before_commit: Callable[[Session], None] | None = None,
) -> FlagChanges:
    """Replace the stored flags selected by `stored_where` with `flags`, recording history;
    `before_commit` runs in the same transaction (the evaluation queue removes the entries
    judged, server/evaluation_queue.py).

    Most judgements after a push change no flag: they are compared first without the
    counter lock, and when nothing differs only `before_commit` is written, in a short
    transaction of its own that never waits for the lock every push takes (issue 14).
    Otherwise the comparison is made again under the lock (what another writer committed
    meanwhile counts), and the flag rows, their history and their sync records are written
    with one executemany a table; only the scopes of new flags are looked up."""
    if _flag_writes(session, flags, stored_where, cause=cause).empty():
        session.rollback()  # end the read: the removal starts its transaction with a write
        if before_commit is not None:
            before_commit(session)
        session.commit()
        return FlagChanges()
    session.rollback()
    store = SqlSyncStore(session)
    writer = store.writer()  # the counter lock first: this transaction writes sync records
    writes = _flag_writes(session, flags, stored_where, cause=cause)
    for row in writes.opened:
        _notify_opened(session, row, row.updated_at)
    if writes.inserted:
        session.execute(
            insert(_FLAGS), [{n: getattr(r, n) for n in _FLAG_COLUMNS} for r in writes.inserted]
        )
    if writes.updated:
        session.execute(
            _UPDATE_FLAG,
            [
                {"key_": r.key, "status": r.status, "state": r.state, "body": r.body,
                 "updated_at": r.updated_at}
                for r in writes.updated
            ],
        )  # fmt: skip
    if writes.history:
        session.execute(insert(FlagHistory.__table__), writes.history)
    touched = writes.inserted + writes.updated
    store.put_server_records(
        (
            (FLAGS, r.key, flag_body(r), RecordScope(r.doctor_id, r.township_code, r.county_code))
            for r in touched
        ),
        updated_by="rules",
        writer=writer,
    )
    writes.changes.keys += [r.key for r in touched]
    writer.finish()
    if before_commit is not None:
        before_commit(session)
    session.commit()
    return writes.changes


def _scope_rows(session: Session, flags: list[Flag]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The doctors and org units `_flag_scope` needs for `flags`, by id and by code."""
    doctor_ids = sorted({f.doctor for f in flags if f.doctor})
    codes = sorted({f.subject_id for f in flags})
    doctors: dict[str, Any] = {}
    units: dict[str, Any] = {}
    for start in range(0, len(doctor_ids), 500):
        chunk = doctor_ids[start : start + 500]
        query = select(Doctor.id, Doctor.township_code, Doctor.county_code)
        rows = session.connection().execute(query.where(Doctor.id.in_(chunk)))
        doctors.update({d.id: d for d in rows})
    for start in range(0, len(codes), 500):
        chunk = codes[start : start + 500]
        query = select(OrgUnit.code, OrgUnit.level, OrgUnit.township_code, OrgUnit.county_code)
        rows = session.connection().execute(query.where(OrgUnit.code.in_(chunk)))
        units.update({u.code: u for u in rows})
    return doctors, units


def week_bounds(first: date, last: date) -> DateRange:
    return first - timedelta(days=first.weekday()), last + timedelta(days=6 - last.weekday())


def evaluate_all(
    session: Session,
    *,
    ruleset: str,
    as_of: date,
    cause: str,
    counties: Iterable[str] | None = None,
    today_open: bool = False,
) -> FlagChanges:
    """Evaluate every rule for whole counties (after an import; `zhuxun reevaluate`);
    `today_open` for a live evaluation as of today (rules/engine.py)."""
    wanted = (
        set(counties)
        if counties is not None
        else set(session.scalars(select(OrgUnit.code).where(OrgUnit.level == "county")))
    )
    total = FlagChanges()
    for county in sorted(wanted):
        # Stored records were validated on the way in: parsed as trusted (issue 14).
        scenario = trusted_scenario(scenario_for(session, {county}, None))
        flags = evaluate(
            scenario, as_of=as_of, ruleset=ruleset_named(ruleset), today_open=today_open
        )
        session.rollback()
        stored = or_(
            FlagRecord.county_code == county,
            and_(FlagRecord.county_code.is_(None), FlagRecord.subject_id == county),
        )
        result = store_flags(session, flags, stored, cause=cause)
        total.add(result)
    return total


# --- judging doctor-weeks on a window (the evaluation queue's judge, issue 14) ---------------
#
# What one judgement reads: the doctors, their assignments, leave and trainings (few, read
# whole); their visits of the window (`visits` by doctor and local date, with the record from
# `sync_records`), widened only while `posting.continuity` needs it (rules/window.py); the
# places these name, with the places above them; and the county's first day (the earliest
# visit, assignment or training start), which decides the years `training.*` judges. Records
# are parsed as trusted (`rules.scenario.trusted_scenario`): they were validated on the way in.


def _doctor_dict(d: Any) -> dict[str, Any]:
    return {"id": d.id, "name": d.name, "qualification": d.qualification, "home": d.home_code}


def _assignment_dict(a: Any) -> dict[str, Any]:
    return {
        "id": a.id,
        "doctor": a.doctor_id,
        "kind": a.kind,
        "places": a.places,
        "start": a.start.isoformat(),
        "end": a.end.isoformat() if a.end else None,
        "slots": a.slots or [],
    }


def facts_of(
    session: Session, doctor_ids: list[str], places: dict[str, Any] | None = None
) -> Scenario:
    """Everything but visits for `doctor_ids`: the doctors, their assignments, leave and
    trainings, and the places these name (with the places above them; `places` keeps the
    units read for the judgement's later reads, `_places_with_parents`)."""
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
            "places": [place_record(u) for u in _places_with_parents(session, named, places)],
            "doctors": [_doctor_dict(d) for d in doctors],
            "assignments": [_assignment_dict(a) for a in assignments],
            "leave": sections[LEAVE],
            "trainings": sections[TRAININGS],
        }
    )


def visit_loader(session: Session, doctor_ids: list[str]) -> Callable[[date, date], list[Visit]]:
    """Reads the doctors' live visits whose check-in local date is in [first, last]."""
    typed = VisitRow.__table__.c
    records = SyncRecord.__table__.c

    def load(first: date, last: date) -> list[Visit]:
        # The window's visit ids as a subquery, not a join: without table statistics
        # SQLite's planner chose to scan every stored visit record for a join of 50
        # doctors (0.1 s of a 0.3 s judgement, issue 14); `IN (subquery)` makes it start
        # from the (doctor, day) index on both databases.
        ids = select(typed.id).where(
            typed.doctor_id.in_(doctor_ids), typed.local_date >= first, typed.local_date <= last
        )
        rows = session.connection().execute(
            select(records.id, records.data).where(
                records.collection == VISITS, records.id.in_(ids), records.deleted.is_(False)
            )
        )
        return list(trusted_scenario({"visits": [{**d, "id": i} for i, d in rows]}).visits)

    return load


def place_loader(
    session: Session, known: dict[str, Any] | None = None
) -> Callable[[set[str]], list[Place]]:
    """Reads the places of `codes` with the places above them; with `known` (the units a
    judgement read already, by code), only those not read yet are queried."""
    seen = known if known is not None else {}

    def load(codes: set[str]) -> list[Place]:
        _places_with_parents(session, codes, seen)
        units: dict[str, Any] = {}
        for code in codes:
            while code in seen and code not in units:
                units[code] = seen[code]
                code = seen[code].parent_code
        return list(trusted_scenario({"places": [place_record(u) for u in units.values()]}).places)

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
    places: dict[str, Any] = {}  # the org units read for this judgement, each read once
    index = windowed_index(
        facts_of(session, doctors, places),
        visit_loader(session, doctors),
        doctors=doctors,
        period=period,
        as_of=day,
        ruleset=rules,
        first_day=lambda: first_day_of(session, county, day),
        load_places=place_loader(session, places),
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
    return store_flags(session, flags, stored, cause=cause, before_commit=before_commit)


def judge_entries(
    session: Session,
    doctors: list[str],
    period: DateRange,
    *,
    county: str | None,
    cause: str,
    settings: evaluation_queue.Settings,
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


def settle_stale(
    session: Session,
    evaluation: evaluation_queue.Settings,
    own: ColumnElement[bool] | None = None,
) -> evaluation_queue.Settled:
    """Judge the flags writes left stale: everything due when requests settle the queue,
    and, waiting for them if another process holds them, the entries `own` selects (the
    caller's). The writes committed already: a failure is logged and left in the queue for
    the next settler, never lost."""
    report = evaluation_queue.Settled()
    try:
        if evaluation.in_requests:
            report.add(evaluation_queue.settle(session, evaluation, judge_entries))
        if own is not None:
            report.add(evaluation_queue.settle_own(session, evaluation, judge_entries, own))
    except Exception:  # noqa: BLE001 - derived data; see the docstring
        session.rollback()
        log.exception("settling the evaluation queue failed; the entries wait for the next")
    return report


def week_plans_for(
    session: Session,
    county: str,
    doctor: str,
    *,
    as_of: date,
    ruleset: str,
    weeks_before: int = 1,
    weeks_after: int = 2,
) -> list[WeekPlan]:
    """The doctor's weekly plans around `as_of` (rules/plan.py) from the data the server
    holds: their assignments, approved leave and trainings, the rule set and its calendar.
    The doctor's app counts its own visits against them offline (issue 12)."""
    scenario = trusted_scenario(scenario_for(session, {county}, {doctor}))
    return week_plans(
        scenario,
        doctor=doctor,
        around=as_of,
        ruleset=ruleset_named(ruleset),
        weeks_before=weeks_before,
        weeks_after=weeks_after,
    )


def rules_as_of(configured: str | None) -> date:
    """The day the rules judge as of: the configured one (ZHUXUN_RULES_AS_OF, for demos and
    tests) or today in China."""
    return date.fromisoformat(configured) if configured else today_in_china()


# Filters of the flag list and the column each one filters.
FLAG_FILTERS = {
    "rule": FlagRecord.rule,
    "doctor": FlagRecord.doctor_id,
    "period": FlagRecord.period,
    "status": FlagRecord.status,
    "state": FlagRecord.state,
    "place": FlagRecord.subject_id,
}


def list_flags(
    session: Session, actor: Actor, filters: dict[str, str], *, offset: int, limit: int
) -> list[dict[str, Any]]:
    """The flags in the actor's scope matching `filters` (names of FLAG_FILTERS), in key
    order: each flag's body with its review state and when it opened."""
    query = select(FlagRecord).where(actor.owns(FlagRecord))
    for name, value in filters.items():
        query = query.where(FLAG_FILTERS[name] == value)
    rows = session.scalars(query.order_by(FlagRecord.key).offset(offset).limit(limit))
    return [
        {**r.body, "state": r.state, "opened_at": r.opened_at.isoformat() if r.opened_at else None}
        for r in rows
    ]
