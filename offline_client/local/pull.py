"""Pulled pages: each page of the server's changes is stored with its cursor in one
transaction; a record with a local change pending keeps the server's version beside it.
"""

from __future__ import annotations

from offline_client.local.database import DeviceDatabase, UnknownCollection, dumps
from sync.protocol import (
    CONFLICTS,
    REVIEWS,
    VISITS,
)
from sync.records import JSON


class Pull(DeviceDatabase):
    """Storing pulled pages."""

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
                    table.update(record_id, {"theirs": dumps(theirs)})
                    continue
                table.upsert(
                    {
                        "id": record_id,
                        "version": theirs["version"],
                        "deleted": 1 if theirs["deleted"] else 0,
                        "data": dumps(theirs["data"]),
                        "hlc": wire.get("hlc"),
                        "theirs": None,
                    },
                    pk="id",
                )
            self._set_meta("cursor", cursor)
        return len(changes)
