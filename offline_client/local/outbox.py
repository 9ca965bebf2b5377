"""The outbox: local edits and the change each queues, in one transaction; pushing batches
and storing the server's answers (docs/sync-protocol.md, "Exactly once").

One pending change a record. A later edit of a record whose change was never sent
collapses into that change and keeps its change id; once the change is in flight (sent,
no answer stored yet) it is frozen, so a resend is byte for byte the same change and the
server answers it once, and the edit waits in the row's `queued` slot until the answer is
stored, then goes out with a new change id.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from offline_client.errors import RecordNotFound
from offline_client.local.database import (
    LOCAL_ONLY_ORIGIN,
    DeviceDatabase,
    dumps,
    loads,
    new_id,
    now_iso,
)
from offline_client.local.rejections import RejectedChange
from sync.protocol import (
    CONFLICTS,
    ErrorCode,
    Op,
    Status,
)
from sync.records import JSON, Change, ChangeResult, Record


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """One pending change as the outbox holds it."""

    change: Change
    in_flight: bool
    queued: JSON | None  # an edit made while the change was in flight, sent after its answer


@dataclass(slots=True)
class AnswerOutcome:
    """What storing the answers to one pushed batch did."""

    accepted: int = 0
    duplicates: int = 0
    rejected: list[RejectedChange] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)  # conflict ids
    unanswered: int = 0  # changes of the batch the answer did not mention


class Outbox(DeviceDatabase):
    """Local edits, the outbox and the answers to pushed batches."""

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
                    "data": dumps(data),
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
            self.db["outbox"].update((collection, record_id), {"queued": dumps(queued)})
            return
        if entry is not None:
            # Never sent: the change id stays, the content is the latest edit.
            self.db["outbox"].update(
                (collection, record_id),
                {"op": str(op), "data": dumps(data), "hlc": hlc, "resolves": resolves},
            )
            return
        self.db["outbox"].insert(
            {
                "collection": collection,
                "record_id": record_id,
                "change_id": new_id(),
                "op": str(op),
                "base_version": base_version,
                "data": dumps(data),
                "hlc": hlc,
                "resolves": resolves,
                "in_flight": 0,
                "queued": None,
                "position": self._next_position(),
            }
        )

    @staticmethod
    def _entry(row: dict[str, Any]) -> OutboxEntry:
        return OutboxEntry(
            change=Change(
                collection=row["collection"],
                id=row["record_id"],
                op=Op(row["op"]),
                change_id=row["change_id"],
                base_version=row["base_version"],
                data=loads(row["data"]),
                hlc=row["hlc"],
                resolves=row["resolves"],
            ),
            in_flight=bool(row["in_flight"]),
            queued=loads(row["queued"]),
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
                        "data": dumps(current.get("data") or {}),
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
                    "incoming_data": dumps(change.data),
                    "base_version": change.base_version,
                    "origin": LOCAL_ONLY_ORIGIN,
                    "reason": str(result.code or ErrorCode.STALE_VERSION),
                    "status": "open",
                    "resolution": None,
                    "theirs": dumps(current) if current else None,
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
                        "data": dumps(current.get("data") or {}),
                        "theirs": None,
                    },
                    pk="id",
                )
            elif current:
                table.update(change.id, {"theirs": dumps(current)})
        else:
            rejection = RejectedChange(
                collection=change.collection,
                record_id=change.id,
                change_id=change.change_id,
                op=str(change.op),
                data=change.data,
                code=str(result.code or ErrorCode.VALIDATION),
                errors=result.errors,
                rejected_at=now_iso(),
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
                        "data": dumps(change.data),
                        "code": rejection.code,
                        "errors": dumps(rejection.errors),
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
                "data": dumps(queued["data"]),
                "hlc": queued["hlc"],
                "resolves": queued.get("resolves"),
                "in_flight": 0,
                "queued": None,
                "position": self._next_position(),
            },
        )
