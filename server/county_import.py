"""Bulk import of a county's places, doctors, assignments and users from spreadsheets
(issue 15): a dry run that reports every problem by sheet, row and column in both
languages, then the import, all or nothing, upserting by code (a re-import of the same file
changes nothing; a later file changes what differs).

Reference data goes through the scenario importer (server/importer.py), which writes the
typed tables and the server records devices pull; users through server/accounts.py, with a
one-time password for each new account. Both in one database transaction: the scenario
importer's own commit becomes a savepoint of it (SQLAlchemy's "join a session into an
external transaction" recipe), and a failure anywhere rolls everything back.

No Flask here: the pages, the API and `zhuxun import` call `check` and `apply`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from server import accounts
from server.actor import COUNTY_ADMIN, DOCTOR, TOWNSHIP_REVIEWER, Actor
from server.errors import Forbidden, InvalidInput
from server.models import Doctor, OrgUnit, SyncRecord, User
from server.records.importer import import_scenario, place_record
from server.spreadsheets import (
    ASSIGNMENTS,
    DOCTORS,
    KINDS,
    PLACES,
    USERS,
    CellError,
    Upload,
    error_at,
    key_field,
)
from sync.protocol import ASSIGNMENTS as ASSIGNMENT_RECORDS
from sync.protocol import DOCTORS as DOCTOR_RECORDS
from sync.protocol import PLACES as PLACE_RECORDS

_RECORDS = {PLACES: PLACE_RECORDS, DOCTORS: DOCTOR_RECORDS, ASSIGNMENTS: ASSIGNMENT_RECORDS}
# The fields of each kind as the importer writes them to the sync log, with their defaults.
_FIELDS: dict[str, dict[str, Any]] = {
    PLACES: {"code": None, "name": None, "level": None, "parent": None, "population": None,
             "has_clinic": False, "lat": None, "lon": None},
    DOCTORS: {"id": None, "name": None, "qualification": None, "home": None},
    ASSIGNMENTS: {"id": None, "doctor": None, "kind": None, "places": None, "start": None,
                  "end": None, "slots": []},
    USERS: {"username": None, "role": None, "doctor": None, "unit": None, "active": True},
}  # fmt: skip
_PARENT_LEVEL = {"township": "county", "village": "township"}


class ImportRefused(InvalidInput):
    """The upload has problems; nothing was written. `problems` lists them by cell."""

    def __init__(self, problems: list[CellError]) -> None:
        super().__init__(
            f"the import has {len(problems)} problem(s); nothing was changed",
            details={"problems": [p.to_dict() for p in problems]},
        )
        self.problems = problems


@dataclass
class ImportPlan:
    """What an import would do (a dry run) or did: per kind, the keys it creates, changes
    and leaves as they are; the problems that stop it; the one-time passwords of the new
    users (only after `apply`)."""

    errors: list[CellError] = field(default_factory=list)
    new: dict[str, list[str]] = field(default_factory=dict)
    changed: dict[str, list[str]] = field(default_factory=dict)
    unchanged: dict[str, list[str]] = field(default_factory=dict)
    records: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    passwords: dict[str, str] = field(default_factory=dict)
    applied: bool = False

    @property
    def ok(self) -> bool:
        return not self.errors

    def counts(self) -> dict[str, dict[str, int]]:
        return {
            kind: {
                "new": len(self.new.get(kind, [])),
                "changed": len(self.changed.get(kind, [])),
                "unchanged": len(self.unchanged.get(kind, [])),
            }
            for kind in KINDS
            if kind in self.records
        }

    def changes_duty(self) -> bool:
        """Whether doctors or assignments changed: then flags are evaluated again."""
        return any(self.new.get(k) or self.changed.get(k) for k in (DOCTORS, ASSIGNMENTS))

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "applied": self.applied,
            "counts": self.counts(),
            "errors": [e.to_dict() for e in self.errors],
            "passwords": dict(self.passwords),
        }


class _Known:
    """Places and doctors by code: the upload's first, then the database's."""

    def __init__(self, session: Session, upload: Upload) -> None:
        self.session = session
        self.places = {p["code"]: p for p in upload.rows(PLACES) if "code" in p}
        self.doctors = {d["id"]: d for d in upload.rows(DOCTORS) if "id" in d}
        self._db_places: dict[str, OrgUnit | None] = {}
        self._db_doctors: dict[str, Doctor | None] = {}

    def place(self, code: str) -> dict[str, Any] | None:
        if code in self.places:
            return self.places[code]
        if code not in self._db_places:
            self._db_places[code] = self.session.get(OrgUnit, code)
        unit = self._db_places[code]
        return None if unit is None else place_record(unit)

    def doctor(self, doctor_id: str) -> dict[str, Any] | None:
        if doctor_id in self.doctors:
            return self.doctors[doctor_id]
        if doctor_id not in self._db_doctors:
            self._db_doctors[doctor_id] = self.session.get(Doctor, doctor_id)
        row = self._db_doctors[doctor_id]
        if row is None:
            return None
        # As the sync log has it, so the importer finds it unchanged.
        record = self.session.get(SyncRecord, (DOCTOR_RECORDS, doctor_id))
        if record is not None and not record.deleted:
            return dict(record.data)
        return {"id": row.id, "name": row.name, "qualification": row.qualification,
                "home": row.home_code}  # fmt: skip

    def county_of(self, code: str | None) -> str | None:
        """The county a place belongs to, following parents through upload and database."""
        seen = set()
        while code and code not in seen:
            seen.add(code)
            place = self.place(code)
            if place is None:
                return None
            if place.get("level") == "county":
                return code
            code = place.get("parent")
        return None

    def used_from_database(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The database's places and doctors the upload's rows lean on, with every ancestor
        of a place: the scenario importer resolves townships and counties from them."""
        places: dict[str, dict[str, Any]] = {}
        pending = [
            code
            for code, unit in self._db_places.items()
            if unit is not None and code not in self.places
        ]
        for place in self.places.values():
            if place.get("parent"):
                pending.append(place["parent"])
        doctors = [
            self.doctor(d)
            for d, row in self._db_doctors.items()
            if row is not None and d not in self.doctors
        ]
        pending += [d["home"] for d in doctors if d]
        while pending:
            code = pending.pop()
            if code in places or code in self.places:
                continue
            unit = self.session.get(OrgUnit, code)
            if unit is None:
                continue
            places[code] = place_record(unit)
            if unit.parent_code:
                pending.append(unit.parent_code)
        return list(places.values()), [d for d in doctors if d]


