"""The device's own SQLite copy: records, the outbox, the pull cursor, rejections, conflicts.

Built on sqlite-utils. One table a collection (`visits`, `leave`, `trainings`, and the
reference data pulled from the server: `places`, `assignments`, `flags`, `doctors`), plus:

- `outbox`: one pending change a record. A later edit of a record whose change was never
  sent collapses into that change and keeps its change id; once the change is in flight
  (sent, no answer stored yet) it is frozen, so a resend is byte for byte the same change
  and the server answers it once (docs/sync-protocol.md, "Exactly once"), and the edit waits
  in the row's `queued` slot until the answer is stored, then goes out with a new change id.
- `rejected`: changes the server refused, with the code and field errors, kept visible
  until the record is edited (then sent again with a new change id) or deleted. They never
  sit in the outbox, so they never block it.
- `conflicts`: both sides of each conflict (the device's version, and the server's
  version, "theirs").
- `send_backs`: whether each visit a reviewer sent back (a pulled `reviews` record) is
  still waiting for the doctor's correction (docs/review.md); `send_backs()` lists the open
  ones.
- `answers`: the answer given to each change id `apply` saw, per origin (the contract).
- `meta`: the device id, the hybrid logical clock, the pull cursor, the local change
  sequence, the last successful sync.

Every write of a record and the change it queues is one transaction, and so is every
stored answer and every pulled page with its cursor: a process killed at any point leaves
either all of it or none of it.

`LocalStore` implements the storage contract `sync.storage.SyncStore`, so the same contract
tests run against it as against the server's stores.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from offline_client.errors import RecordNotFound
from sync.clock import HLCTimestamp, HybridLogicalClock
from sync.merge import Action, decide
from sync.protocol import (
    ASSIGNMENTS,
    CONFLICTS,
    DOCTORS,
    FLAGS,
    LEAVE,
    PLACES,
    TRAININGS,
    VISITS,
    ErrorCode,
    Op,
    Status,
)
from sync.records import JSON, Change, ChangeResult, FieldErrors, Record
from sync.storage import ChangePage, Conflict, SyncStore, decode_cursor, encode_cursor

# The server-written collection of send-backs (server/review.py REVIEWS): a reviewer's
# comment on a visit of this doctor, pulled like any other record.
REVIEWS = "reviews"
SEND_BACK = "send_back"  # the `kind` of a reviews record that sends a visit back
KNOWN_COLLECTIONS = (VISITS, LEAVE, TRAININGS, PLACES, ASSIGNMENTS, FLAGS, DOCTORS, REVIEWS)
_INTERNAL_TABLES = frozenset({"outbox", "rejected", CONFLICTS, "answers", "meta", "send_backs"})
_COLLECTION_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")

# Sync state of a record as `visit list` shows it.
SYNCED = "synced"
PENDING = "pending"
IN_FLIGHT = "in_flight"
REJECTED = "rejected"
CONFLICT = "conflict"
LOCAL_ONLY_ORIGIN = "server"  # origin of conflicts the server reported


class UnknownCollection(ValueError):
    """A collection name this store cannot hold."""


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """One pending change as the outbox holds it."""

    change: Change
    in_flight: bool
    queued: JSON | None  # an edit made while the change was in flight, sent after its answer


@dataclass(frozen=True, slots=True)
class RejectedChange:
    """A change the server refused, with its reason."""

    collection: str
    record_id: str
    change_id: str
    op: str
    data: JSON | None
    code: str
    errors: FieldErrors
    rejected_at: str

    @property
    def reason(self) -> str:
        detail = "; ".join(f"{k}: {', '.join(v)}" for k, v in self.errors.items())
        return f"{self.code}: {detail}" if detail else self.code

    def to_json(self) -> JSON:
        return {
            "collection": self.collection,
            "id": self.record_id,
            "change_id": self.change_id,
            "op": self.op,
            "code": self.code,
            "errors": self.errors,
            "reason": self.reason,
            "rejected_at": self.rejected_at,
        }


@dataclass(frozen=True, slots=True)
class ConflictView:
    """A conflict with both sides: mine (the losing change) and theirs (the server's)."""

    conflict: Conflict
    theirs: JSON | None  # {"version", "deleted", "data"} of the server's version, if known

    def to_json(self) -> JSON:
        c = self.conflict
        return {
            "id": c.id,
            "collection": c.collection,
            "record_id": c.record_id,
            "status": c.status,
            "resolution": c.resolution,
            "reason": c.reason,
            "base_version": c.base_version,
            "stored_version": c.stored_version,
            "mine": {"op": str(c.incoming_op), "data": c.incoming_data},
            "theirs": self.theirs,
        }


@dataclass(frozen=True, slots=True)
class SendBack:
    """A visit a reviewer sent back for correction, with the comment, as the device shows it
    until the doctor edits (or deletes) that visit."""

    id: str
    visit_id: str
    visit_version: int
    comment: str
    by: str
    at: str
    visit: JSON | None  # the visit as the device holds it, if it does

    @property
    def date(self) -> str | None:
        check_in = (self.visit or {}).get("check_in")
        return check_in[:10] if isinstance(check_in, str) else None

    @property
    def place(self) -> str | None:
        place = (self.visit or {}).get("place")
        return place if isinstance(place, str) else None

    def to_json(self) -> JSON:
        return {
            "id": self.id,
            "visit": self.visit_id,
            "visit_version": self.visit_version,
            "date": self.date,
            "place": self.place,
            "comment": self.comment,
            "by": self.by,
            "at": self.at,
        }


@dataclass(slots=True)
class AnswerOutcome:
    """What storing the answers to one pushed batch did."""

    accepted: int = 0
    duplicates: int = 0
    rejected: list[RejectedChange] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)  # conflict ids
    unanswered: int = 0  # changes of the batch the answer did not mention


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _dumps(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def new_id() -> str:
    return uuid.uuid4().hex


class LocalStore(SyncStore):
    """The device store. Open it with `open_store(path)`."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db
        self._create_schema()

    # -- schema and plumbing -------------------------------------------------------------

    def _create_schema(self) -> None:
        with self.transaction():
            for name in KNOWN_COLLECTIONS:
                self._collection_table(name)
            self.db["outbox"].create(
                {
                    "collection": str,
                    "record_id": str,
                    "change_id": str,
                    "op": str,
                    "base_version": int,
                    "data": str,
                    "hlc": str,
                    "resolves": str,
                    "in_flight": int,
                    "queued": str,
                    "position": int,
                },
                pk=("collection", "record_id"),
                not_null={"change_id", "op", "base_version", "in_flight", "position"},
                if_not_exists=True,
            )
            self.db["outbox"].create_index(["position"], if_not_exists=True)
            self.db["rejected"].create(
                {
                    "collection": str,
                    "record_id": str,
                    "change_id": str,
                    "op": str,
                    "base_version": int,
                    "data": str,
                    "code": str,
                    "errors": str,
                    "rejected_at": str,
                },
                pk=("collection", "record_id"),
                if_not_exists=True,
            )
            self.db[CONFLICTS].create(
                {
                    "id": str,
                    "collection": str,
                    "record_id": str,
                    "stored_version": int,
                    "incoming_op": str,
                    "incoming_data": str,
                    "base_version": int,
                    "origin": str,
                    "reason": str,
                    "status": str,
                    "resolution": str,
                    "theirs": str,
                    "version": int,
                    "seq": int,
                },
                pk="id",
                if_not_exists=True,
            )
            self.db["answers"].create(
                {"origin": str, "change_id": str, "result": str},
                pk=("origin", "change_id"),
                if_not_exists=True,
            )
            self.db["meta"].create({"key": str, "value": str}, pk="key", if_not_exists=True)
            self.db["send_backs"].create(
                {
                    "id": str,
                    "visit_id": str,
                    # The visit's version when the send-back reached the device (at least
                    # the version sent back): a pulled version above it was made since.
                    "baseline_version": int,
                    "received_at": str,
                    "cleared_at": str,
                    "cleared_because": str,
                },
                pk="id",
                if_not_exists=True,
            )
            self.db["send_backs"].create_index(["visit_id"], if_not_exists=True)
            if self._meta("device_id") is None:
                self._set_meta("device_id", "dev" + uuid.uuid4().hex[:12])
            # Send-backs pulled before this table existed start open.
            for row in self.db.query(
                "select id, data from reviews where id not in (select id from send_backs)"
            ):
                self._receive_send_back(row["id"], _loads(row["data"]) or {})

    def _collection_table(self, collection: str) -> sqlite_utils.db.Table:
        if not _COLLECTION_NAME.match(collection) or collection in _INTERNAL_TABLES:
            raise UnknownCollection(f"not a collection this device can hold: {collection!r}")
        table = self.db[collection]
        assert isinstance(table, sqlite_utils.db.Table)
        if not table.exists():
            with self.transaction():
                table.create(
                    {
                        "id": str,
                        "version": int,
                        "deleted": int,
                        "data": str,
                        "hlc": str,
                        "seq": int,
                        # The server's version, pulled while a local change of the record
                        # was pending: both are kept and the push settles it.
                        "theirs": str,
                    },
                    pk="id",
                    not_null={"version", "deleted"},
                    if_not_exists=True,
                )
                table.create_index(["seq"], if_not_exists=True)
        return table

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """One write transaction; nested use joins the outer one (sqlite-utils savepoints).

        BEGIN IMMEDIATE takes the write lock up front, so two processes of the client
        (a `visit add` during a `sync`) wait for each other instead of failing on upgrade.
        """
        conn = self.db.conn
        if conn.in_transaction:
            with self.db.atomic():
                yield
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def close(self) -> None:
        self.db.close()

    def _meta(self, key: str) -> str | None:
        rows = list(self.db.query("select value from meta where key = ?", [key]))
        return rows[0]["value"] if rows else None

    def _set_meta(self, key: str, value: str | None) -> None:
        if value is None:
            self.db.execute("delete from meta where key = ?", [key])
        else:
            self.db["meta"].upsert({"key": key, "value": value}, pk="key")

    def _next_seq(self) -> int:
        seq = int(self._meta("seq") or 0) + 1
        self._set_meta("seq", str(seq))
        return seq

    def _next_position(self) -> int:
        position = int(self._meta("outbox_position") or 0) + 1
        self._set_meta("outbox_position", str(position))
        return position

    # -- device identity and clock -------------------------------------------------------

    @property
    def device_id(self) -> str:
        value = self._meta("device_id")
        assert value is not None
        return value

    def _clock(self) -> HybridLogicalClock:
        last = self._meta("hlc")
        return HybridLogicalClock(self.device_id, last=HLCTimestamp.decode(last) if last else None)

    def tick(self) -> str:
        """Stamp a local event with the device's HLC and persist the clock."""
        with self.transaction():
            stamp = self._clock().now()
            self._set_meta("hlc", stamp.encode())
        return stamp.encode()

    def clock(self) -> str | None:
        return self._meta("hlc")

    def receive_clock(self, remote: str | None) -> None:
        """Merge a server's HLC into the device's (it is then after every stamp seen)."""
        if not remote:
            return
        with contextlib.suppress(ValueError):
            stamp = HLCTimestamp.decode(remote)
            with self.transaction():
                self._set_meta("hlc", self._clock().receive(stamp).encode())

    # -- the pull cursor and the last sync -----------------------------------------------

    @property
    def cursor(self) -> str | None:
        return self._meta("cursor")

    @property
    def last_sync_at(self) -> str | None:
        return self._meta("last_sync_at")

    def mark_synced(self, when: str | None = None) -> None:
        with self.transaction():
            self._set_meta("last_sync_at", when or _now_iso())

    # -- reading records -----------------------------------------------------------------

    def _row(self, collection: str, record_id: str) -> dict[str, Any] | None:
        table = self._collection_table(collection)
        rows = list(table.rows_where("id = ?", [record_id]))
        return rows[0] if rows else None

    @staticmethod
    def _record(collection: str, row: dict[str, Any]) -> Record:
        return Record(
            collection=collection,
            id=row["id"],
            version=row["version"],
            deleted=bool(row["deleted"]),
            data=_loads(row["data"]) or {},
            hlc=row["hlc"],
        )

    def get(self, collection: str, record_id: str) -> Record | None:
        row = self._row(collection, record_id)
        return None if row is None else self._record(collection, row)

    def records(self, collection: str, *, include_deleted: bool = False) -> list[Record]:
        table = self._collection_table(collection)
        where = None if include_deleted else "deleted = 0"
        return [self._record(collection, row) for row in table.rows_where(where, order_by="id")]

    def theirs(self, collection: str, record_id: str) -> JSON | None:
        """The server's version pulled beside a pending local change, if any."""
        row = self._row(collection, record_id)
        return None if row is None else _loads(row["theirs"])

    def sync_state(self, collection: str, record_id: str) -> str:
        if self.rejection(collection, record_id) is not None:
            return REJECTED
        entry = self.outbox_entry(collection, record_id)
        if entry is not None:
            return IN_FLIGHT if entry.in_flight else PENDING
        for view in self.conflict_views(status="open"):
            if view.conflict.collection == collection and view.conflict.record_id == record_id:
                return CONFLICT
        return SYNCED

    # -- local edits: the record and its change in one transaction -----------------------

    def save(self, collection: str, record_id: str, data: JSON) -> Record:
        """Write a record on the device and queue its upsert, in one transaction."""
        with self.transaction():
            row = self._row(collection, record_id)
            version = row["version"] if row else 0
            if row is not None and row["deleted"]:
                # A tombstone is final (sync/merge.py); the server would keep it anyway.
                raise RecordNotFound(collection, record_id)
            hlc = self._clock().now().encode()
            self._set_meta("hlc", hlc)
            self._collection_table(collection).upsert(
                {
                    "id": record_id,
                    "version": version,
                    "deleted": 0,
                    "data": _dumps(data),
                    "hlc": hlc,
                    "seq": self._next_seq(),
                },
                pk="id",
            )
            self._queue(collection, record_id, Op.UPSERT, data, hlc, base_version=version)
            self._clear_send_backs(collection, record_id, "edited on this device")
            record = self.get(collection, record_id)
        assert record is not None
        return record

    def delete(self, collection: str, record_id: str) -> None:
        """Delete a record on the device and queue its delete, in one transaction.

        A record the server has never accepted (no version, nothing in flight) is simply
        forgotten: there is nothing to delete on the server.
        """
        with self.transaction():
            row = self._row(collection, record_id)
            if row is None or row["deleted"]:
                return
            entry = self.outbox_entry(collection, record_id)
            table = self._collection_table(collection)
            self._clear_send_backs(collection, record_id, "deleted on this device")
            if row["version"] == 0 and (entry is None or not entry.in_flight):
                table.delete(record_id)
                self.db.execute(
                    "delete from outbox where collection = ? and record_id = ?",
                    [collection, record_id],
                )
                self._drop_rejection(collection, record_id)
                return
            hlc = self._clock().now().encode()
            self._set_meta("hlc", hlc)
            table.update(record_id, {"deleted": 1, "hlc": hlc, "seq": self._next_seq()})
            self._queue(collection, record_id, Op.DELETE, None, hlc, base_version=row["version"])

    def _queue(
        self,
        collection: str,
        record_id: str,
        op: Op,
        data: JSON | None,
        hlc: str,
        *,
        base_version: int,
        resolves: str | None = None,
    ) -> None:
        """Put a change in the outbox: collapse, wait behind an in-flight change, or add."""
        # An edit supersedes a rejection: the record goes out again, as a new change.
        self._drop_rejection(collection, record_id)
        entry = self.outbox_entry(collection, record_id)
        if entry is not None and entry.in_flight:
            queued = {"op": str(op), "data": data, "hlc": hlc, "resolves": resolves}
            self.db["outbox"].update((collection, record_id), {"queued": _dumps(queued)})
            return
        if entry is not None:
            # Never sent: the change id stays, the content is the latest edit.
            self.db["outbox"].update(
                (collection, record_id),
                {"op": str(op), "data": _dumps(data), "hlc": hlc, "resolves": resolves},
            )
            return
        self.db["outbox"].insert(
            {
                "collection": collection,
                "record_id": record_id,
                "change_id": new_id(),
                "op": str(op),
                "base_version": base_version,
                "data": _dumps(data),
                "hlc": hlc,
                "resolves": resolves,
                "in_flight": 0,
                "queued": None,
                "position": self._next_position(),
            }
        )

    # -- the outbox ----------------------------------------------------------------------

    @staticmethod
    def _entry(row: dict[str, Any]) -> OutboxEntry:
        return OutboxEntry(
            change=Change(
                collection=row["collection"],
                id=row["record_id"],
                op=Op(row["op"]),
                change_id=row["change_id"],
                base_version=row["base_version"],
                data=_loads(row["data"]),
                hlc=row["hlc"],
                resolves=row["resolves"],
            ),
            in_flight=bool(row["in_flight"]),
            queued=_loads(row["queued"]),
        )

    def outbox_entry(self, collection: str, record_id: str) -> OutboxEntry | None:
        rows = list(
            self.db["outbox"].rows_where(
                "collection = ? and record_id = ?", [collection, record_id]
            )
        )
        return self._entry(rows[0]) if rows else None

    def outbox(self) -> list[OutboxEntry]:
        """Every pending change, in flight first, then in the order they were queued."""
        rows = self.db["outbox"].rows_where(order_by="in_flight desc, position")
        return [self._entry(row) for row in rows]

    def outbox_count(self) -> int:
        return self.db["outbox"].count

    def take_batch(self, limit: int) -> list[Change]:
        """The next changes to push, marked in flight (frozen) in one transaction.

        Changes already in flight (a push whose answer never arrived) come first, unchanged,
        so the server answers them from its memory of their change ids.
        """
        with self.transaction():
            rows = list(
                self.db["outbox"].rows_where(order_by="in_flight desc, position", limit=limit)
            )
            for row in rows:
                if not row["in_flight"]:
                    self.db["outbox"].update(
                        (row["collection"], row["record_id"]), {"in_flight": 1}
                    )
        return [self._entry(row).change for row in rows]

    def store_answers(self, results: list[JSON], sent: list[Change]) -> AnswerOutcome:
        """Store the server's answers to one pushed batch, in one transaction."""
        outcome = AnswerOutcome()
        by_change_id = {change.change_id: change for change in sent}
        answered: set[str] = set()
        with self.transaction():
            for wire in results:
                result = ChangeResult.from_wire(wire)
                change = by_change_id.get(result.change_id)
                if change is None:
                    continue
                answered.add(result.change_id)
                self._store_answer(change, result, outcome)
        outcome.unanswered = len(set(by_change_id) - answered)
        return outcome

    def _store_answer(self, change: Change, result: ChangeResult, outcome: AnswerOutcome) -> None:
        entry = self.outbox_entry(change.collection, change.id)
        if entry is None or entry.change.change_id != change.change_id:
            return  # answered already (a replayed answer)
        key = (change.collection, change.id)
        table = self._collection_table(change.collection)
        row = self._row(change.collection, change.id)
        base_after = change.base_version
        if result.status in (Status.ACCEPTED, Status.DUPLICATE):
            if result.status is Status.ACCEPTED:
                outcome.accepted += 1
            else:
                outcome.duplicates += 1
            base_after = result.version if result.version is not None else change.base_version
            if change.op is Op.RESOLVE and result.current and row is not None:
                # Keeping "theirs": adopt the server's version as it stands now, which may
                # be newer than the conflict's snapshot (the pull cursor may be past it).
                current = result.current
                table.update(
                    change.id,
                    {
                        "version": current.get("version", base_after),
                        "deleted": 1 if current.get("deleted") else 0,
                        "data": _dumps(current.get("data") or {}),
                        "theirs": None,
                    },
                )
            elif row is not None:
                table.update(change.id, {"version": base_after, "theirs": None})
            if change.resolves:
                self._set_conflict_status(change.resolves, "resolved")
        elif result.status is Status.CONFLICT:
            current = result.current or {}
            conflict_id = result.conflict_id or new_id()
            outcome.conflicts.append(conflict_id)
            self.db[CONFLICTS].upsert(
                {
                    "id": conflict_id,
                    "collection": change.collection,
                    "record_id": change.id,
                    "stored_version": result.version or current.get("version") or 0,
                    "incoming_op": str(change.op),
                    "incoming_data": _dumps(change.data),
                    "base_version": change.base_version,
                    "origin": LOCAL_ONLY_ORIGIN,
                    "reason": str(result.code or ErrorCode.STALE_VERSION),
                    "status": "open",
                    "resolution": None,
                    "theirs": _dumps(current) if current else None,
                    "version": 1,
                    "seq": self._next_seq(),
                },
                pk="id",
            )
            if current and entry.queued is None:
                # The server's version was kept; the device mirrors it and the losing
                # version lives in the conflict until a person settles it.
                table.upsert(
                    {
                        "id": change.id,
                        "version": current.get("version", result.version or 0),
                        "deleted": 1 if current.get("deleted") else 0,
                        "data": _dumps(current.get("data") or {}),
                        "theirs": None,
                    },
                    pk="id",
                )
            elif current:
                table.update(change.id, {"theirs": _dumps(current)})
        else:
            rejection = RejectedChange(
                collection=change.collection,
                record_id=change.id,
                change_id=change.change_id,
                op=str(change.op),
                data=change.data,
                code=str(result.code or ErrorCode.VALIDATION),
                errors=result.errors,
                rejected_at=_now_iso(),
            )
            outcome.rejected.append(rejection)
            if entry.queued is None:
                self.db["rejected"].upsert(
                    {
                        "collection": change.collection,
                        "record_id": change.id,
                        "change_id": change.change_id,
                        "op": str(change.op),
                        "base_version": change.base_version,
                        "data": _dumps(change.data),
                        "code": rejection.code,
                        "errors": _dumps(rejection.errors),
                        "rejected_at": rejection.rejected_at,
                    },
                    pk=("collection", "record_id"),
                )
        queued = entry.queued
        if queued is None:
            self.db["outbox"].delete(key)
            return
        # The edit made while this change was in flight goes out now, as a new change.
        self.db["outbox"].update(
            key,
            {
                "change_id": new_id(),
                "op": queued["op"],
                "base_version": base_after,
                "data": _dumps(queued["data"]),
                "hlc": queued["hlc"],
                "resolves": queued.get("resolves"),
                "in_flight": 0,
                "queued": None,
                "position": self._next_position(),
            },
        )

    # -- rejections ----------------------------------------------------------------------

    def _drop_rejection(self, collection: str, record_id: str) -> None:
        self.db.execute(
            "delete from rejected where collection = ? and record_id = ?", [collection, record_id]
        )

    @staticmethod
    def _rejection(row: dict[str, Any]) -> RejectedChange:
        return RejectedChange(
            collection=row["collection"],
            record_id=row["record_id"],
            change_id=row["change_id"],
            op=row["op"],
            data=_loads(row["data"]),
            code=row["code"],
            errors=_loads(row["errors"]) or {},
            rejected_at=row["rejected_at"],
        )

    def rejection(self, collection: str, record_id: str) -> RejectedChange | None:
        rows = list(
            self.db["rejected"].rows_where(
                "collection = ? and record_id = ?", [collection, record_id]
            )
        )
        return self._rejection(rows[0]) if rows else None

    def rejections(self) -> list[RejectedChange]:
        return [self._rejection(row) for row in self.db["rejected"].rows_where(order_by="rowid")]

    # -- send-backs ----------------------------------------------------------------------

    def _receive_send_back(self, review_id: str, data: JSON) -> None:
        """Start showing a send-back that just reached the device (once: a send-back pulled
        again after a cursor reset keeps its state)."""
        visit_id = data.get("visit")
        if data.get("kind") != SEND_BACK or not isinstance(visit_id, str):
            return
        if list(self.db["send_backs"].rows_where("id = ?", [review_id])):
            return
        visit = self._row(VISITS, visit_id)
        baseline = max(int(data.get("visit_version") or 0), visit["version"] if visit else 0)
        self.db["send_backs"].insert(
            {
                "id": review_id,
                "visit_id": visit_id,
                "baseline_version": baseline,
                "received_at": _now_iso(),
                "cleared_at": None,
                "cleared_because": None,
            }
        )

    def _pulled_review(self, review_id: str, pulled: JSON) -> None:
        self._receive_send_back(review_id, pulled["data"])
        if pulled["deleted"] or pulled["data"].get("status") == "resolved":
            self._clear_send_back(review_id, "resolved on the server")

    def _pulled_visit(self, visit_id: str, pulled: JSON) -> None:
        """A version of the visit newer than the one sent back was made elsewhere since (the
        doctor's other tablet, or a reviewer's correction): the send-back is answered."""
        for row in self.db["send_backs"].rows_where(
            "visit_id = ? and cleared_at is null", [visit_id]
        ):
            if pulled["deleted"]:
                self._clear_send_back(row["id"], "deleted")
            elif int(pulled["version"] or 0) > row["baseline_version"]:
                self._clear_send_back(row["id"], f"changed since (version {pulled['version']})")

    def _clear_send_backs(self, collection: str, record_id: str, because: str) -> None:
        if collection != VISITS:
            return
        for row in self.db["send_backs"].rows_where(
            "visit_id = ? and cleared_at is null", [record_id]
        ):
            self._clear_send_back(row["id"], because)

    def _clear_send_back(self, review_id: str, because: str) -> None:
        self.db.execute(
            "update send_backs set cleared_at = ?, cleared_because = ? "
            "where id = ? and cleared_at is null",
            [_now_iso(), because, review_id],
        )

    def send_backs(self, *, visit_id: str | None = None) -> list[SendBack]:
        """The visits sent back for correction that the doctor has not edited since, oldest
        first (optionally those of one visit)."""
        where, args = "s.cleared_at is null", []
        if visit_id is not None:
            where, args = where + " and s.visit_id = ?", [visit_id]
        rows = self.db.query(
            "select r.id, r.data from send_backs s join reviews r on r.id = s.id "  # noqa: S608
            f"where {where} and r.deleted = 0 order by s.received_at, r.id",
            args,
        )
        found = []
        for row in rows:
            data = _loads(row["data"]) or {}
            visit = self.get(VISITS, str(data.get("visit")))
            found.append(
                SendBack(
                    id=row["id"],
                    visit_id=str(data.get("visit")),
                    visit_version=int(data.get("visit_version") or 0),
                    comment=str(data.get("comment") or ""),
                    by=str(data.get("by") or ""),
                    at=str(data.get("at") or ""),
                    visit=visit.data if visit is not None and not visit.deleted else None,
                )
            )
        return found

    # -- pulling -------------------------------------------------------------------------

    def apply_pulled(self, changes: list[JSON], cursor: str) -> int:
        """Apply one pulled page and save its cursor, in one transaction.

        A pulled record replaces the device's copy, unless the device has a change of that
        record pending (in the outbox or rejected): then the local version stays and the
        server's is kept beside it (`theirs`); the push settles which one wins.
        """
        with self.transaction():
            for wire in changes:
                collection = wire.get("collection")
                record_id = wire.get("id")
                if not isinstance(collection, str) or not isinstance(record_id, str):
                    continue
                if collection == CONFLICTS:
                    self._apply_pulled_conflict(record_id, wire)
                    continue
                try:
                    table = self._collection_table(collection)
                except UnknownCollection:
                    continue  # a collection a newer server sends; nothing here reads it
                theirs = {
                    "version": wire.get("version", 0),
                    "deleted": bool(wire.get("deleted")),
                    "data": wire.get("data") or {},
                }
                pending = (
                    self.outbox_entry(collection, record_id) is not None
                    or self.rejection(collection, record_id) is not None
                )
                if collection == REVIEWS:
                    self._pulled_review(record_id, theirs)
                elif collection == VISITS:
                    self._pulled_visit(record_id, theirs)
                if pending and self._row(collection, record_id) is not None:
                    table.update(record_id, {"theirs": _dumps(theirs)})
                    continue
                table.upsert(
                    {
                        "id": record_id,
                        "version": theirs["version"],
                        "deleted": 1 if theirs["deleted"] else 0,
                        "data": _dumps(theirs["data"]),
                        "hlc": wire.get("hlc"),
                        "theirs": None,
                    },
                    pk="id",
                )
            self._set_meta("cursor", cursor)
        return len(changes)

    def _apply_pulled_conflict(self, conflict_id: str, wire: JSON) -> None:
        data = wire.get("data") or {}
        existing = list(self.db[CONFLICTS].rows_where("id = ?", [conflict_id]))
        if wire.get("deleted"):
            self._set_conflict_status(conflict_id, "resolved")
            return
        row = {
            "id": conflict_id,
            "collection": data.get("collection", ""),
            "record_id": data.get("record_id", ""),
            "stored_version": data.get("stored_version") or 0,
            "incoming_op": data.get("incoming_op") or str(Op.UPSERT),
            "incoming_data": _dumps(data.get("incoming_data")),
            "base_version": data.get("base_version") or 0,
            "origin": data.get("origin") or LOCAL_ONLY_ORIGIN,
            "reason": data.get("reason") or "",
            "status": data.get("status") or "open",
            "resolution": data.get("resolution"),
            "version": wire.get("version") or 1,
        }
        if existing:
            self.db[CONFLICTS].update(conflict_id, row)
        else:
            self.db[CONFLICTS].insert({**row, "theirs": None, "seq": self._next_seq()})

    # -- conflicts -----------------------------------------------------------------------

    @staticmethod
    def _conflict(row: dict[str, Any]) -> Conflict:
        return Conflict(
            id=row["id"],
            collection=row["collection"],
            record_id=row["record_id"],
            stored_version=row["stored_version"],
            incoming_op=Op(row["incoming_op"]),
            incoming_data=_loads(row["incoming_data"]),
            base_version=row["base_version"],
            origin=row["origin"],
            reason=row["reason"],
            status=row["status"],
            resolution=row["resolution"],
        )

    def _set_conflict_status(
        self, conflict_id: str, status: str, resolution: str | None = None
    ) -> None:
        """A conflict's new status, as a new version of it (it is a record, too)."""
        self.db.execute(
            "update conflicts set status = ?, resolution = coalesce(?, resolution), "
            "version = coalesce(version, 1) + 1, seq = ? where id = ?",
            [status, resolution, self._next_seq(), conflict_id],
        )

    def conflicts(self, *, status: str | None = "open") -> list[Conflict]:
        return [view.conflict for view in self.conflict_views(status=status)]

    def conflict_views(self, *, status: str | None = "open") -> list[ConflictView]:
        where, args = ("status = ?", [status]) if status else (None, [])
        views = []
        for row in self.db[CONFLICTS].rows_where(where, args, order_by="seq"):
            theirs = _loads(row["theirs"])
            if theirs is None:
                theirs = self._server_copy(row["collection"], row["record_id"])
            views.append(ConflictView(self._conflict(row), theirs))
        return views

    def _server_copy(self, collection: str, record_id: str) -> JSON | None:
        """The device's best knowledge of the server's version of a record."""
        try:
            row = self._row(collection, record_id)
        except UnknownCollection:
            return None
        if row is None:
            return None
        shadow = _loads(row["theirs"])
        if shadow is not None:
            return shadow
        if self.outbox_entry(collection, record_id) is not None:
            return None
        return {
            "version": row["version"],
            "deleted": bool(row["deleted"]),
            "data": _loads(row["data"]),
        }

    def resolve(self, conflict_id: str, keep: str) -> Change | None:
        """Settle an open conflict: `mine` queues the device's version on top of the
        server's, `theirs` adopts the server's version and queues a `resolve` change."""
        if keep not in ("mine", "theirs"):
            raise ValueError("keep must be 'mine' or 'theirs'")
        with self.transaction():
            views = [v for v in self.conflict_views(status="open") if v.conflict.id == conflict_id]
            if not views:
                return None
            view = views[0]
            conflict = view.conflict
            theirs = view.theirs or {}
            server_version = max(conflict.stored_version, int(theirs.get("version") or 0))
            table = self._collection_table(conflict.collection)
            hlc = self._clock().now().encode()
            self._set_meta("hlc", hlc)
            if keep == "mine":
                mine_deleted = conflict.incoming_op is Op.DELETE
                data = None if mine_deleted else (conflict.incoming_data or {})
                table.upsert(
                    {
                        "id": conflict.record_id,
                        "version": server_version,
                        "deleted": 1 if mine_deleted else 0,
                        "data": _dumps(data if data is not None else (theirs.get("data") or {})),
                        "hlc": hlc,
                        "seq": self._next_seq(),
                        "theirs": None,
                    },
                    pk="id",
                )
                # The outbox change is made on top of the server's version now.
                self.db.execute(
                    "delete from outbox where collection = ? and record_id = ? and in_flight = 0",
                    [conflict.collection, conflict.record_id],
                )
                op = Op.DELETE if mine_deleted else Op.UPSERT
                self._queue(
                    conflict.collection,
                    conflict.record_id,
                    op,
                    data,
                    hlc,
                    base_version=server_version,
                    resolves=conflict.id,
                )
            else:
                if theirs:
                    table.upsert(
                        {
                            "id": conflict.record_id,
                            "version": theirs.get("version", server_version),
                            "deleted": 1 if theirs.get("deleted") else 0,
                            "data": _dumps(theirs.get("data") or {}),
                            "hlc": hlc,
                            "seq": self._next_seq(),
                            "theirs": None,
                        },
                        pk="id",
                    )
                self.db.execute(
                    "delete from outbox where collection = ? and record_id = ? and in_flight = 0",
                    [conflict.collection, conflict.record_id],
                )
                self._queue(
                    conflict.collection,
                    conflict.record_id,
                    Op.RESOLVE,
                    None,
                    hlc,
                    base_version=server_version,
                    resolves=conflict.id,
                )
            self._set_conflict_status(conflict.id, "resolved", keep)
            entry = self.outbox_entry(conflict.collection, conflict.record_id)
        return entry.change if entry else None

    # -- the storage contract ------------------------------------------------------------

    def apply(self, change: Change, *, origin: str) -> ChangeResult:
        """Apply one change by the merge rule, with this store as the authority.

        The device's own edits go through `save`/`delete` and the outbox instead; `apply`
        is the contract (`sync.storage.SyncStore`) that every store honours the same way.
        """
        with self.transaction():
            prior = list(
                self.db["answers"].rows_where(
                    "origin = ? and change_id = ?", [origin, change.change_id]
                )
            )
            if prior:
                return ChangeResult.from_wire(json.loads(prior[0]["result"]))
            result = self._apply(change, origin)
            self.db["answers"].insert(
                {
                    "origin": origin,
                    "change_id": change.change_id,
                    "result": json.dumps(result.to_wire(), ensure_ascii=False),
                }
            )
        return result

    def _apply(self, change: Change, origin: str) -> ChangeResult:
        table = self._collection_table(change.collection)
        current = self.get(change.collection, change.id)
        decision = decide(current, change)
        result = ChangeResult(
            collection=change.collection,
            id=change.id,
            change_id=change.change_id,
            status=Status.ACCEPTED,
        )
        if decision.action is Action.RESOLVE:
            rows = list(self.db[CONFLICTS].rows_where("id = ?", [change.resolves]))
            if not rows or rows[0]["record_id"] != change.id or current is None:
                result.status = Status.REJECTED
                result.code = ErrorCode.NOT_FOUND
                result.errors = {"resolves": ["no such conflict for this record"]}
                return result
            self._settle(change, "theirs")
            result.version = current.version
            result.conflict_id = change.resolves
            return result
        if decision.action is Action.DUPLICATE:
            assert current is not None
            self._settle(change, "mine")
            result.status = Status.DUPLICATE
            result.version = current.version
            return result
        if decision.action is Action.CONFLICT:
            assert current is not None
            conflict_id = new_id()
            self.db[CONFLICTS].insert(
                {
                    "id": conflict_id,
                    "collection": change.collection,
                    "record_id": change.id,
                    "stored_version": current.version,
                    "incoming_op": str(change.op),
                    "incoming_data": _dumps(change.data),
                    "base_version": change.base_version,
                    "origin": origin,
                    "reason": decision.reason,
                    "status": "open",
                    "resolution": None,
                    "theirs": None,
                    "version": 1,
                    "seq": self._next_seq(),
                }
            )
            result.status = Status.CONFLICT
            result.version = current.version
            result.conflict_id = conflict_id
            result.code = ErrorCode.STALE_VERSION
            result.current = {
                "version": current.version,
                "deleted": current.deleted,
                "data": current.data,
            }
            return result
        # INSERT, UPDATE or DELETE: a new version. A tombstone keeps the last data seen,
        # as the server's does.
        version = (current.version if current else 0) + 1
        previous = current.data if current else {}
        data = change.data if change.data is not None else previous
        table.upsert(
            {
                "id": change.id,
                "version": version,
                "deleted": 1 if change.op is Op.DELETE else 0,
                "data": _dumps(data),
                "hlc": change.hlc,
                "seq": self._next_seq(),
                "theirs": None,
            },
            pk="id",
        )
        self._settle(change, "mine")
        result.version = version
        return result

    def _settle(self, change: Change, resolution: str) -> None:
        """Mark the conflict a change says it resolves, if it is open and about this record."""
        if not change.resolves:
            return
        rows = list(self.db[CONFLICTS].rows_where("id = ?", [change.resolves]))
        if rows and rows[0]["status"] == "open" and rows[0]["record_id"] == change.id:
            self._set_conflict_status(change.resolves, "resolved", resolution)

    def changes_since(self, cursor: str | None, limit: int) -> ChangePage:
        """Records changed on this device after `cursor`, oldest change first.

        The cursor is the device's own change sequence: every local edit and every applied
        change takes the next number, and so does each conflict, which is listed as a
        record of the `conflicts` collection (as the server lists it). Records pulled from
        the server take none, so on the device this lists the local changes (the outbox
        lists what still has to be pushed).
        """
        after = decode_cursor(cursor)
        limit = max(1, int(limit))
        selects = [
            f"select '{name}' as collection, id, version, deleted, data, hlc, seq "  # noqa: S608
            f"from [{name}] where seq > ?"
            for name in self._record_tables()
        ]
        sql = " union all ".join(selects) + " order by seq limit ?"
        rows = [
            (row["seq"], self._record(row["collection"], row))
            for row in self.db.query(sql, [after] * len(selects) + [limit + 1])
        ]
        rows += [
            (row["seq"], self._conflict_record(row))
            for row in self.db[CONFLICTS].rows_where(
                "seq > ?", [after], order_by="seq", limit=limit + 1
            )
        ]
        rows.sort(key=lambda pair: pair[0])
        has_more = len(rows) > limit
        rows = rows[:limit]
        last = rows[-1][0] if rows else after
        return ChangePage(
            records=[record for _, record in rows], cursor=encode_cursor(last), has_more=has_more
        )

    def _conflict_record(self, row: dict[str, Any]) -> Record:
        conflict = self._conflict(row)
        return Record(
            collection=CONFLICTS,
            id=conflict.id,
            version=row["version"] or 1,
            deleted=False,
            data={
                "collection": conflict.collection,
                "record_id": conflict.record_id,
                "stored_version": conflict.stored_version,
                "incoming_op": str(conflict.incoming_op),
                "incoming_data": conflict.incoming_data,
                "base_version": conflict.base_version,
                "reason": conflict.reason,
                "status": conflict.status,
                "resolution": conflict.resolution,
            },
        )

    def _record_tables(self) -> list[str]:
        names = []
        for name in self.db.table_names():
            if name in _INTERNAL_TABLES or not _COLLECTION_NAME.match(name):
                continue
            names.append(name)
        return sorted(names)


def open_store(path: str | os.PathLike[str], *, any_thread: bool = False) -> LocalStore:
    """Open (creating if need be) the device store at `path`: the contract store factory.

    `any_thread` lets a thread other than the opener use it (never two at once): the load
    tests hand a tablet from the thread that drove it to the one that checks it."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite_utils.Database(sqlite3.connect(target, check_same_thread=not any_thread))
    # WAL: a reader (`status`) never waits for a sync; synchronous=FULL: a committed
    # transaction survives a power cut, which is what "nothing is lost" rests on.
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("PRAGMA busy_timeout=10000")
    return LocalStore(db)
