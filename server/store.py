"""The server's implementation of the sync storage contract (`sync.store.SyncStore`) on
SQLAlchemy, for SQLite and PostgreSQL alike.

Every writing transaction starts by locking the one `sync_counter` row and holds it to
commit; sequence numbers are taken from it, so they become visible in commit order and a
pull cursor never passes a change that commits later (docs/sync-protocol.md, "Pull").
The same lock serialises merges of one record, so two pushes of the same record cannot
both build on the same version. Kinto does the same with a lock on its timestamps table.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, select, true, tuple_, update
from sqlalchemy.orm import Session

from server.models import SyncApplied, SyncConflict, SyncCounter, SyncRecord
from sync.merge import Action, decide
from sync.protocol import CONFLICTS, ErrorCode, Op, Status
from sync.records import JSON, Change, ChangeResult, Record
from sync.store import ChangePage, Conflict, SyncStore, decode_cursor, encode_cursor


@dataclass(frozen=True, slots=True)
class RecordScope:
    """Who may see a record: its doctor, the township and the county it belongs to."""

    doctor_id: str | None = None
    township_code: str | None = None
    county_code: str | None = None


@dataclass(frozen=True, slots=True)
class WriteContext:
    """Where a batch of changes came from."""

    origin: str  # the user (username) who sent it; change ids are remembered per origin
    device_id: str | None = None
    clock_skew_s: float | None = None


# Called with (session, collection, record) after every write, to keep typed tables.
Projector = Callable[[Session, str, SyncRecord], None]
# Says whether the sender may touch an existing record (e.g. a doctor only their own).
Guard = Callable[[SyncRecord], bool]


def _record(row: SyncRecord) -> Record:
    return Record(row.collection, row.id, row.version, row.deleted, row.data or {}, row.hlc)


def _current(row: SyncRecord) -> JSON:
    return {"version": row.version, "deleted": row.deleted, "data": row.data}


def _conflict(row: SyncConflict) -> Conflict:
    return Conflict(
        id=row.id,
        collection=row.collection,
        record_id=row.record_id,
        stored_version=row.stored_version,
        incoming_op=Op(row.incoming_op),
        incoming_data=row.incoming_data,
        base_version=row.base_version,
        origin=row.origin,
        reason=row.reason,
        status=row.status,
        resolution=row.resolution,
    )


def conflict_data(row: SyncConflict) -> JSON:
    """A conflict as devices receive it in the `conflicts` collection."""
    return {
        "collection": row.collection,
        "record_id": row.record_id,
        "stored_version": row.stored_version,
        "incoming_op": row.incoming_op,
        "incoming_data": row.incoming_data,
        "base_version": row.base_version,
        "reason": row.reason,
        "status": row.status,
        "resolution": row.resolution,
        "device_id": row.device_id,
        "created_at": row.created_at.isoformat() if row.created_at else None,
    }


@dataclass(frozen=True, slots=True)
class WrittenRecord:
    """A record as a batch left it, detached from the session."""

    collection: str
    id: str
    version: int
    deleted: bool
    data: JSON
    doctor_id: str | None
    device_id: str | None
    updated_by: str | None

    @classmethod
    def of(cls, row: SyncRecord) -> WrittenRecord:
        return cls(
            row.collection,
            row.id,
            row.version,
            row.deleted,
            dict(row.data or {}),
            row.doctor_id,
            row.device_id,
            row.updated_by,
        )


class _Writer:
    """One writing transaction: holds the counter lock, hands out sequence numbers."""

    def __init__(self, session: Session) -> None:
        self.session = session
        # The first statement of the transaction takes the lock (PostgreSQL: row lock;
        # SQLite: the database write lock), so no read happens before it.
        session.execute(
            update(SyncCounter).where(SyncCounter.id == 1).values(value=SyncCounter.value)
        )
        value = session.execute(
            select(SyncCounter.value).where(SyncCounter.id == 1)
        ).scalar_one_or_none()
        if value is None:
            session.add(SyncCounter(id=1, value=0))
            session.flush()
            value = 0
        self.seq = int(value)
        self.start = self.seq

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def finish(self) -> None:
        if self.seq != self.start:
            self.session.execute(
                update(SyncCounter).where(SyncCounter.id == 1).values(value=self.seq)
            )


class SqlSyncStore(SyncStore):
    def __init__(self, session: Session, *, projector: Projector | None = None) -> None:
        self.session = session
        self.projector = projector
        self.written: list[WrittenRecord] = []

    # --- reads ---------------------------------------------------------------------

    def get(self, collection: str, record_id: str) -> Record | None:
        row = self.session.get(SyncRecord, (collection, record_id))
        return _record(row) if row else None

    def rows_since(
        self,
        cursor: str | None,
        limit: int,
        where: ColumnElement[bool] | None = None,
    ) -> tuple[list[SyncRecord], str, bool]:
        """The rows of `changes_since`, for callers that need their metadata too."""
        after = decode_cursor(cursor)
        query = (
            select(SyncRecord)
            .where(SyncRecord.seq > after, where if where is not None else true())
            .order_by(SyncRecord.seq)
            .limit(limit + 1)
        )
        rows = list(self.session.scalars(query))
        has_more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1].seq) if rows else encode_cursor(after)
        return rows, next_cursor, has_more

    def changes_since(
        self,
        cursor: str | None,
        limit: int,
        where: ColumnElement[bool] | None = None,
    ) -> ChangePage:
        rows, next_cursor, has_more = self.rows_since(cursor, limit, where)
        return ChangePage([_record(r) for r in rows], next_cursor, has_more)

    def conflicts(self, *, status: str | None = "open") -> list[Conflict]:
        query = select(SyncConflict).order_by(SyncConflict.created_at, SyncConflict.id)
        if status is not None:
            query = query.where(SyncConflict.status == status)
        return [_conflict(r) for r in self.session.scalars(query)]

    # --- writes --------------------------------------------------------------------

    def apply(self, change: Change, *, origin: str) -> ChangeResult:
        return self.apply_batch([(change, RecordScope())], WriteContext(origin=origin))[0]

    def apply_batch(
        self,
        items: Sequence[tuple[Change, RecordScope]],
        context: WriteContext,
        *,
        guard: Guard | None = None,
    ) -> list[ChangeResult]:
        """Apply validated changes in one transaction; one result each, in order."""
        session = self.session
        writer = _Writer(session)
        change_ids = [c.change_id for c, _ in items]
        answered = (
            {
                row.change_id: row.result
                for row in session.scalars(
                    select(SyncApplied).where(
                        SyncApplied.origin == context.origin, SyncApplied.change_id.in_(change_ids)
                    )
                )
            }
            if change_ids
            else {}
        )
        keys = {(c.collection, c.id) for c, _ in items}
        rows = self.load_many(keys)
        preload = getattr(self.projector, "preload", None)
        if preload is not None:
            preload(session, keys)
        results: list[ChangeResult] = []
        now = datetime.now(UTC)
        for change, scope in items:
            if change.change_id in answered:
                results.append(ChangeResult.from_wire(answered[change.change_id]))
                continue
            row = rows.get((change.collection, change.id))
            if row is not None and guard is not None and not guard(row):
                result = ChangeResult(
                    change.collection,
                    change.id,
                    change.change_id,
                    Status.REJECTED,
                    code=ErrorCode.FORBIDDEN_RECORD,
                    errors={"id": ["this record belongs to someone outside your scope"]},
                )
            else:
                result = self._apply_one(writer, change, scope, row, context, now, rows)
            if result.status is not Status.REJECTED:
                session.add(
                    SyncApplied(
                        origin=context.origin,
                        change_id=change.change_id,
                        result=result.to_wire(),
                        created_at=now,
                    )
                )
            answered[change.change_id] = result.to_wire()
            results.append(result)
        writer.finish()
        # What was written, as plain values: the caller's after-commit work (flags, review)
        # needs it, and re-reading each row after the commit costs a SELECT a record.
        self.written = [
            WrittenRecord.of(rows[(r.collection, r.id)])
            for r in results
            if r.status is Status.ACCEPTED and (r.collection, r.id) in rows
        ]
        session.commit()
        return results

    def put_server_record(
        self,
        collection: str,
        record_id: str,
        data: JSON | None,
        scope: RecordScope,
        *,
        updated_by: str,
        writer: _Writer | None = None,
        preloaded: dict[tuple[str, str], SyncRecord] | None = None,
    ) -> SyncRecord:
        """Write a record the server owns (places, assignments, reviewer edits) as a new
        version, or a tombstone when `data` is None. The caller commits. `preloaded`, from
        `load_many`, saves a SELECT a record when writing many."""
        own = writer is None
        writer = writer or _Writer(self.session)
        key = (collection, record_id)
        if preloaded is not None and key in preloaded:
            row = preloaded[key]
        elif preloaded is not None:
            row = None  # looked for already: a new record
        else:
            row = self.session.get(SyncRecord, key)
        now = datetime.now(UTC)
        if row is None:
            row = SyncRecord(collection=collection, id=record_id, version=0)
            self.session.add(row)
            if preloaded is not None:
                preloaded[key] = row
        row.version = (row.version or 0) + 1
        row.deleted = data is None
        row.data = data if data is not None else (row.data or {})
        row.seq = writer.next_seq()
        row.doctor_id, row.township_code, row.county_code = (
            scope.doctor_id,
            scope.township_code,
            scope.county_code,
        )
        row.updated_at, row.updated_by, row.device_id, row.clock_skew_s = (
            now,
            updated_by,
            None,
            None,
        )
        if self.projector:
            self.projector(self.session, collection, row)
        if own:
            writer.finish()
        return row

    def writer(self) -> _Writer:
        return _Writer(self.session)

    def load_many(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], SyncRecord]:
        """The stored rows of many (collection, id) keys, a query per 500 keys (bound
        parameters are limited, on SQLite to 32,766)."""
        keys = list(keys)
        found: dict[tuple[str, str], SyncRecord] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            rows = self.session.scalars(
                select(SyncRecord).where(tuple_(SyncRecord.collection, SyncRecord.id).in_(chunk))
            )
            found.update({(r.collection, r.id): r for r in rows})
        return found

    def _apply_one(
        self,
        writer: _Writer,
        change: Change,
        scope: RecordScope,
        row: SyncRecord | None,
        context: WriteContext,
        now: datetime,
        rows: dict[tuple[str, str], SyncRecord],
    ) -> ChangeResult:
        decision = decide(_record(row) if row else None, change)
        base = ChangeResult(change.collection, change.id, change.change_id, Status.ACCEPTED)
        if decision.action is Action.RESOLVE:
            return self._resolve(writer, change, row, context, now, base)
        if decision.action is Action.DUPLICATE:
            assert row is not None
            base.status, base.version = Status.DUPLICATE, row.version
            self._settle(writer, change, row, context, now, resolution="mine")
            return base
        if decision.action is Action.CONFLICT:
            assert row is not None
            conflict = SyncConflict(
                id=uuid.uuid4().hex,
                collection=change.collection,
                record_id=change.id,
                stored_version=row.version,
                incoming_op=str(change.op),
                incoming_data=change.data,
                base_version=change.base_version,
                origin=context.origin,
                device_id=context.device_id,
                reason=decision.reason,
                status="open",
                created_at=now,
            )
            self.session.add(conflict)
            self._mirror_conflict(writer, conflict, row, context.origin)
            base.status, base.version = Status.CONFLICT, row.version
            base.code, base.conflict_id, base.current = (
                ErrorCode.STALE_VERSION,
                conflict.id,
                _current(row),
            )
            return base
        # INSERT, UPDATE or DELETE: a new version of the record.
        if row is None:
            row = SyncRecord(collection=change.collection, id=change.id, version=0)
            self.session.add(row)
            rows[(change.collection, change.id)] = row
        row.version = (row.version or 0) + 1
        row.deleted = change.op is Op.DELETE
        if change.data is not None or row.data is None:
            row.data = change.data or {}
        row.hlc = change.hlc
        row.seq = writer.next_seq()
        if not row.deleted or row.doctor_id is None:
            row.doctor_id, row.township_code, row.county_code = (
                scope.doctor_id,
                scope.township_code,
                scope.county_code,
            )
        row.updated_at, row.updated_by = now, context.origin
        row.device_id, row.clock_skew_s = context.device_id, context.clock_skew_s
        # No flush here: the batch is flushed once, at commit (one INSERT a table per batch).
        if self.projector:
            self.projector(self.session, change.collection, row)
        self._settle(writer, change, row, context, now, resolution="mine")
        base.version = row.version
        return base

    def _settle(
        self,
        writer: _Writer,
        change: Change,
        row: SyncRecord,
        context: WriteContext,
        now: datetime,
        *,
        resolution: str,
    ) -> None:
        """Mark the conflict a change says it resolves, if it is open and about this record."""
        if not change.resolves:
            return
        conflict = self.session.get(SyncConflict, change.resolves)
        if conflict is None or conflict.status != "open" or conflict.record_id != change.id:
            return
        conflict.status, conflict.resolution = "resolved", resolution
        conflict.resolved_at, conflict.resolved_by = now, context.origin
        self._mirror_conflict(writer, conflict, row, context.origin)

    def _resolve(
        self,
        writer: _Writer,
        change: Change,
        row: SyncRecord | None,
        context: WriteContext,
        now: datetime,
        base: ChangeResult,
    ) -> ChangeResult:
        conflict = self.session.get(SyncConflict, change.resolves) if change.resolves else None
        if conflict is None or conflict.record_id != change.id or row is None:
            base.status, base.code = Status.REJECTED, ErrorCode.NOT_FOUND
            base.errors = {"resolves": ["no such conflict for this record"]}
            return base
        if conflict.status == "open":
            self._settle(writer, change, row, context, now, resolution="theirs")
        base.version = row.version
        base.conflict_id = conflict.id
        # The version the device keeps: it may be newer than the one the conflict saw.
        base.current = _current(row)
        return base

    def _mirror_conflict(
        self, writer: _Writer, conflict: SyncConflict, row: SyncRecord, origin: str
    ) -> None:
        self.session.flush()
        scope = RecordScope(row.doctor_id, row.township_code, row.county_code)
        self.put_server_record(
            CONFLICTS,
            conflict.id,
            conflict_data(conflict),
            scope,
            updated_by=origin,
            writer=writer,
        )


def load_conflict(session: Session, conflict_id: str) -> SyncConflict | None:
    return session.get(SyncConflict, conflict_id)


def row_to_wire(row: SyncRecord) -> dict[str, Any]:
    """A record as pull sends it."""
    return {
        "collection": row.collection,
        "id": row.id,
        "version": row.version,
        "deleted": row.deleted,
        "seq": row.seq,
        "data": None if row.deleted and row.collection != CONFLICTS else row.data,
        "meta": {
            "updated_at": row.updated_at.isoformat() if row.updated_at else None,
            "updated_by": row.updated_by,
            "device_id": row.device_id,
            "clock_skew_s": row.clock_skew_s,
        },
    }