def _user_dict(user: User) -> dict[str, Any]:
    return {
        "username": user.username,
        "role": user.role,
        "doctor": user.doctor_id,
        "unit": user.unit_code,
        "active": user.active,
    }


def check(session: Session, upload: Upload, actor: Actor | None = None) -> ImportPlan:
    """The dry run: every problem of the upload, and what importing it would change.
    `actor` (a county admin) limits the import to their county; None (the command line)
    allows any county. Reads only."""
    plan = ImportPlan(errors=list(upload.errors))
    if actor is not None and actor.role != COUNTY_ADMIN:
        raise Forbidden("only a county admin imports")
    known = _Known(session, upload)
    county = actor.county_code if actor is not None else None

    def error(kind: str, i: int, column: str, en: str, zh: str) -> None:
        plan.errors.append(error_at(upload, kind, i, column, en, zh))

    for i, place in enumerate(upload.rows(PLACES)):
        level, parent = place.get("level"), place.get("parent")
        if level == "county" and parent:
            error(PLACES, i, "parent", "a county has no parent", "县不填上级编码")
        elif level in _PARENT_LEVEL and not parent:
            error(PLACES, i, "parent", f"a {level} needs its parent's code", "须填写上级编码")
        elif level in _PARENT_LEVEL and parent:
            above = known.place(parent)
            if above is None:
                error(PLACES, i, "parent", f"no place {parent!r}", f"没有编码为“{parent}”的地点")
            elif above.get("level") != _PARENT_LEVEL[level]:
                error(PLACES, i, "parent", f"a {level}'s parent must be a {_PARENT_LEVEL[level]}",
                      "上级的级别不对（村的上级是乡镇，乡镇的上级是县）")  # fmt: skip
        existing = session.get(OrgUnit, place["code"]) if "code" in place else None
        if existing is not None and level and existing.level != level:
            error(PLACES, i, "level", f"{place['code']} is a {existing.level} already",
                  "已有地点的级别不能更改")  # fmt: skip
        if county and "code" in place and known.county_of(place["code"]) not in (county, None):
            error(PLACES, i, "code", "the place is outside your county", "该地点不在本县")
    for i, doctor in enumerate(upload.rows(DOCTORS)):
        home = doctor.get("home")
        if home and known.place(home) is None:
            error(DOCTORS, i, "home", f"no place {home!r}", f"没有编码为“{home}”的地点")
        elif home and county and known.county_of(home) not in (county, None):
            error(DOCTORS, i, "home", "the place is outside your county", "该单位不在本县")
    for i, assignment in enumerate(upload.rows(ASSIGNMENTS)):
        doctor_id = assignment.get("doctor")
        doctor = known.doctor(doctor_id) if doctor_id else None
        if doctor_id and doctor is None:
            error(
                ASSIGNMENTS,
                i,
                "doctor",
                f"no doctor {doctor_id!r}",
                f"没有编号为“{doctor_id}”的医生",
            )
        elif doctor and county and known.county_of(doctor.get("home")) not in (county, None):
            error(ASSIGNMENTS, i, "doctor", "the doctor is outside your county", "该医生不在本县")
        for code in assignment.get("places") or []:
            if known.place(code) is None:
                error(ASSIGNMENTS, i, "places", f"no place {code!r}", f"没有编码为“{code}”的地点")
                break
        start, end = assignment.get("start"), assignment.get("end")
        if start and end and end < start:
            error(ASSIGNMENTS, i, "end", "ends before it starts", "结束日期早于开始日期")
    for i, user in enumerate(upload.rows(USERS)):
        _check_user(known, user, county, lambda c, en, zh, i=i: error(USERS, i, c, en, zh))

    for kind in KINDS:
        if kind not in upload.sheets:
            continue
        _plan_kind(session, upload, kind, plan)
    plan.errors.sort(key=lambda e: (KINDS.index(_kind_of_sheet(upload, e.sheet)), e.row))
    return plan


