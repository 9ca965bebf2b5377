"""Change records and stored records: the dataclasses every sync participant speaks."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from sync.clock import HLCTimestamp
from sync.protocol import (
    B_BATCH_ID,
    B_CHANGES,
    B_CLOCK,
    B_COMPACT,
    B_DEVICE_ID,
    B_SENT_AT,
    DEVICE_COLLECTIONS,
    F_BASE_VERSION,
    F_CHANGE_ID,
    F_COLLECTION,
    F_DATA,
    F_HLC,
    F_ID,
    F_OP,
    F_RESOLVES,
    ErrorCode,
    Op,
    Status,
)
from sync.values import INT64_MAX, safe_path, text_problem, unsafe_values

JSON = dict[str, Any]
FieldErrors = dict[str, list[str]]

# Record and change ids are made on the device: a UUID, or any short token without
# whitespace (imports use readable ids such as "V-2026-0001").
_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,63}$")


def valid_id(value: object) -> bool:
    return isinstance(value, str) and bool(_ID_PATTERN.match(value))


@dataclass(frozen=True, slots=True)
class Change:
    """One device-side change to one record, as pushed."""

    collection: str
    id: str
    op: Op
    change_id: str
    base_version: int = 0  # the server version the device last saw; 0 = never saw one
    data: JSON | None = None
    hlc: str | None = None
    resolves: str | None = None  # the conflict this change settles

    def to_wire(self) -> JSON:
        wire: JSON = {
            F_COLLECTION: self.collection,
            F_ID: self.id,
            F_OP: str(self.op),
            F_CHANGE_ID: self.change_id,
            F_BASE_VERSION: self.base_version,
        }
        if self.data is not None:
            wire[F_DATA] = self.data
        if self.hlc is not None:
            wire[F_HLC] = self.hlc
        if self.resolves is not None:
            wire[F_RESOLVES] = self.resolves
        return wire


@dataclass(frozen=True, slots=True)
class Record:
    """A record as one store holds it: the latest version, or a tombstone."""

    collection: str
    id: str
    version: int
    deleted: bool
    data: JSON
    hlc: str | None = None


@dataclass(slots=True)
class ChangeResult:
    """The answer to one pushed change. Stored, so a resend gets the same answer."""

    collection: str
    id: str
    change_id: str
    status: Status
    version: int | None = None
    code: ErrorCode | None = None
    errors: FieldErrors = field(default_factory=dict)
    conflict_id: str | None = None
    current: JSON | None = None  # the server's version, when it differs from the device's

    def to_wire(self, *, compact: bool = False) -> JSON:
        """The result as the push answer carries it; `compact` leaves out what the device
        sent (collection, id, change_id: it matches results to changes by position)."""
        wire: JSON = (
            {"status": str(self.status)}
            if compact
            else {
                "collection": self.collection,
                "id": self.id,
                "change_id": self.change_id,
                "status": str(self.status),
            }
        )
        if self.version is not None:
            wire["version"] = self.version
        if self.code is not None:
            wire["code"] = str(self.code)
        if self.errors:
            wire["errors"] = self.errors
        if self.conflict_id is not None:
            wire["conflict_id"] = self.conflict_id
        if self.current is not None:
            wire["current"] = self.current
        return wire

    @classmethod
    def from_wire(cls, wire: JSON) -> ChangeResult:
        """A full result (as `to_wire()` without `compact` gives it)."""
        return cls(
            collection=wire["collection"],
            id=wire["id"],
            change_id=wire["change_id"],
            status=Status(wire["status"]),
            version=wire.get("version"),
            code=ErrorCode(wire["code"]) if wire.get("code") else None,
            errors=wire.get("errors") or {},
            conflict_id=wire.get("conflict_id"),
            current=wire.get("current"),
        )


def rejected(
    change_id: str, collection: str, record_id: str, code: ErrorCode, errors: FieldErrors
) -> ChangeResult:
    return ChangeResult(
        collection=collection,
        id=record_id,
        change_id=change_id,
        status=Status.REJECTED,
        code=code,
        errors=errors,
    )


@dataclass(frozen=True, slots=True)
class PushBatch:
    device_id: str
    batch_id: str
    sent_at: str | None
    clock: str | None
    # In batch order: a Change, or a rejected ChangeResult for an entry that could not be
    # read as a change record at all.
    items: list[Change | ChangeResult]
    compact: bool = False  # answer with compact results (B_COMPACT)

    @property
    def changes(self) -> list[Change]:
        return [item for item in self.items if isinstance(item, Change)]


class BatchFormatError(ValueError):
    """A push body that is not a batch at all (as opposed to one bad change inside it)."""

    def __init__(self, message: str, errors: FieldErrors | None = None) -> None:
        super().__init__(message)
        self.errors = errors or {}


def _text(value: object) -> str:
    """A value the device sent, echoed in its result: only what can be served back (a lone
    surrogate or NUL in a bad id must not make the answer itself unservable)."""
    if not isinstance(value, str):
        return ""
    return value[:200] if text_problem(value) is None else safe_path(value[:200])


_ID_RULE = "must be an id of 1-64 letters, digits, '_', '.', ':' or '-'"
_HLC_RULE = "must be an HLC stamp <millis>-<counter>-<node> (ASCII digits, an id)"


def parse_change(index: int, raw: object, *, values_safe: bool = False) -> Change | ChangeResult:
    """Read one wire change; a ChangeResult (rejected) says what was wrong and where.
    `values_safe`: the body's text passed the screen (`sync.batch.Decoded`), so no value
    in it needs the walk of `unsafe_values`."""
    path = f"{B_CHANGES}.{index}"
    if not isinstance(raw, dict):
        return rejected("", "", "", ErrorCode.INVALID_REQUEST, {path: ["must be an object"]})
    collection = raw.get(F_COLLECTION)
    record_id = raw.get(F_ID)
    change_id = raw.get(F_CHANGE_ID)
    # Everything a change carries must be storable and servable, or it is refused here,
    # before anything is written: an accepted record is sent back on every pull (issue 13).
    errors: FieldErrors = {} if values_safe else unsafe_values(raw)
    if errors:
        if change_id is None and valid_id(raw.get(F_HLC)):
            change_id = raw[F_HLC]
        return rejected(
            _text(change_id), _text(collection), _text(record_id), ErrorCode.VALIDATION, errors
        )
    if not isinstance(collection, str) or collection not in DEVICE_COLLECTIONS:
        errors[F_COLLECTION] = [f"must be one of {', '.join(sorted(DEVICE_COLLECTIONS))}"]
    if not valid_id(record_id):
        errors[F_ID] = ["must be an id of 1-64 letters, digits, '_', '.', ':' or '-'"]
    if change_id is None and valid_id(raw.get(F_HLC)):
        # A change's HLC stamp is unique on its device and frozen with it until answered,
        # so it can stand for the change id (16 bytes a change less on the wire).
        change_id = raw[F_HLC]
    if not valid_id(change_id):
        errors[F_CHANGE_ID] = [
            "must be an id of 1-64 letters, digits, '_', '.', ':' or '-' "
            "(or left out when hlc is one)"
        ]
    try:
        op = Op(str(raw.get(F_OP)))
    except ValueError:
        errors[F_OP] = [f"must be one of {', '.join(o.value for o in Op)}"]
        op = Op.UPSERT
    base = raw.get(F_BASE_VERSION, 0)
    if base is None:
        base = 0
    if isinstance(base, bool) or not isinstance(base, int) or not 0 <= base <= INT64_MAX:
        errors[F_BASE_VERSION] = ["must be an integer from 0 to 2^63-1"]
    data = raw.get(F_DATA)
    if op is Op.UPSERT and not isinstance(data, dict):
        errors[F_DATA] = ["must be an object for an upsert"]
    if data is not None and not isinstance(data, dict):
        errors.setdefault(F_DATA, ["must be an object"])
    hlc = raw.get(F_HLC)
    if hlc is not None and not HLCTimestamp.valid(hlc):
        errors[F_HLC] = [_HLC_RULE]
    resolves = raw.get(F_RESOLVES)
    if resolves is not None and not valid_id(resolves):
        errors[F_RESOLVES] = ["must be a conflict id"]
    if op is Op.RESOLVE and resolves is None:
        errors[F_RESOLVES] = ["is required to resolve a conflict"]
    if errors:
        code = (
            ErrorCode.UNKNOWN_COLLECTION
            if set(errors) == {F_COLLECTION}
            else ErrorCode.INVALID_REQUEST
        )
        return rejected(_text(change_id), _text(collection), _text(record_id), code, errors)
    return Change(
        collection=str(collection),
        id=str(record_id),
        op=op,
        change_id=str(change_id),
        base_version=int(base),
        data=data if isinstance(data, dict) else None,
        hlc=hlc,
        resolves=resolves,
    )


def parse_push(body: object, *, max_changes: int, values_safe: bool = False) -> PushBatch:
    """Read a push body. Raises BatchFormatError for a body that is not a batch.
    `values_safe`: the body's text passed the screen (`sync.batch.Decoded.values_safe`)."""
    if not isinstance(body, dict):
        raise BatchFormatError("the push body must be a JSON object")
    errors: FieldErrors = {}
    device_id = body.get(B_DEVICE_ID)
    batch_id = body.get(B_BATCH_ID)
    changes = body.get(B_CHANGES)
    if not valid_id(device_id):
        errors[B_DEVICE_ID] = ["must be an id of 1-64 letters, digits, '_', '.', ':' or '-'"]
    if not valid_id(batch_id):
        errors[B_BATCH_ID] = ["must be an id of 1-64 letters, digits, '_', '.', ':' or '-'"]
    if not isinstance(changes, list):
        errors[B_CHANGES] = ["must be a list of change records"]
    sent_at = body.get(B_SENT_AT)
    if sent_at is not None and (not isinstance(sent_at, str) or text_problem(sent_at)):
        errors[B_SENT_AT] = ["must be a date and time, ISO 8601 with its offset"]
    # The device clock is read after the batch commits (merged into the server's): checked
    # here, before anything is written, so a bad one can never fail a stored batch (issue 13).
    clock = body.get(B_CLOCK)
    if clock is not None and not HLCTimestamp.valid(clock):
        errors[B_CLOCK] = [_HLC_RULE]
    compact = body.get(B_COMPACT, False)
    if not isinstance(compact, bool):
        errors[B_COMPACT] = ["must be true or false"]
    if errors:
        raise BatchFormatError("the push body is not a valid batch", errors)
    assert isinstance(changes, list)
    if len(changes) > max_changes:
        raise BatchTooLarge(len(changes), max_changes)
    return PushBatch(
        device_id=str(device_id),
        batch_id=str(batch_id),
        sent_at=body.get(B_SENT_AT),
        clock=body.get(B_CLOCK),
        items=[
            parse_change(index, raw, values_safe=values_safe) for index, raw in enumerate(changes)
        ],
        compact=bool(compact),
    )


class BatchTooLarge(BatchFormatError):
    """More changes in one batch than the server takes."""

    def __init__(self, count: int, limit: int) -> None:
        super().__init__(f"a batch holds at most {limit} changes; this one holds {count}")
        self.count = count
        self.limit = limit
