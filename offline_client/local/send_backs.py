"""Send-backs: whether each visit a reviewer sent back (a pulled `reviews` record) is still
waiting for the doctor's correction (docs/review.md); `send_backs()` lists the open ones.
"""

from __future__ import annotations

from dataclasses import dataclass

from offline_client.local.database import DeviceDatabase, loads, now_iso
from sync.protocol import (
    VISITS,
)
from sync.records import JSON

SEND_BACK = "send_back"  # the `kind` of a reviews record that sends a visit back


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


class SendBacks(DeviceDatabase):
    """The `send_backs` table beside the pulled `reviews`."""

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
                "received_at": now_iso(),
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
            [now_iso(), because, review_id],
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
            data = loads(row["data"]) or {}
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
