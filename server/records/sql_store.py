"""The server's implementation of the sync storage contract (`sync.storage.SyncStore`) on
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
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, bindparam, insert, inspect, select, true, update
from sqlalchemy.orm import Session

from server import evaluation_queue
from server.models import SyncApplied, SyncConflict, SyncCounter, SyncRecord
from server.records import bulk
from sync.merge import Action, decide
from sync.protocol import CONFLICTS, ErrorCode, Op, Status
from sync.records import JSON, Change, ChangeResult, Record
from sync.storage import (
    ChangePage,
    Conflict,
    InvalidCursor,
    SyncStore,
    decode_cursor,
    encode_cursor,
)


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


# Called with (session, collection, record) after every write, to keep typed tables; the
# record has the attributes of a SyncRecord row. A projector with a `write_many(session,
# records)` method gets a whole batch at once instead.
Projector = Callable[[Session, str, Any], None]
# Says whether the sender may touch an existing record (e.g. a doctor only their own); the
# record has the scope attributes of a SyncRecord row.
Guard = Callable[[Any], bool]
# Work done in a push's own transaction, after its records are written (server/review/workflow.py).
BeforeCommit = Callable[[Session, list["WrittenRecord"]], None]


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
    township_code: str | None = None
    county_code: str | None = None
    # The data the record held before this write (None for a new record): a visit moved to
    # another week leaves its old week's flags stale too (server/evaluation_queue.py).
    previous: JSON | None = None

    @classmethod
    def of(cls, row: SyncRecord | _State, previous: JSON | None = None) -> WrittenRecord:
        return cls(
            row.collection,
            row.id,
            row.version,
            row.deleted,
            dict(row.data or {}),
            row.doctor_id,
            row.device_id,
            row.updated_by,
            row.township_code,
            row.county_code,
            previous,
        )


_TABLE = SyncRecord.__table__
Key = tuple[str, str]


@dataclass(slots=True)
class _State:
    """One sync record's columns as plain values: what a write reads, decides on and writes
    back with one executemany a batch (no ORM object a record; docs/benchmarks.md)."""

    collection: str
    id: str
    version: int = 0
    deleted: bool = False
    data: JSON | None = None
    seq: int = 0
    hlc: str | None = None
    doctor_id: str | None = None
    township_code: str | None = None
    county_code: str | None = None
    updated_at: datetime | None = None
    updated_by: str | None = None
    device_id: str | None = None
    clock_skew_s: float | None = None

    @property
    def scope(self) -> RecordScope:
        return RecordScope(self.doctor_id, self.township_code, self.county_code)

    def record(self) -> Record:
        return Record(
            self.collection, self.id, self.version, self.deleted, self.data or {}, self.hlc
        )

    def current(self) -> JSON:
        return {"version": self.version, "deleted": self.deleted, "data": self.data}

    def values(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _COLUMNS}


# The columns of sync_records, in the order of _State's fields.
_COLUMNS = tuple(f.name for f in fields(_State))


_INSERT = insert(_TABLE)


def _states_query(columns: tuple[str, ...]) -> tuple[tuple[str, ...], Any]:
    query = select(*(_TABLE.c[name] for name in columns)).where(
        _TABLE.c.collection == bindparam("collection"),
        _TABLE.c.id.in_(bindparam("ids", expanding=True)),
    )
    return columns, query


# The reads of every push, built once (building a statement cost more than running it in
# the push profile, issue 14).
_STATES = _states_query(_COLUMNS)
_STATES_WITHOUT_DATA = _states_query(tuple(c for c in _COLUMNS if c != "data"))
_APPLIED = SyncApplied.__table__
_ANSWERS = select(_APPLIED.c.change_id, _APPLIED.c.result).where(
    _APPLIED.c.origin == bindparam("origin"),
    _APPLIED.c.change_id.in_(bindparam("change_ids", expanding=True)),
)
_INSERT_APPLIED = insert(SyncApplied.__table__)
# One UPDATE by primary key, run as an executemany over the changed rows of a batch.
_UPDATE_BY_KEY = (
    update(_TABLE)
    .where(_TABLE.c.collection == bindparam("key_collection"), _TABLE.c.id == bindparam("key_id"))
    .values({name: bindparam(name) for name in _COLUMNS if name not in ("collection", "id")})
)


# The counter statements, built once (building and keying them each transaction showed in
# the push profile, issue 14).
_LOCK_COUNTER = (
    update(SyncCounter)
    .where(SyncCounter.id == 1)
    .values(value=SyncCounter.value)
    .returning(SyncCounter.value)
)
_SET_COUNTER = update(SyncCounter).where(SyncCounter.id == 1).values(value=bindparam("value"))


class _Writer:
    """One writing transaction: holds the counter lock, hands out sequence numbers."""

    def __init__(self, session: Session) -> None:
        self.session = session
        # The first statement of the transaction takes the lock (PostgreSQL: row lock;
        # SQLite: the database write lock), so no read happens before it; it also reads
        # the counter, in one round trip.
        value = session.connection().execute(_LOCK_COUNTER).scalar_one_or_none()
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
            self.session.connection().execute(_SET_COUNTER, {"value": self.seq})


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
        if not rows and after > 0:
            # Nothing after the cursor: it must still be a position this server reached,
            # or a device holding it would silently miss everything below it (issue 13).
            position = self.session.scalar(select(SyncCounter.value).where(SyncCounter.id == 1))
            if after > (position or 0):
                raise InvalidCursor(
                    f"the cursor {after} is beyond this server's position {position or 0}; "
                    "pull again from an empty cursor"
                )
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
        before_commit: BeforeCommit | None = None,
        stale: str | None = None,
    ) -> list[ChangeResult]:
        """Apply validated changes in one transaction; one result each, in order.
        `before_commit` runs inside that transaction, the counter lock held, with what was
        written: work that must commit with the records or not at all. With `stale` (why:
        push, correction, leave decision), the doctor-weeks the written records touch are
        added to the evaluation queue in the same transaction.

        The stored rows of the batch are read with one query, the merge rule decides in
        Python, and the changed rows, their typed projections and the change-id answers
        are written with one executemany a table (a conflict, rare, writes its own rows)."""
        session = self.session
        writer = _Writer(session)
        answered = self._answers(context.origin, [c.change_id for c, _ in items])
        states = self.load_states((c.collection, c.id) for c, _ in items)
        stored = set(states)
        previous = {key: state.data for key, state in states.items()}
        dirty: dict[Key, _State] = {}
        applied: list[dict[str, Any]] = []
        results: list[ChangeResult] = []
        now = datetime.now(UTC)
        for change, scope in items:
            if change.change_id in answered:
                results.append(ChangeResult.from_wire(answered[change.change_id]))
                continue
            state = states.get((change.collection, change.id))
            if state is not None and guard is not None and not guard(state):
                result = ChangeResult(
                    change.collection,
                    change.id,
                    change.change_id,
                    Status.REJECTED,
                    code=ErrorCode.FORBIDDEN_RECORD,
                    errors={"id": ["this record belongs to someone outside your scope"]},
                )
            else:
                result = self._apply_one(writer, change, scope, state, context, now, states, dirty)
            wire = result.to_wire()
            if result.status is not Status.REJECTED:
                applied.append(
                    {
                        "origin": context.origin,
                        "change_id": change.change_id,
                        "result": wire,
                        "created_at": now,
                    }
                )
            answered[change.change_id] = wire
            results.append(result)
        self._write(stored, dirty)
        bulk.executemany(session, _INSERT_APPLIED, applied)
        writer.finish()
        # What was written, as plain values: the caller's after-commit work (flags, review)
        # needs it, and re-reading each row after the commit costs a SELECT a record.
        self.written = [WrittenRecord.of(state, previous.get(key)) for key, state in dirty.items()]
        if stale is not None:
            # The doctor-weeks whose flags this write makes stale, in its own transaction:
            # judged after the commit, never lost (server/evaluation_queue.py, issue 14).
            evaluation_queue.enqueue(session, evaluation_queue.stale_weeks(self.written),
                                     cause=stale)  # fmt: skip
        if before_commit is not None and self.written:
            before_commit(session, self.written)
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
    ) -> WrittenRecord:
        """Write a record the server owns (places, assignments, reviewer edits) as a new
        version, or a tombstone when `data` is None. The caller commits."""
        [written] = self.put_server_records(
            [(collection, record_id, data, scope)], updated_by=updated_by, writer=writer
        )
        return written

    def put_server_records(
        self,
        records: Iterable[tuple[str, str, JSON | None, RecordScope]],
        *,
        updated_by: str,
        writer: _Writer | None = None,
    ) -> list[WrittenRecord]:
        """`put_server_record` for many records: one read and one executemany each way."""
        records = list(records)
        own = writer is None
        writer = writer or _Writer(self.session)
        states = self.load_states(
            ((collection, record_id) for collection, record_id, *_ in records),
            # A tombstone keeps the stored data; a new version replaces it unread.
            with_data=any(data is None for *_, data, _ in records),
        )
        stored = set(states)
        dirty: dict[Key, _State] = {}
        now = datetime.now(UTC)
        for collection, record_id, data, scope in records:
            key = (collection, record_id)
            state = states.get(key)
            if state is None:
                state = states[key] = _State(collection, record_id)
            state.version += 1
            state.deleted = data is None
            state.data = data if data is not None else (state.data or {})
            state.seq = writer.next_seq()
            state.doctor_id, state.township_code, state.county_code = (
                scope.doctor_id,
                scope.township_code,
                scope.county_code,
            )
            state.updated_at, state.updated_by = now, updated_by
            state.device_id = state.clock_skew_s = None
            dirty[key] = state
        self._write(stored, dirty)
        if own:
            writer.finish()
        return [WrittenRecord.of(state) for state in dirty.values()]

    def writer(self) -> _Writer:
        return _Writer(self.session)

    def load_states(self, keys: Iterable[Key], *, with_data: bool = True) -> dict[Key, _State]:
        """The stored rows of many (collection, id) keys as plain values, a query per 500
        keys (bound parameters are limited, on SQLite to 32,766). Without `with_data`, every
        column but `data` (for a caller that replaces it unread)."""
        by_collection: dict[str, list[str]] = {}
        for collection, record_id in keys:
            by_collection.setdefault(collection, []).append(record_id)
        columns, query = _STATES if with_data else _STATES_WITHOUT_DATA
        found: dict[Key, _State] = {}
        connection = self.session.connection()
        for collection, ids in by_collection.items():
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                rows = connection.execute(query, {"collection": collection, "ids": chunk})
                for row in rows:
                    state = _State(**dict(zip(columns, row, strict=True)))
                    found[(state.collection, state.id)] = state
        return found

    def _answers(self, origin: str, change_ids: list[str]) -> dict[str, JSON]:
        """The answers already given to these change ids of `origin`."""
        answered: dict[str, JSON] = {}
        connection = self.session.connection()
        for start in range(0, len(change_ids), 500):
            chunk = change_ids[start : start + 500]
            rows = connection.execute(_ANSWERS, {"origin": origin, "change_ids": chunk})
            answered.update({change_id: result for change_id, result in rows})
        return answered

    def _write(self, stored: set[Key], dirty: dict[Key, _State]) -> None:
        """Write the changed rows (an INSERT for new keys, an UPDATE for stored ones, each
        one executemany), then their typed projections."""
        if not dirty:
            return
        session = self.session
        inserts = [state.values() for key, state in dirty.items() if key not in stored]
        updates = [
            {**state.values(), "key_collection": key[0], "key_id": key[1]}
            for key, state in dirty.items()
            if key in stored
        ]
        bulk.executemany(session, _INSERT, inserts)
        bulk.executemany(session, _UPDATE_BY_KEY, updates)
        # An ORM copy of a row written here, loaded earlier in this session, is now stale.
        for obj in [o for o in session.identity_map.values() if isinstance(o, SyncRecord)]:
            if inspect(obj).identity in dirty:  # the key as loaded, no refresh
                session.expire(obj)
        if self.projector is None:
            return
        write_many = getattr(self.projector, "write_many", None)
        if write_many is not None:
            write_many(session, list(dirty.values()))
        else:
            for state in dirty.values():
                self.projector(session, state.collection, state)

    def _apply_one(
        self,
        writer: _Writer,
        change: Change,
        scope: RecordScope,
        state: _State | None,
        context: WriteContext,
        now: datetime,
        states: dict[Key, _State],
        dirty: dict[Key, _State],
    ) -> ChangeResult:
        decision = decide(state.record() if state else None, change)
        base = ChangeResult(change.collection, change.id, change.change_id, Status.ACCEPTED)
        if decision.action is Action.RESOLVE:
            return self._resolve(writer, change, state, context, now, base)
        if decision.action is Action.DUPLICATE:
            assert state is not None
            base.status, base.version = Status.DUPLICATE, state.version
            self._settle(writer, change, state, context, now, resolution="mine")
            return base
        if decision.action is Action.CONFLICT:
            assert state is not None
            conflict = SyncConflict(
                id=uuid.uuid4().hex,
                collection=change.collection,
                record_id=change.id,
                stored_version=state.version,
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
            self._mirror_conflict(writer, conflict, state, context.origin)
            base.status, base.version = Status.CONFLICT, state.version
            base.code, base.conflict_id, base.current = (
                ErrorCode.STALE_VERSION,
                conflict.id,
                state.current(),
            )
            return base
        # INSERT, UPDATE or DELETE: a new version of the record.
        key = (change.collection, change.id)
        if state is None:
            state = states[key] = _State(change.collection, change.id)
        state.version += 1
        state.deleted = change.op is Op.DELETE
        if change.data is not None or state.data is None:
            state.data = change.data or {}
        state.hlc = change.hlc
        state.seq = writer.next_seq()
        if not state.deleted or state.doctor_id is None:
            state.doctor_id, state.township_code, state.county_code = (
                scope.doctor_id,
                scope.township_code,
                scope.county_code,
            )
        state.updated_at, state.updated_by = now, context.origin
        state.device_id, state.clock_skew_s = context.device_id, context.clock_skew_s
        dirty[key] = state
        self._settle(writer, change, state, context, now, resolution="mine")
        base.version = state.version
        return base

    def _settle(
        self,
        writer: _Writer,
        change: Change,
        state: _State,
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
        self._mirror_conflict(writer, conflict, state, context.origin)

    def _resolve(
        self,
        writer: _Writer,
        change: Change,
        state: _State | None,
        context: WriteContext,
        now: datetime,
        base: ChangeResult,
    ) -> ChangeResult:
        conflict = self.session.get(SyncConflict, change.resolves) if change.resolves else None
        if conflict is None or conflict.record_id != change.id or state is None:
            base.status, base.code = Status.REJECTED, ErrorCode.NOT_FOUND
            base.errors = {"resolves": ["no such conflict for this record"]}
            return base
        if conflict.status == "open":
            self._settle(writer, change, state, context, now, resolution="theirs")
        base.version = state.version
        base.conflict_id = conflict.id
        # The version the device keeps: it may be newer than the one the conflict saw.
        base.current = state.current()
        return base

    def _mirror_conflict(
        self, writer: _Writer, conflict: SyncConflict, state: _State, origin: str
    ) -> None:
        self.session.flush()  # the conflict row's defaults, e.g. created_at
        self.put_server_record(
            CONFLICTS,
            conflict.id,
            conflict_data(conflict),
            state.scope,
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
