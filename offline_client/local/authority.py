"""The store as the authority, as the server is: `apply` and `changes_since` of the storage
contract (`sync.storage.SyncStore`).

The device never uses this half: its own edits go through the outbox (`outbox.py`) and the
server's changes arrive through `pull.py`. It exists so that the storage contract suite
(`sync/storage_testing.py`) runs against the client store exactly as against the server's,
and so that tests can stand a device store in for a server (tests/client/fakes.py). It
keeps its answers per origin and change id in the `answers` table.
"""

from __future__ import annotations

import json
from typing import Any

from offline_client.local.database import (
    DeviceDatabase,
    dumps,
    new_id,
)
from sync.merge import Action, decide
from sync.protocol import (
    CONFLICTS,
    ErrorCode,
    Op,
    Status,
)
from sync.records import Change, ChangeResult, Record
from sync.storage import ChangePage, decode_cursor, encode_cursor


class Authority(DeviceDatabase):
    """`apply` and `changes_since`: the store answering changes as an authority."""

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
                    "incoming_data": dumps(change.data),
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
                "data": dumps(data),
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
