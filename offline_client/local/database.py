"""The device's SQLite file: one table a collection, the schema of the outbox, rejected,
conflicts, answers, meta and send_backs tables, transactions, the device id and its hybrid
logical clock, the pull cursor, and reading records.
"""

from __future__ import annotations

import contextlib
import json
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import sqlite_utils

from sync.clock import HLCTimestamp, HybridLogicalClock
from sync.protocol import (
    ASSIGNMENTS,
    CONFLICTS,
    DOCTORS,
    FLAGS,
    LEAVE,
    PLACES,
    REVIEWS,
    TRAININGS,
    VISITS,
)
from sync.records import JSON, Record
from sync.storage import SyncStore

KNOWN_COLLECTIONS = (VISITS, LEAVE, TRAININGS, PLACES, ASSIGNMENTS, FLAGS, DOCTORS, REVIEWS)
INTERNAL_TABLES = frozenset({"outbox", "rejected", CONFLICTS, "answers", "meta", "send_backs"})
COLLECTION_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")

# Sync state of a record as `visit list` shows it.
SYNCED = "synced"
PENDING = "pending"
IN_FLIGHT = "in_flight"
REJECTED = "rejected"
CONFLICT = "conflict"
LOCAL_ONLY_ORIGIN = "server"  # origin of conflicts the server reported


class UnknownCollection(ValueError):
    """A collection name this store cannot hold."""


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def dumps(value: Any) -> str | None:
    """JSON text of a column (None stays NULL)."""
    return None if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)


def loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def new_id() -> str:
    return uuid.uuid4().hex


class DeviceDatabase(SyncStore):
    """The SQLite file and what every part of the store shares: the schema, transactions, the
    meta table (device id, clock, cursor, sequences) and reading records."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db
        self._create_schema()

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
                self._receive_send_back(row["id"], loads(row["data"]) or {})

    def _collection_table(self, collection: str) -> sqlite_utils.db.Table:
        if not COLLECTION_NAME.match(collection) or collection in INTERNAL_TABLES:
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

    @property
    def cursor(self) -> str | None:
        return self._meta("cursor")

    @property
    def last_sync_at(self) -> str | None:
        return self._meta("last_sync_at")

    def mark_synced(self, when: str | None = None) -> None:
        with self.transaction():
            self._set_meta("last_sync_at", when or now_iso())

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
            data=loads(row["data"]) or {},
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
        return None if row is None else loads(row["theirs"])

    def _record_tables(self) -> list[str]:
        names = []
        for name in self.db.table_names():
            if name in INTERNAL_TABLES or not COLLECTION_NAME.match(name):
                continue
            names.append(name)
        return sorted(names)
