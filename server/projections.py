"""Typed tables kept from the synced records, in the same transaction as each write."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy.orm import Session

from server.models import Leave, SyncRecord, Training, Visit
from sync.protocol import LEAVE, TRAININGS, VISITS


def project(session: Session, collection: str, row: SyncRecord) -> None:
    data = row.data or {}
    if collection == VISITS:
        visit = session.get(Visit, row.id)
        if row.deleted:
            if visit is not None:
                visit.deleted, visit.version = True, row.version
            return
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
    elif collection in (LEAVE, TRAININGS):
        model = Leave if collection == LEAVE else Training
        item = session.get(model, row.id)
        if row.deleted:
            if item is not None:
                item.deleted = True
            return
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
