"""Typed tables kept from the synced records, in the same transaction as each write."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from functools import cache
from typing import Any

from sqlalchemy import bindparam, inspect, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from server.models import Leave, Training, Visit
from server.records import bulk
from sync.protocol import LEAVE, TRAININGS, VISITS

_MODELS: dict[str, type[Visit] | type[Leave] | type[Training]] = {
    VISITS: Visit,
    LEAVE: Leave,
    TRAININGS: Training,
}


_TYPED_COLUMNS: dict[str, tuple[str, ...]] = {
    VISITS: (
        "doctor_id",
        "place_code",
        "assignment_id",
        "kind",
        "check_in",
        "check_out",
        "local_date",
        "patients",
        "deleted",
        "version",
    ),
    LEAVE: ("doctor_id", "start", "end", "status", "deleted"),
    TRAININGS: ("doctor_id", "start", "end", "title", "deleted"),
}


def typed_values(collection: str, data: dict[str, Any], version: int) -> dict[str, Any]:
    """The typed-table columns of a live record of `collection` (data validated already)."""
    if collection == VISITS:
        check_in = datetime.fromisoformat(data["check_in"])
        return {
            "doctor_id": data["doctor"],
            "place_code": data["place"],
            "assignment_id": data.get("assignment"),
            "kind": data["kind"],
            "check_in": check_in,
            "check_out": datetime.fromisoformat(data["check_out"]),
            "local_date": check_in.date(),
            "patients": data["patients"],
            "deleted": False,
            "version": version,
        }
    values = {
        "doctor_id": data["doctor"],
        "start": date.fromisoformat(data["start"]),
        "end": date.fromisoformat(data["end"]),
        "deleted": False,
    }
    if collection == LEAVE:
        values["status"] = data.get("status") or "pending"
    else:
        values["title"] = data.get("title") or ""
    return values


class BatchProjection:
    """The typed rows of a whole batch, written with one executemany a statement: an
    upsert of the live records and an update of the deleted ones, a table
    (docs/benchmarks.md, push profile). Same result as `project` a record."""

    def write_many(self, session: Session, rows: Iterable[Any]) -> None:
        live: dict[str, list[dict[str, Any]]] = {}
        gone: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            if row.collection not in _MODELS:
                continue
            if row.deleted:
                gone.setdefault(row.collection, []).append(
                    {"key_id": row.id, "deleted": True, "version": row.version}
                )
            else:
                values = typed_values(row.collection, row.data or {}, row.version)
                live.setdefault(row.collection, []).append({"id": row.id, **values})
        for collection, values in live.items():
            bulk.executemany(session, _upsert(session, collection), values)
            _expire_cached(session, collection, (v["id"] for v in values))
        for collection, values in gone.items():
            table = _MODELS[collection].__table__
            changes = {"deleted": bindparam("deleted")}
            if collection == VISITS:
                changes["version"] = bindparam("version")
            else:
                values = [{"key_id": v["key_id"], "deleted": True} for v in values]
            session.execute(
                update(table).where(table.c.id == bindparam("key_id")).values(changes), values
            )
            _expire_cached(session, collection, (v["key_id"] for v in values))

    def __call__(self, session: Session, collection: str, row: Any) -> None:
        self.write_many(session, [row])


def _expire_cached(session: Session, collection: str, ids: Iterable[str]) -> None:
    """An ORM copy of a typed row written here, loaded earlier in the session, is stale."""
    model = _MODELS[collection]
    loaded = [obj for obj in session.identity_map.values() if isinstance(obj, model)]
    if loaded:  # rare: the identity map holds a few objects, a batch thousands of ids
        written = set(ids)
        for obj in loaded:
            if inspect(obj).identity[0] in written:  # the key as loaded, no refresh
                session.expire(obj)


def _upsert(session: Session, collection: str) -> Any:
    """INSERT … ON CONFLICT (id) DO UPDATE of every typed column (SQLite and PostgreSQL)."""
    return _upsert_statement(session.get_bind().dialect.name, collection)


@cache
def _upsert_statement(dialect: str, collection: str) -> Any:
    # Built once: building it (the `excluded` columns) costs about 10 ms (push profile).
    table = _MODELS[collection].__table__
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(table)
    return statement.on_conflict_do_update(
        index_elements=[table.c.id],
        set_={name: statement.excluded[name] for name in _TYPED_COLUMNS[collection]},
    )


def project(session: Session, collection: str, row: Any) -> None:
    """Keep the typed table of `collection` in step with the synced record `row` (anything
    with the attributes of a SyncRecord row)."""
    BatchProjection().write_many(session, [row])
