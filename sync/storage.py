"""The storage contract for sync state, implemented by the server (SQLAlchemy) and the
offline client (sqlite-utils), with one contract test class run against each: the suite
ships beside it in sync/storage_testing.py and tests/test_storage_contract.py runs it on
every store. Modelled on Kinto's storage base class and its backend-independent test suite
(kinto/core/storage/testing.py).

A store holds the latest version of each record (or its tombstone), applies incoming
changes by the one merge rule of `sync.merge`, remembers the answer given to every change
id so a resend gets the same answer, keeps the losing side of each conflict, and lists its
records in the order they last changed, from a cursor.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from sync.protocol import Op
from sync.records import JSON, Change, ChangeResult, Record
from sync.values import ascii_digits

# A cursor is a sequence number: ASCII digits only (issue 13), at most 18 of them (BIGINT).
MAX_CURSOR_DIGITS = 18


class InvalidCursor(ValueError):
    """A cursor this store did not issue."""


@dataclass(frozen=True, slots=True)
class Conflict:
    """Both sides of a conflict: the stored version won, the incoming one is kept here."""

    id: str
    collection: str
    record_id: str
    stored_version: int
    incoming_op: Op
    incoming_data: JSON | None
    base_version: int
    origin: str
    reason: str
    status: str = "open"  # open | resolved
    resolution: str | None = None  # mine | theirs


@dataclass(frozen=True, slots=True)
class ChangePage:
    records: list[Record]
    cursor: str
    has_more: bool
    conflicts: list[Conflict] = field(default_factory=list)


def encode_cursor(seq: int) -> str:
    return str(seq)


def decode_cursor(cursor: str | None) -> int:
    """The sequence number behind a cursor; None or "" is the start."""
    if cursor in (None, ""):
        return 0
    assert cursor is not None
    if not ascii_digits(cursor, max_digits=MAX_CURSOR_DIGITS):
        raise InvalidCursor(f"not a cursor this server issued: {cursor[:40]!r}")
    return int(cursor)


class SyncStore(ABC):
    """What every sync participant's storage does. See the module docstring."""

    @abstractmethod
    def get(self, collection: str, record_id: str) -> Record | None:
        """The stored version of a record, a tombstone, or None if never seen."""

    @abstractmethod
    def apply(self, change: Change, *, origin: str) -> ChangeResult:
        """Apply one validated change by `sync.merge.decide`, atomically.

        `origin` names who sent it (a user or device); a change id is remembered per
        origin, and the same change id again returns the first answer unchanged.
        """

    @abstractmethod
    def changes_since(self, cursor: str | None, limit: int) -> ChangePage:
        """Records changed after `cursor`, oldest change first, at most `limit`."""

    @abstractmethod
    def conflicts(self, *, status: str | None = "open") -> list[Conflict]:
        """Conflicts kept by this store, optionally only those with `status`."""
