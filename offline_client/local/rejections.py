"""Changes the server refused, with the code and field errors, kept visible until the record
is edited (then sent again with a new change id) or deleted. They never sit in the outbox,
so they never block it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from offline_client.local.database import DeviceDatabase, loads
from sync.records import JSON, FieldErrors


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


class Rejections(DeviceDatabase):
    """The `rejected` table."""

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
            data=loads(row["data"]),
            code=row["code"],
            errors=loads(row["errors"]) or {},
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
