"""Push and pull, between the HTTP layer and the store: validation against the forms,
reference checks, scope checks, then one store transaction. No Flask request objects here;
errors are domain exceptions or per-record results."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, bindparam, select
from sqlalchemy.orm import Session

from forms import validate
from server import evaluation_queue, flags
from server.actor import Actor
from server.models import Assignment, Doctor, OrgUnit, SyncRecord
from server.records.projections import BatchProjection
from server.records.sql_store import (
    RecordScope,
    SqlSyncStore,
    WriteContext,
    WrittenRecord,
    row_to_wire,
)
from server.review.workflow import reopen_weeks_touched
from sync.clock import ClockDriftError, ClockFormatError, HLCTimestamp, HybridLogicalClock
from sync.compact import PageCompactor
from sync.protocol import (
    CONFLICTS,
    DEFAULT_MAX_PULL_BYTES,
    FLAGS,
    LEAVE,
    P_FLAGS_SHARED,
    VISITS,
    ErrorCode,
    Op,
    Status,
)
from sync.records import Change, ChangeResult, PushBatch, rejected
from sync.storage import encode_cursor

log = logging.getLogger(__name__)

# A device clock further ahead than this is not merged into the server's clock.
MAX_CLOCK_DRIFT_MS = 5 * 60 * 1000


@dataclass(slots=True)
class _References:
    """The places, doctors and assignments a batch names, as plain rows (no ORM object a
    reference: issue 14), each with the attributes `_prepare_one` reads."""

    places: dict[str, Row[Any]]
    doctors: dict[str, Row[Any]]
    assignments: dict[str, Row[Any]]


def _by_key(*columns: Any) -> Any:
    return select(*columns).where(columns[0].in_(bindparam("keys", expanding=True)))


# Built once: building a statement costs more than running it (issue 14's push profile).
_PLACES = _by_key(OrgUnit.code, OrgUnit.township_code, OrgUnit.county_code)
_DOCTORS = _by_key(Doctor.id, Doctor.township_code, Doctor.county_code)
_ASSIGNMENTS = _by_key(Assignment.id, Assignment.doctor_id)


def _rows_by_key(session: Session, query: Any, keys: set[str]) -> dict[str, Row[Any]]:
    """The rows of `query` whose first column is one of `keys`, by that key."""
    if not keys:
        return {}
    return {row[0]: row for row in session.connection().execute(query, {"keys": sorted(keys)})}


def _load_references(session: Session, changes: list[Change]) -> _References:
    place_codes, doctor_ids, assignment_ids = set(), set(), set()
    for change in changes:
        data = change.data or {}
        for key, bucket in (
            ("place", place_codes),
            ("doctor", doctor_ids),
            ("assignment", assignment_ids),
        ):
            if isinstance(data.get(key), str):
                bucket.add(data[key])
    return _References(
        places=_rows_by_key(session, _PLACES, place_codes),
        doctors=_rows_by_key(session, _DOCTORS, doctor_ids),
        assignments=_rows_by_key(session, _ASSIGNMENTS, assignment_ids),
    )


def _scope_of(collection: str, data: dict[str, Any], refs: _References) -> RecordScope:
    doctor = refs.doctors[data["doctor"]]
    if collection == VISITS:
        place = refs.places[data["place"]]
        township = place.township_code or doctor.township_code
        return RecordScope(doctor.id, township, place.county_code)
    return RecordScope(doctor.id, doctor.township_code, doctor.county_code)


def _own_scope(actor: Actor) -> RecordScope:
    return RecordScope(actor.doctor_id, actor.township_code, actor.county_code)


def prepare(
    session: Session, actor: Actor, batch: PushBatch, now: datetime
) -> list[tuple[Change, RecordScope] | ChangeResult]:
    """Validate every change of a batch; a rejected result for each one that fails."""
    changes = batch.changes
    refs = _load_references(session, changes)
    seen: set[tuple[str, str]] = set()
    prepared: list[tuple[Change, RecordScope] | ChangeResult] = []
    for item in batch.items:
        if isinstance(item, ChangeResult):
            prepared.append(item)
            continue
        change = item
        key = (change.collection, change.id)
        if key in seen:
            prepared.append(
                rejected(
                    change.change_id,
                    change.collection,
                    change.id,
                    ErrorCode.DUPLICATE_IN_BATCH,
                    {
                        "id": [
                            "this record appears more than once in the batch; send one change per "
                            "record per batch"
                        ]
                    },
                )
            )
            continue
        seen.add(key)
        prepared.append(_prepare_one(session, actor, change, refs, now))
    return prepared


def _prepare_one(
    session: Session, actor: Actor, change: Change, refs: _References, now: datetime
) -> tuple[Change, RecordScope] | ChangeResult:
    def reject(code: ErrorCode, errors: dict[str, list[str]]) -> ChangeResult:
        return rejected(change.change_id, change.collection, change.id, code, errors)

    if change.op is not Op.UPSERT:
        # Delete and resolve carry no data; the store checks the stored record's scope.
        return change, _own_scope(actor)
    result = validate(change.collection, change.data, now=now)
    if not result.ok:
        return reject(ErrorCode.VALIDATION, {f"data.{k}": v for k, v in result.errors.items()})
    data = result.data
    errors: dict[str, list[str]] = {}
    doctor = refs.doctors.get(data["doctor"])
    if doctor is None:
        errors["data.doctor"] = [f"unknown doctor {data['doctor']!r}"]
    if change.collection == VISITS:
        place = refs.places.get(data["place"])
        if place is None:
            errors["data.place"] = [f"unknown place {data['place']!r}"]
        elif actor.county_code and place.county_code != actor.county_code:
            errors["data.place"] = ["this place is outside your county"]
        assignment_id = data.get("assignment")
        if assignment_id:
            assignment = refs.assignments.get(assignment_id)
            if assignment is None:
                errors["data.assignment"] = [f"unknown assignment {assignment_id!r}"]
            elif assignment.doctor_id != data["doctor"]:
                errors["data.assignment"] = ["this assignment belongs to another doctor"]
    if errors:
        return reject(ErrorCode.UNKNOWN_REFERENCE, errors)
    scope = _scope_of(change.collection, data, refs)
    if not actor.may_see(scope.doctor_id, scope.township_code, scope.county_code):
        return reject(
            ErrorCode.FORBIDDEN_RECORD,
            {
                "data.doctor": [
                    "you can only record your own visits"
                    if actor.is_doctor
                    else "this doctor is outside your scope"
                ]
            },
        )
    if change.collection == LEAVE and actor.is_doctor:
        status = data.setdefault("status", "pending")
        stored = session.get(SyncRecord, (LEAVE, change.id))
        stored_status = (stored.data or {}).get("status") if stored else None
        if status != "pending" and status != stored_status:
            return reject(
                ErrorCode.FORBIDDEN_RECORD,
                {"data.status": ["only a reviewer approves or refuses leave"]},
            )
    normalised = Change(
        change.collection,
        change.id,
        change.op,
        change.change_id,
        change.base_version,
        data,
        change.hlc,
        change.resolves,
    )
    return normalised, scope


def clock_skew(sent_at: str | None, now: datetime) -> float | None:
    """Device wall clock minus server clock, in seconds; None when not readable."""
    if not sent_at:
        return None
    try:
        sent = datetime.fromisoformat(sent_at)
    except ValueError:
        return None
    if sent.tzinfo is None:
        sent = sent.replace(tzinfo=UTC)
    return round((sent - now).total_seconds(), 3)


# Work done inside a push's own transaction, after its records are written (the audit entry
# of a leave decision, server/review/workflow.py).
InTransaction = Callable[[Session, list[WrittenRecord]], None]


def push(
    session: Session,
    actor: Actor,
    batch: PushBatch,
    clock: HybridLogicalClock | None,
    *,
    evaluation: evaluation_queue.Settings | None = None,
    cause: str = evaluation_queue.PUSH,
    in_transaction: InTransaction | None = None,
) -> dict[str, Any]:
    """Everything a push means, the one entry point for it (devices, a reviewer's correction,
    a leave decision): validate, check references and scope, merge, store; in the same
    transaction reopen the approved weeks it touches and put the doctor-weeks it made stale
    in the evaluation queue (`in_transaction` adds the caller's own work there). After the
    commit, with `evaluation` set to judge in requests, settle the queue: what is due, and
    this push's own doctor-weeks before answering (server/evaluation_queue.py)."""
    now = datetime.now(UTC)
    prepared = prepare(session, actor, batch, now)
    # End the read transaction before writing: the write transaction must start with the
    # counter lock (see server/records/sql_store.py), not upgrade a read snapshot.
    session.rollback()
    valid = [item for item in prepared if isinstance(item, tuple)]
    skew = clock_skew(batch.sent_at, now)
    store = SqlSyncStore(session, projector=BatchProjection())

    def in_the_push(session: Session, written: list[WrittenRecord]) -> None:
        reopen_weeks_touched(session, written)
        if in_transaction is not None:
            in_transaction(session, written)

    applied = iter(
        store.apply_batch(
            valid,
            WriteContext(origin=actor.username, device_id=batch.device_id, clock_skew_s=skew),
            guard=actor.may_touch,
            before_commit=in_the_push,
            stale=cause,
        )
        if valid
        else []
    )
    results = [item if isinstance(item, ChangeResult) else next(applied) for item in prepared]
    # The batch is committed: nothing after this point may tell the device it failed, or
    # its resend (answered from the stored results) would look failed too (issue 13). The
    # flags it made stale are settled here in request mode; settle_stale logs a failure and
    # leaves the entries in the queue for the next settler (issue 14).
    if evaluation is not None and evaluation.in_requests and store.written:
        doctors = {row.doctor_id for row in store.written if row.doctor_id}
        try:
            flags.settle_stale(session, evaluation, evaluation_queue.of_doctors(doctors))
        except Exception:  # noqa: BLE001 - derived work: the queue keeps what was not judged
            session.rollback()
            log.exception("work after a committed push failed; the push stands")
    answer: dict[str, Any] = {
        "batch_id": batch.batch_id,
        "server_time": now.isoformat().replace("+00:00", "Z"),
    }
    if clock is not None:
        if batch.clock:
            # A far-off device clock is not merged: its skew is recorded on the records. Its
            # form was checked by parse_push before anything was written.
            with contextlib.suppress(ClockFormatError, ClockDriftError):
                clock.receive(HLCTimestamp.decode(batch.clock), max_drift_ms=MAX_CLOCK_DRIFT_MS)
        answer["clock"] = clock.now().encode()
    answer["clock_skew_s"] = skew
    answer["results"] = [r.to_wire(compact=batch.compact) for r in results]
    answer["summary"] = {s.value: sum(1 for r in results if r.status is s) for s in Status}
    return answer


@dataclass(frozen=True, slots=True)
class PullPage:
    """One pull answer. Each change is kept as the JSON text it is sent as: the page is
    bounded by its size in bytes, measured by encoding each change once."""

    changes: list[str]
    cursor: str
    has_more: bool
    # Records stored before the value check (issue 13) that cannot be sent: reported, so
    # one of them never stalls the pull of everything behind it.
    unservable: list[dict[str, Any]] = field(default_factory=list)
    # A compact page's `flags_shared` block (sync/compact.py), when a flag of it is compact.
    flags_shared: dict[str, Any] | None = None

    def to_json(self) -> str:
        text = (
            '{"changes":[' + ",".join(self.changes) + '],"cursor":' + json.dumps(self.cursor)
            + ',"has_more":' + ("true" if self.has_more else "false")
        )  # fmt: skip
        if self.flags_shared is not None:
            text += f',"{P_FLAGS_SHARED}":' + json.dumps(
                self.flags_shared, ensure_ascii=False, separators=(",", ":")
            )
        if self.unservable:
            text += ',"unservable":' + json.dumps(self.unservable, ensure_ascii=False)
        return text + "}"


def _servable_json(wire: dict[str, Any]) -> tuple[str | None, str | None]:
    """A change as the JSON text a page carries, or why it cannot be sent: text UTF-8
    cannot encode (a lone surrogate), a NUL, a number that is not JSON."""
    try:
        text = json.dumps(wire, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        return None, f"not JSON: {exc}"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            return None, f"text UTF-8 cannot encode (a lone surrogate at {exc.start})"
    return text, None


def pull(
    session: Session,
    actor: Actor,
    cursor: str | None,
    limit: int,
    *,
    device_id: str | None = None,
    max_bytes: int = DEFAULT_MAX_PULL_BYTES,
    evaluation: evaluation_queue.Settings | None = None,
    lang: str | None = None,
    compact: bool = False,
) -> PullPage:
    """The changes in the actor's scope after `cursor`: at most `limit`, and no more than
    `max_bytes` of JSON once there is one. With `device_id`, the records whose latest
    version that device pushed itself are left out (it holds them, at that version, from
    its push answers) but passed by the cursor. With `evaluation`, the flags the caller's
    writes left stale are judged first, so a push and then a pull bring the push's flags
    in the same sync. With `lang`, a flag's explanation comes in that language only. With
    `compact`, the page is in the compact form (sync/compact.py; issue 14, the wire)."""
    if evaluation is not None:
        own = evaluation_queue.in_scope(actor.doctor_id, actor.township_code, actor.county_code)
        if own is not None:
            try:
                flags.settle_stale(session, evaluation, own)
            except Exception:  # noqa: BLE001 - derived work: the pull answers all the same
                session.rollback()
                log.exception("judging the caller's flags before a pull failed; pulling on")
    store = SqlSyncStore(session)
    rows, next_cursor, has_more = store.rows_since(cursor, limit, actor.pull_filter())
    changes: list[str] = []
    unservable: list[dict[str, Any]] = []
    size = 0
    compactor = None
    if compact:
        # The page's flags decide its defaults and key order: every flag it may carry.
        compactor = PageCompactor(
            _in_language(row.data, lang) if lang else row.data
            for row in rows
            if row.collection == FLAGS and not row.deleted
        )
    for index, row in enumerate(rows):
        if device_id and row.device_id == device_id and row.updated_by == actor.username:
            continue
        wire = row_to_wire(row)
        if lang and row.collection == FLAGS and isinstance(wire["data"], dict):
            wire["data"] = _in_language(wire["data"], lang)
        if compactor is not None:
            wire = compactor.change(wire)
        text, problem = _servable_json(wire)
        if text is None:
            log.error(
                "pull: %s %r (seq %s) cannot be sent: %s", row.collection, row.id, row.seq, problem
            )
            unservable.append(
                {"collection": row.collection, "id": row.id, "seq": row.seq, "reason": problem}
            )
            continue
        if changes and size + len(text) > max_bytes:
            # Full: the page ends before this row; every row up to the previous one has
            # been sent, left out as the device's own or reported unservable.
            return PullPage(
                changes,
                encode_cursor(rows[index - 1].seq),
                True,
                unservable,
                compactor.shared() if compactor else None,
            )
        changes.append(text)
        size += len(text)
    shared = compactor.shared() if compactor else None
    return PullPage(changes, next_cursor, has_more, unservable, shared)


def _in_language(flag: Any, lang: str) -> Any:
    """A flag with its explanation in `lang` only (the device shows one; issue 14)."""
    explanation = flag.get("explanation") if isinstance(flag, dict) else None
    if not isinstance(explanation, dict) or lang not in explanation:
        return flag
    return {**flag, "explanation": {lang: explanation[lang]}}


# --- reading records -----------------------------------------------------------------


def scoped_record(
    session: Session, actor: Actor, collection: str, record_id: str
) -> SyncRecord | None:
    """The record if it exists and the actor may touch it; None for both "missing" and
    "not yours", so existence is not leaked."""
    row = session.get(SyncRecord, (collection, record_id))
    return row if row is not None and actor.may_touch(row) else None


def list_records(
    session: Session,
    actor: Actor,
    collection: str,
    *,
    offset: int,
    limit: int,
    include_deleted: bool = False,
    doctor: str | None = None,
) -> list[SyncRecord]:
    """A page of a collection's records the actor receives on pull, in change order."""
    query = select(SyncRecord).where(SyncRecord.collection == collection, actor.pull_filter())
    if not include_deleted:
        query = query.where(SyncRecord.deleted.is_(False))
    if doctor:
        query = query.where(SyncRecord.doctor_id == doctor)
    return list(session.scalars(query.order_by(SyncRecord.seq).offset(offset).limit(limit)))


def list_conflicts(session: Session, actor: Actor, status: str = "open") -> list[SyncRecord]:
    """The conflict records in the actor's scope with this status ("all" for every one)."""
    query = select(SyncRecord).where(SyncRecord.collection == CONFLICTS, actor.pull_filter())
    return [
        r
        for r in session.scalars(query.order_by(SyncRecord.seq))
        if status == "all" or (r.data or {}).get("status") == status
    ]