def _kind_of_sheet(upload: Upload, name: str) -> str:
    return next((k for k, s in upload.sheets.items() if s.name == name), PLACES)


def _check_user(known: _Known, user: dict[str, Any], county: str | None, error: Any) -> None:
    role = user.get("role")
    if role == DOCTOR:
        doctor_id = user.get("doctor")
        if not doctor_id:
            error("doctor", "a doctor's account needs the doctor's id", "医生账号须填写医生编号")
        else:
            doctor = known.doctor(doctor_id)
            if doctor is None:
                error("doctor", f"no doctor {doctor_id!r}", f"没有编号为“{doctor_id}”的医生")
            elif county and known.county_of(doctor.get("home")) not in (county, None):
                error("doctor", "the doctor is outside your county", "该医生不在本县")
        if user.get("unit"):
            error("unit", "a doctor's account has no unit", "医生账号不填单位编码")
    elif role in (TOWNSHIP_REVIEWER, COUNTY_ADMIN):
        wanted = "township" if role == TOWNSHIP_REVIEWER else "county"
        unit_code = user.get("unit")
        unit = known.place(unit_code) if unit_code else None
        if unit is None or unit.get("level") != wanted:
            error("unit", f"needs the code of a {wanted}",
                  "须填写乡镇编码" if wanted == "township" else "须填写县编码")  # fmt: skip
        elif county and known.county_of(unit_code) not in (county, None):
            error("unit", "the unit is outside your county", "该单位不在本县")
        if user.get("doctor"):
            error("doctor", "only a doctor's account has a doctor", "只有医生账号填写医生编号")


def _current(session: Session, kind: str, key: str) -> dict[str, Any] | None:
    if kind == USERS:
        user = session.scalar(select(User).where(User.username == key))
        return None if user is None else _user_dict(user)
    row = session.get(SyncRecord, (_RECORDS[kind], key))
    return None if row is None or row.deleted else dict(row.data)


def _plan_kind(session: Session, upload: Upload, kind: str, plan: ImportPlan) -> None:
    """Each row as it will be stored: the current record with the upload's columns laid
    over it (a column the sheet leaves out keeps its value), sorted into new, changed and
    unchanged."""
    sheet = upload.sheets[kind]
    present = set(sheet.headers)
    key = key_field(kind)
    records = plan.records.setdefault(kind, [])
    for row in sheet.rows:
        if key not in row:
            continue
        current = _current(session, kind, row[key])
        merged = dict(current) if current is not None else dict(_FIELDS[kind])
        for name in _FIELDS[kind]:
            if name in present:
                merged[name] = row.get(name, _FIELDS[kind][name])
        records.append(merged)
        bucket = plan.new if current is None else plan.changed
        if current == merged:
            bucket = plan.unchanged
        bucket.setdefault(kind, []).append(row[key])


