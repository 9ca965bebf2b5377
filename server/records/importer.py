"""`zhuxun import`: load a scenario file (docs/scenario-format.md) into the database.

Reference data (places, doctors, assignments) goes into the typed tables and, as server
records, into the sync log so devices pull it. Visits, leave and trainings go through the
same sync store as a device push, with change ids derived from their content, so importing
the same file twice changes nothing. Everything is checked before anything is written.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from forms import validate
from rules.model import DUTY_KINDS
from server.models import Assignment, Doctor, OrgUnit
from server.records.projections import BatchProjection, project
from server.records.sql_store import RecordScope, SqlSyncStore, WriteContext
from sync.protocol import ASSIGNMENTS, DOCTORS, LEAVE, PLACES, TRAININGS, VISITS, Op, Status
from sync.records import Change, valid_id

LEVELS = ("county", "township", "village")
QUALIFICATIONS = ("physician", "assistant_physician", "village_doctor", "other")
IMPORT_ORIGIN = "import"
CHUNK = 1000


class ScenarioError(ValueError):
    """A scenario that cannot be imported; `problems` lists each with its path."""

    def __init__(self, problems: list[str]) -> None:
        shown = problems[:20]
        more = f"\n… and {len(problems) - 20} more" if len(problems) > 20 else ""
        super().__init__("the scenario cannot be imported:\n" + "\n".join(shown) + more)
        self.problems = problems


@dataclass
class ImportReport:
    counts: dict[str, int] = field(default_factory=dict)
    unchanged: dict[str, int] = field(default_factory=dict)


def _date(value: object) -> date | None:
    try:
        return date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _check_reference_data(scenario: dict[str, Any], problems: list[str]) -> None:
    places = scenario.get("places") or []
    codes = {p.get("code") for p in places if isinstance(p, dict)}
    for i, place in enumerate(places):
        where = f"places[{i}]"
        if not isinstance(place, dict):
            problems.append(f"{where}: must be an object")
            continue
        if not valid_id(place.get("code")):
            problems.append(f"{where}.code: must be an administrative code")
        if not isinstance(place.get("name"), str) or not place.get("name"):
            problems.append(f"{where}.name: is required")
        if place.get("level") not in LEVELS:
            problems.append(f"{where}.level: must be one of {', '.join(LEVELS)}")
        if place.get("parent") is not None and place.get("parent") not in codes:
            problems.append(f"{where}.parent: unknown place {place.get('parent')!r}")
        if place.get("level") != "county" and place.get("parent") is None:
            problems.append(f"{where}.parent: a {place.get('level')} needs a parent")
        pop = place.get("population")
        if pop is not None and (isinstance(pop, bool) or not isinstance(pop, int) or pop < 0):
            problems.append(f"{where}.population: must be a whole number >= 0")
    doctors = scenario.get("doctors") or []
    for i, doctor in enumerate(doctors):
        where = f"doctors[{i}]"
        if not isinstance(doctor, dict):
            problems.append(f"{where}: must be an object")
            continue
        if not valid_id(doctor.get("id")):
            problems.append(f"{where}.id: must be an id")
        if doctor.get("qualification") not in QUALIFICATIONS:
            problems.append(f"{where}.qualification: must be one of {', '.join(QUALIFICATIONS)}")
        if doctor.get("home") not in codes:
            problems.append(f"{where}.home: unknown place {doctor.get('home')!r}")
    doctor_ids = {d.get("id") for d in doctors if isinstance(d, dict)}
    for i, assignment in enumerate(scenario.get("assignments") or []):
        where = f"assignments[{i}]"
        if not isinstance(assignment, dict):
            problems.append(f"{where}: must be an object")
            continue
        if not valid_id(assignment.get("id")):
            problems.append(f"{where}.id: must be an id")
        if assignment.get("doctor") not in doctor_ids:
            problems.append(f"{where}.doctor: unknown doctor {assignment.get('doctor')!r}")
        if assignment.get("kind") not in DUTY_KINDS:
            problems.append(f"{where}.kind: must be one of {', '.join(DUTY_KINDS)}")
        places_of = assignment.get("places")
        if not isinstance(places_of, list) or not places_of:
            problems.append(f"{where}.places: must be a non-empty list of place codes")
        else:
            for code in places_of:
                if code not in codes:
                    problems.append(f"{where}.places: unknown place {code!r}")
        if _date(assignment.get("start")) is None:
            problems.append(f"{where}.start: must be a date like 2026-01-05")
        if assignment.get("end") is not None and _date(assignment.get("end")) is None:
            problems.append(f"{where}.end: must be a date or null")
        for j, slot in enumerate(assignment.get("slots") or []):
            if (
                not isinstance(slot, dict)
                or slot.get("weekday") not in range(1, 8)
                or slot.get("slot") not in ("am", "pm")
            ):
                problems.append(
                    f'{where}.slots[{j}]: must be {{"weekday": 1-7, "slot": "am"|"pm"}}'
                )


def _place_rows(places: list[dict[str, Any]]) -> list[OrgUnit]:
    by_code = {p["code"]: p for p in places}

    def ancestor(code: str, level: str) -> str | None:
        seen = set()
        while code and code not in seen:
            seen.add(code)
            place = by_code.get(code)
            if place is None:
                return None
            if place["level"] == level:
                return code
            code = place.get("parent")
        return None

    def depth(place: dict[str, Any]) -> int:
        return LEVELS.index(place["level"])

    return [
        OrgUnit(
            code=p["code"],
            name=p["name"],
            level=p["level"],
            parent_code=p.get("parent"),
            county_code=ancestor(p["code"], "county") or p["code"],
            township_code=ancestor(p["code"], "township"),
            population=p.get("population"),
            has_clinic=bool(p.get("has_clinic")),
            lat=p.get("lat"),
            lon=p.get("lon"),
        )
        for p in sorted(places, key=depth)
    ]


def place_record(unit: Any) -> dict[str, Any]:
    """A place as its synced record (and the rules' scenario) says it; `unit` has the
    attributes of an OrgUnit row."""
    return {
        "code": unit.code,
        "name": unit.name,
        "level": unit.level,
        "parent": unit.parent_code,
        "population": unit.population,
        "has_clinic": unit.has_clinic,
        "lat": unit.lat,
        "lon": unit.lon,
    }


def _change_id(collection: str, record_id: str, data: dict[str, Any]) -> str:
    digest = hashlib.sha256(
        json.dumps([collection, record_id, data], sort_keys=True, ensure_ascii=False).encode()
    ).hexdigest()
    return f"imp-{digest[:40]}"


def import_scenario(
    session: Session,
    scenario: object,
    *,
    progress: Callable[[str, int, int], None] | None = None,
) -> ImportReport:
    if not isinstance(scenario, dict):
        raise ScenarioError(["the scenario must be a JSON object with places, doctors, …"])
    problems: list[str] = []
    _check_reference_data(scenario, problems)
    now = datetime.now(UTC)
    records: dict[str, list[tuple[str, dict[str, Any]]]] = {VISITS: [], LEAVE: [], TRAININGS: []}
    for collection, key, prefix in (
        (VISITS, "visits", "V"),
        (LEAVE, "leave", "L"),
        (TRAININGS, "trainings", "T"),
    ):
        for i, raw in enumerate(scenario.get(key) or []):
            if not isinstance(raw, dict):
                problems.append(f"{key}[{i}]: must be an object")
                continue
            record_id = raw.get("id") or f"{prefix}-{i + 1:06d}"
            if not valid_id(record_id):
                problems.append(f"{key}[{i}].id: must be an id")
                continue
            result = validate(collection, raw, now=now)
            for path, messages in result.errors.items():
                problems.append(f"{key}[{i}].{path}: {'; '.join(messages)}")
            if result.ok:
                records[collection].append((record_id, result.data))
    if problems:
        raise ScenarioError(problems)

    report = ImportReport()
    store = SqlSyncStore(session, projector=project)
    place_rows = _place_rows(scenario.get("places") or [])
    doctors = scenario.get("doctors") or []
    assignments = scenario.get("assignments") or []
    places_by_code = {p.code: p for p in place_rows}
    with session.no_autoflush:
        writer = store.writer()
        for unit in place_rows:
            session.merge(unit)
        session.flush()
        for unit in place_rows:
            _put_if_changed(
                store,
                writer,
                PLACES,
                unit.code,
                place_record(unit),
                RecordScope(None, unit.township_code, unit.county_code),
                report,
            )
        for d in doctors:
            home = places_by_code.get(d["home"]) or session.get(OrgUnit, d["home"])
            assert home is not None
            session.merge(
                Doctor(
                    id=d["id"],
                    name=d.get("name") or d["id"],
                    qualification=d["qualification"],
                    home_code=d["home"],
                    county_code=home.county_code,
                    township_code=home.township_code
                    or (home.code if home.level == "township" else None),
                )
            )
            data = {
                "id": d["id"],
                "name": d.get("name"),
                "qualification": d["qualification"],
                "home": d["home"],
            }
            _put_if_changed(
                store,
                writer,
                DOCTORS,
                d["id"],
                data,
                RecordScope(d["id"], home.township_code, home.county_code),
                report,
            )
        session.flush()
        doctor_rows = {d.id: d for d in session.scalars(select(Doctor))}
        for a in assignments:
            doctor = doctor_rows[a["doctor"]]
            session.merge(
                Assignment(
                    id=a["id"],
                    doctor_id=a["doctor"],
                    kind=a["kind"],
                    places=list(a["places"]),
                    start=_date(a["start"]),
                    end=_date(a.get("end")),
                    slots=list(a.get("slots") or []),
                )
            )
            data = {
                "id": a["id"],
                "doctor": a["doctor"],
                "kind": a["kind"],
                "places": a["places"],
                "start": a["start"],
                "end": a.get("end"),
                "slots": a.get("slots") or [],
            }
            _put_if_changed(
                store,
                writer,
                ASSIGNMENTS,
                a["id"],
                data,
                RecordScope(doctor.id, doctor.township_code, doctor.county_code),
                report,
            )
        writer.finish()
    session.commit()

    doctor_rows = {d.id: d for d in session.scalars(select(Doctor))}
    unit_rows = {u.code: u for u in session.scalars(select(OrgUnit))}
    problems = []
    for collection, items in records.items():
        total = len(items)
        for start in range(0, total, CHUNK):
            batch: list[tuple[Change, RecordScope]] = []
            for record_id, data in items[start : start + CHUNK]:
                doctor = doctor_rows.get(data["doctor"])
                if doctor is None:
                    problems.append(f"{collection} {record_id}: unknown doctor {data['doctor']!r}")
                    continue
                township, county = doctor.township_code, doctor.county_code
                if collection == VISITS:
                    place = unit_rows.get(data["place"])
                    if place is None:
                        problems.append(
                            f"{collection} {record_id}: unknown place {data['place']!r}"
                        )
                        continue
                    township, county = place.township_code or township, place.county_code
                change = Change(
                    collection,
                    record_id,
                    Op.UPSERT,
                    _change_id(collection, record_id, data),
                    0,
                    data,
                )
                batch.append((change, RecordScope(doctor.id, township, county)))
            if problems:
                session.rollback()
                raise ScenarioError(problems)
            store.projector = BatchProjection()  # one typed-row query a table a chunk
            results = store.apply_batch(
                batch, WriteContext(origin=IMPORT_ORIGIN, device_id="import")
            )
            _count(report, collection, (r.status for r in results))
            if progress:
                progress(collection, min(start + CHUNK, total), total)
    return report


def _count(report: ImportReport, collection: str, statuses: Iterable[Status]) -> None:
    for status in statuses:
        bucket = report.counts if status is Status.ACCEPTED else report.unchanged
        bucket[collection] = bucket.get(collection, 0) + 1


def _put_if_changed(
    store: SqlSyncStore,
    writer: Any,
    collection: str,
    record_id: str,
    data: dict[str, Any],
    scope: RecordScope,
    report: ImportReport,
) -> None:
    current = store.get(collection, record_id)
    if current is not None and not current.deleted and current.data == data:
        report.unchanged[collection] = report.unchanged.get(collection, 0) + 1
        return
    store.put_server_record(
        collection, record_id, data, scope, updated_by=IMPORT_ORIGIN, writer=writer
    )
    report.counts[collection] = report.counts.get(collection, 0) + 1
