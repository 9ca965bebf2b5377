"""Typed tables kept from the synced records, in the same transaction as each write."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.models import Leave, SyncRecord, Training, Visit
from sync.protocol import LEAVE, TRAININGS, VISITS

_MODELS: dict[str, type[Visit] | type[Leave] | type[Training]] = {
    VISITS: Visit,
    LEAVE: Leave,
    TRAININGS: Training,
}


class BatchProjection:
    """`project` for one batch: the typed rows of the whole batch are loaded with one query
    a table (`preload`) instead of one SELECT a record (docs/benchmarks.md, push profile)."""

    def __init__(self) -> None:
        self._known: dict[tuple[str, str], Any] = {}

    def preload(self, session: Session, keys: set[tuple[str, str]]) -> None:
        for collection, model in _MODELS.items():
            ids = [record_id for c, record_id in keys if c == collection]
            if not ids:
                continue
            found = {obj.id: obj for obj in session.scalars(select(model).where(model.id.in_(ids)))}
            for record_id in ids:
                self._known[(collection, record_id)] = found.get(record_id)

    def __call__(self, session: Session, collection: str, row: SyncRecord) -> None:
        project(session, collection, row, known=self._known)


def project(
    session: Session,
    collection: str,
    row: SyncRecord,
    *,
    known: dict[tuple[str, str], Any] | None = None,
) -> None:
    """Keep the typed table of `collection` in step with the synced record `row`."""
    model = _MODELS.get(collection)
    if model is None:
        return
    key = (collection, row.id)
    found = known is not None and key in known
    existing = known[key] if found else session.get(model, row.id)  # type: ignore[index]
    created = _project(session, collection, row, existing)
    if known is not None and created is not None:
        known[key] = created


def _project(session: Session, collection: str, row: SyncRecord, existing: Any) -> Any:
    data = row.data or {}
    if collection == VISITS:
        visit = existing
        if row.deleted:
            if visit is not None:
                visit.deleted, visit.version = True, row.version
            return visit
        check_in = datetime.fromisoformat(data["check_in"])
        if visit is None:
            visit = Visit(id=row.id)
            session.add(visit)
        visit.doctor_id = data["doctor"]
        visit.place_code = data["place"]
        visit.assignment_id = data.get("assignment")
        visit.kind = data["kind"]
        visit.check_in = check_in
        visit.check_out = datetime.fromisoformat(data["check_out"])
        visit.local_date = check_in.date()
        visit.patients = data["patients"]
        visit.deleted, visit.version = False, row.version
        return visit
    model = Leave if collection == LEAVE else Training
    item = existing
    if row.deleted:
        if item is not None:
            item.deleted = True
        return item
    if item is None:
        item = model(id=row.id)
        session.add(item)
    item.doctor_id = data["doctor"]
    item.start = date.fromisoformat(data["start"])
    item.end = date.fromisoformat(data["end"])
    item.deleted = False
    if isinstance(item, Leave):
        item.status = data.get("status") or "pending"
    else:
        item.title = data.get("title") or ""
    return item
