"""Conflicts with both sides (the device's version, and the server's, "theirs"), pulled or
answered to a push, and settling them (`resolve`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from offline_client.local.database import (
    LOCAL_ONLY_ORIGIN,
    DeviceDatabase,
    UnknownCollection,
    dumps,
    loads,
)
from sync.protocol import (
    CONFLICTS,
    Op,
)
from sync.records import JSON, Change
from sync.storage import Conflict


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


class Conflicts(DeviceDatabase):
    """The `conflicts` table and settling a conflict."""

    @staticmethod
    def _conflict(row: dict[str, Any]) -> Conflict:
        return Conflict(
            id=row["id"],
            collection=row["collection"],
            record_id=row["record_id"],
            stored_version=row["stored_version"],
            incoming_op=Op(row["incoming_op"]),
            incoming_data=loads(row["incoming_data"]),
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
            theirs = loads(row["theirs"])
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
        shadow = loads(row["theirs"])
        if shadow is not None:
            return shadow
        if self.outbox_entry(collection, record_id) is not None:
            return None
        return {
            "version": row["version"],
            "deleted": bool(row["deleted"]),
            "data": loads(row["data"]),
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
                        "data": dumps(data if data is not None else (theirs.get("data") or {})),
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
                row = self._row(conflict.collection, conflict.record_id)
                held = row["version"] if row is not None else 0
                # The conflict's snapshot of the server's version may be older than what a
                # later pull brought (the record edited or deleted again on the server since):
                # keeping "theirs" never moves the device back to an older version.
                if theirs and int(theirs.get("version") or 0) >= held:
                    table.upsert(
                        {
                            "id": conflict.record_id,
                            "version": theirs.get("version", server_version),
                            "deleted": 1 if theirs.get("deleted") else 0,
                            "data": dumps(theirs.get("data") or {}),
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
            "incoming_data": dumps(data.get("incoming_data")),
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