def apply(
    session: Session,
    upload: Upload,
    actor: Actor | None = None,
    *,
    hash_password: Callable[[str], str],
    by: str | None = None,
) -> ImportPlan:
    """Check, then import everything or nothing. Raises `ImportRefused` with the problems.
    `hash_password` hashes the new users' one-time passwords; `by` names who imports in
    the audit log (the actor's username by default)."""
    plan = check(session, upload, actor)
    if not plan.ok:
        raise ImportRefused(plan.errors)
    who = by or (actor.username if actor else "import")
    changed = {
        kind: set(plan.new.get(kind, [])) | set(plan.changed.get(kind, [])) for kind in KINDS
    }
    if not any(changed.values()):
        plan.applied = True
        return plan
    known = _Known(session, upload)
    scenario = _scenario(plan, known)
    session.rollback()  # the reads above end here; the import has its own transaction
    bind = session.get_bind()
    with bind.connect() as connection:
        outer = connection.begin()
        inner = Session(bind=connection, join_transaction_mode="create_savepoint")
        try:
            import_scenario(inner, scenario)
            users = {u["username"]: u for u in plan.records.get(USERS, [])}
            for username in plan.new.get(USERS, []):
                user = users[username]
                plan.passwords[username] = accounts.create_account(
                    inner, who, username, user["role"], doctor_id=user["doctor"],
                    unit_code=user["unit"], active=user["active"], hash_password=hash_password,
                )  # fmt: skip
            for username in plan.changed.get(USERS, []):
                user = users[username]
                accounts.update_account(
                    inner, who, username, role=user["role"], doctor_id=user["doctor"],
                    unit_code=user["unit"], active=user["active"],
                )  # fmt: skip
            accounts.audit_import(inner, who, plan.counts(), actor)
            inner.flush()
            outer.commit()
        except BaseException:
            outer.rollback()
            raise
        finally:
            inner.close()
    plan.applied = True
    return plan


def _scenario(plan: ImportPlan, known: _Known) -> dict[str, Any]:
    """The scenario the importer writes: the upload's places, doctors and assignments that
    are new or changed, with the database's rows they lean on (unchanged, so left as they
    are by the importer's upsert)."""
    keep = {kind: set(plan.new.get(kind, [])) | set(plan.changed.get(kind, [])) for kind in KINDS}
    places = [p for p in plan.records.get(PLACES, []) if p["code"] in keep[PLACES]]
    doctors = [d for d in plan.records.get(DOCTORS, []) if d["id"] in keep[DOCTORS]]
    assignments = [a for a in plan.records.get(ASSIGNMENTS, []) if a["id"] in keep[ASSIGNMENTS]]
    # Only these go in; every other code they name is looked up in the database (an
    # unchanged row of the upload is in the database as it is).
    known.places = {p["code"]: p for p in places}
    known.doctors = {d["id"]: d for d in doctors}
    for place in places:
        if place.get("parent"):
            known.place(place["parent"])
    for assignment in assignments:
        known.doctor(assignment["doctor"])
        for code in assignment["places"]:
            known.place(code)
    for doctor in doctors:
        known.place(doctor["home"])
    more_places, more_doctors = known.used_from_database()
    return {
        "places": places + more_places,
        "doctors": doctors + [d for d in more_doctors if d["id"] not in known.doctors],
        "assignments": assignments,
    }


def export_rows(session: Session, county: str) -> dict[str, list[dict[str, Any]]]:
    """A county's places, doctors, assignments and users as rows of the import's sheets
    (server/spreadsheets.write_xlsx): what a county admin downloads, edits and imports."""
    places = session.scalars(
        select(OrgUnit).where(OrgUnit.county_code == county).order_by(OrgUnit.code)
    )
    doctors = list(
        session.scalars(select(Doctor).where(Doctor.county_code == county).order_by(Doctor.id))
    )
    doctor_ids = [d.id for d in doctors]

    def records(collection: str, ids: Iterable[str]) -> list[dict[str, Any]]:
        rows = session.scalars(
            select(SyncRecord)
            .where(SyncRecord.collection == collection, SyncRecord.county_code == county)
            .order_by(SyncRecord.id)
        )
        wanted = set(ids)
        return [
            dict(r.data) for r in rows if not r.deleted and (not wanted or r.doctor_id in wanted)
        ]

    users = session.scalars(select(User).order_by(User.username))
    units = {u.code for u in session.scalars(select(OrgUnit).where(OrgUnit.county_code == county))}
    return {
        PLACES: [place_record(u) for u in places],
        DOCTORS: [
            {"id": d.id, "name": d.name, "qualification": d.qualification, "home": d.home_code}
            for d in doctors
        ],
        ASSIGNMENTS: records(ASSIGNMENT_RECORDS, doctor_ids) if doctor_ids else [],
        USERS: [
            _user_dict(u) for u in users if (u.doctor_id in doctor_ids) or (u.unit_code in units)
        ],
    }
