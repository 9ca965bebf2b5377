"""The merge rule: what a store does with one incoming change, given what it holds.

One pure function serves the server and the offline client alike. The rule is
*the stored version wins*: a change made on top of an older version than the one stored
is a conflict, the stored version stays, and the incoming version is kept beside it for a
person to settle (a township reviewer, or the doctor with `conflicts resolve`). Arrival
order at the server decides, never a device clock, so the merge is deterministic however
wrong a tablet's clock is. Deletes are tombstones, and a tombstone always wins: nothing
that was deleted comes back by a late or replayed change (docs/sync-protocol.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sync.protocol import Op
from sync.records import Change, Record


class Action(StrEnum):
    INSERT = "insert"  # a new record (or a tombstone for a record never seen)
    UPDATE = "update"  # a new version of a live record
    DELETE = "delete"  # the record becomes a tombstone
    DUPLICATE = "duplicate"  # the store already holds exactly this
    CONFLICT = "conflict"  # keep the stored version; keep the incoming one for review
    RESOLVE = "resolve"  # settle a conflict in favour of the stored version


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    reason: str

    @property
    def changes_record(self) -> bool:
        return self.action in (Action.INSERT, Action.UPDATE, Action.DELETE)


def decide(current: Record | None, change: Change) -> Decision:
    """Decide what `change` does to `current` (None when the store has never seen the id)."""
    if change.op is Op.RESOLVE:
        return Decision(Action.RESOLVE, "the stored version is kept")

    if current is None:
        if change.op is Op.DELETE:
            # Keep a tombstone even for an id never seen: a late create of it must not
            # bring it back.
            return Decision(Action.INSERT, "tombstone for a record never seen")
        return Decision(Action.INSERT, "new record")

    if current.deleted:
        if change.op is Op.DELETE:
            return Decision(Action.DUPLICATE, "already deleted")
        return Decision(Action.CONFLICT, "the record was deleted; a tombstone is final")

    if change.op is Op.DELETE:
        if change.base_version == current.version:
            return Decision(Action.DELETE, "deleted")
        return Decision(
            Action.CONFLICT,
            f"deleted on top of version {change.base_version}, but version "
            f"{current.version} is stored",
        )

    if change.data == current.data:
        return Decision(Action.DUPLICATE, "identical to the stored version")
    if change.base_version == current.version:
        return Decision(Action.UPDATE, "edited on top of the stored version")
    return Decision(
        Action.CONFLICT,
        f"edited on top of version {change.base_version}, but version {current.version} is stored",
    )
