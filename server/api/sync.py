"""The sync API: push, pull, the records and flags a caller may read, a reviewer's
correction and the conflicts list. It translates requests to calls of the push/pull
service (server/records/service.py) and answers to JSON. No domain logic."""

from __future__ import annotations

import gzip
import logging
import threading
import uuid
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from flask.typing import ResponseReturnValue

from server import devices, evaluation_queue, flags, metrics
from server.actor import COUNTY_ADMIN, TOWNSHIP_REVIEWER
from server.api.auth import current_actor, login_required, refuse_revoked_device
from server.api.context import evaluation
from server.api.errors import ApiError
from server.api.parsing import int_arg, json_body, screened_json_body
from server.database import ping
from server.extensions import db
from server.models import SyncRecord
from server.records import service
from server.records.sql_store import row_to_wire
from sync.clock import HybridLogicalClock
from sync.protocol import (
    DEFAULT_PULL_LIMIT,
    DEVICE_COLLECTIONS,
    H_DEVICE_ID,
    LANGUAGES,
    MAX_PULL_LIMIT,
    Q_COMPACT,
    Q_LANG,
    ErrorCode,
    Op,
    Status,
)
from sync.records import (
    BatchFormatError,
    BatchTooLarge,
    Change,
    PushBatch,
    parse_push,
    valid_id,
)
from sync.storage import InvalidCursor

log = logging.getLogger(__name__)
bp = Blueprint("api", __name__, url_prefix="/api/v1")

_clock_lock = threading.Lock()


def _server_clock() -> HybridLogicalClock:
    clock = current_app.extensions.get("zhuxun_clock")
    if clock is None:
        clock = current_app.extensions["zhuxun_clock"] = HybridLogicalClock("server")
    return clock


@bp.get("/health")
def health() -> ResponseReturnValue:
    """Liveness and a database ping.
    ---
    get:
      summary: Liveness and database check
      responses:
        "200":
          description: ok
          content:
            application/json:
              schema: Health
    """
    ping(db.session)
    return jsonify({"status": "ok"})


@bp.post("/sync/push")
@login_required()
def push() -> ResponseReturnValue:
    """Push a batch of changes from one device.
    ---
    post:
      summary: Push a batch of changes from one device (gzip accepted)
      description: >-
        Answered record by record: one result per change, in order. Unknown fields of the
        batch, of a change and of a record are ignored (not stored). Every value must be
        storable and servable (no NUL, no lone surrogate, integers within 64 bits, finite
        numbers) and every date within 2000-01-01..2099-12-31, or that change is rejected
        with the field named.
      requestBody:
        required: true
        content:
          application/json:
            schema: PushBody
      responses:
        "200":
          description: one result per change
          content:
            application/json:
              schema: PushAnswer
        "413":
          description: the body or the batch is over its limit
          content:
            application/json:
              schema: ErrorEnvelope
        "415": UnsupportedMediaType
    """
    body = screened_json_body()  # each change is checked alone: record by record
    try:
        batch = parse_push(
            body.value,
            max_changes=current_app.config["ZHUXUN_MAX_BATCH_CHANGES"],
            values_safe=body.values_safe,
        )
    except BatchTooLarge as exc:
        raise ApiError(
            413,
            ErrorCode.BATCH_TOO_LARGE,
            str(exc),
            details={"limit_changes": exc.limit, "changes": exc.count},
        ) from exc
    except BatchFormatError as exc:
        raise ApiError(400, ErrorCode.INVALID_REQUEST, str(exc), errors=exc.errors) from exc
    refuse_revoked_device(batch.device_id)
    with metrics.timed() as elapsed:
        answer = _push(batch)
    # The results as the device sent the changes (a compact answer leaves the keys out).
    results = [
        {
            "collection": getattr(item, "collection", None),
            "id": getattr(item, "id", None),
            "status": result.get("status"),
            "code": result.get("code"),
        }
        for item, result in zip(batch.items, answer["results"], strict=False)
    ]
    metrics.observe_push(elapsed(), results)
    _register_device(batch.device_id, "push", results)
    return jsonify(answer)


def _register_device(
    device_id: str | None, kind: str, results: list[dict[str, Any]] | None = None
) -> None:
    """The device registry after a successful push or pull (server/devices.py), in a short
    transaction of its own; a failure is logged, never the sync's answer."""
    if not device_id:
        return
    try:
        devices.record_sync(
            db.session,
            current_actor(),
            device_id,
            kind,
            client_version=request.headers.get("User-Agent"),
            results=results,
        )
        db.session.commit()
    except Exception as exc:  # noqa: BLE001 - bookkeeping; the sync itself is committed
        db.session.rollback()
        log.warning("device %s not recorded: %s", device_id, exc)


def _push(batch: PushBatch, cause: str = evaluation_queue.PUSH) -> dict[str, Any]:
    """Apply a batch as the caller, through the one push entry point."""
    with _clock_lock:
        clock = _server_clock()
    return service.push(
        db.session, current_actor(), batch, clock, evaluation=evaluation(), cause=cause
    )


@bp.get("/sync/pull")
@login_required()
def pull() -> ResponseReturnValue:
    """A page of the changes in the caller's scope after the cursor.
    ---
    get:
      summary: Every change in the caller's scope after the cursor
      parameters:
        - name: cursor
          in: query
          description: the cursor of the last page; empty for the first pull (ASCII digits)
          schema:
            type: string
            pattern: "^[0-9]*$"
        - name: limit
          in: query
          schema:
            type: integer
            minimum: 1
            maximum: 5000
        - name: lang
          in: query
          description: a flag's explanation in this language only (the device shows one)
          schema:
            type: string
            enum: [zh, en]
        - name: compact
          in: query
          description: "1: the compact form of the page (docs/sync-protocol.md): no seq nor
            meta, `deleted` only when true, a flag's body under `flag` with only what its id
            and the page's `flags_shared` do not say; 0 or absent: the full form"
          schema:
            type: string
            enum: ["0", "1"]
        - name: X-Device-Id
          in: header
          description: leave out the records this device pushed itself
          schema:
            type: string
      responses:
        "200":
          description: a page of changes
          content:
            application/json:
              schema: PullAnswer
    """
    limit = int_arg("limit", DEFAULT_PULL_LIMIT, 1, MAX_PULL_LIMIT)
    device_id = request.headers.get(H_DEVICE_ID)
    lang = request.args.get(Q_LANG) or None
    if lang is not None and lang not in LANGUAGES:
        raise ApiError(
            400,
            ErrorCode.INVALID_REQUEST,
            f"{Q_LANG} must be one of {', '.join(LANGUAGES)}",
            errors={Q_LANG: [f"must be one of {', '.join(LANGUAGES)}"]},
        )
    compact = request.args.get(Q_COMPACT) or "0"
    if compact not in ("0", "1"):
        raise ApiError(
            400,
            ErrorCode.INVALID_REQUEST,
            f"{Q_COMPACT} must be 0 or 1",
            errors={Q_COMPACT: ["must be 0 or 1"]},
        )
    if device_id is not None and not valid_id(device_id):
        raise ApiError(
            400,
            ErrorCode.INVALID_REQUEST,
            f"the {H_DEVICE_ID} header must be a device id",
            errors={H_DEVICE_ID: ["must be an id of 1-64 letters, digits, '_', '.', ':' or '-'"]},
        )
    refuse_revoked_device(device_id)
    with metrics.timed() as elapsed:
        try:
            page = service.pull(
                db.session,
                current_actor(),
                request.args.get("cursor"),
                limit,
                device_id=device_id,
                max_bytes=current_app.config["ZHUXUN_MAX_PULL_BYTES"],
                evaluation=evaluation(),
                lang=lang,
                compact=compact == "1",
            )
        except InvalidCursor as exc:
            raise ApiError(
                400, ErrorCode.INVALID_CURSOR, str(exc), errors={"cursor": [str(exc)]}
            ) from exc
        body = page.to_json()
    metrics.observe_pull(elapsed())
    _register_device(device_id, "pull")
    return current_app.response_class(body, mimetype="application/json")


# Answers smaller than this go plain: gzip would save a few bytes and cost a header.
GZIP_MIN_BYTES = 512


@bp.after_request
def _gzip_answer(response: Response) -> Response:
    """Gzip an answer of this API when the client accepts it (the device's requests does):
    JSON of records compresses 5 to 10 times, which on a 2G link is most of a sync's time."""
    if (
        response.direct_passthrough
        or response.status_code < 200
        or "Content-Encoding" in response.headers
        or "gzip" not in request.headers.get("Accept-Encoding", "").lower()
    ):
        return response
    body = response.get_data()
    if len(body) < GZIP_MIN_BYTES:
        return response
    response.set_data(gzip.compress(body, compresslevel=6, mtime=0))
    response.headers["Content-Encoding"] = "gzip"
    response.vary.add("Accept-Encoding")
    return response


def _scoped_record(collection: str, record_id: str) -> SyncRecord:
    row = service.scoped_record(db.session, current_actor(), collection, record_id)
    if row is None:
        # The same answer for "missing" and "not yours": existence is not leaked.
        raise ApiError(404, ErrorCode.NOT_FOUND, f"no {collection} record {record_id!r}")
    return row


@bp.get("/flags")
@login_required()
def list_flags() -> ResponseReturnValue:
    """Flags in the caller's scope; filter by rule, doctor, place, period, status, state.
    ---
    get:
      summary: Flags in the caller's scope
      parameters:
        - {name: rule, in: query, schema: {type: string}}
        - {name: doctor, in: query, schema: {type: string}}
        - {name: place, in: query, schema: {type: string}}
        - {name: period, in: query, schema: {type: string}}
        - {name: status, in: query, schema: {type: string}}
        - {name: state, in: query, schema: {type: string}}
        - {name: limit, in: query, schema: {type: integer, minimum: 1, maximum: 5000}}
        - {name: offset, in: query, schema: {type: integer, minimum: 0, maximum: 1000000000}}
      responses:
        "200":
          description: the flags
          content:
            application/json:
              schema: FlagList
    """
    limit = int_arg("limit", 200, 1, 5000)
    offset = int_arg("offset", 0, 0, 10**9)
    wanted = {name: request.args[name] for name in flags.FLAG_FILTERS if request.args.get(name)}
    items = flags.list_flags(db.session, current_actor(), wanted, offset=offset, limit=limit)
    return jsonify({"items": items, "offset": offset, "limit": limit})


@bp.get("/<collection>")
@login_required()
def list_records(collection: str) -> ResponseReturnValue:
    """List records.
    ---
    get:
      summary: Records of a collection in the caller's scope
      parameters:
        - {name: collection, in: path, required: true, schema: {type: string, enum: [leave, trainings, visits]}}
        - {name: doctor, in: query, schema: {type: string}}
        - {name: include_deleted, in: query, schema: {type: string, enum: ["true", "false"]}}
        - {name: limit, in: query, schema: {type: integer, minimum: 1, maximum: 1000}}
        - {name: offset, in: query, schema: {type: integer, minimum: 0, maximum: 1000000000}}
      responses:
        "200":
          description: the records
          content:
            application/json:
              schema: RecordList
        "404":
          description: no such collection
          content:
            application/json:
              schema: ErrorEnvelope
    """
    if collection not in DEVICE_COLLECTIONS:
        raise ApiError(404, ErrorCode.NOT_FOUND, f"no collection {collection!r}")
    limit = int_arg("limit", 100, 1, 1000)
    offset = int_arg("offset", 0, 0, 10**9)
    rows = service.list_records(
        db.session,
        current_actor(),
        collection,
        offset=offset,
        limit=limit,
        include_deleted=request.args.get("include_deleted") == "true",
        doctor=request.args.get("doctor") or None,
    )
    return jsonify({"items": [row_to_wire(r) for r in rows], "offset": offset, "limit": limit})


@bp.get("/<collection>/<record_id>")
@login_required()
def get_record(collection: str, record_id: str) -> ResponseReturnValue:
    """One record in the caller's scope (404 for missing and not yours alike).
    ---
    get:
      summary: One record in the caller's scope
      parameters:
        - {name: collection, in: path, required: true, schema: {type: string, enum: [leave, trainings, visits]}}
      responses:
        "200":
          description: the record
          content:
            application/json:
              schema: RecordWire
        "404":
          description: missing or not in the caller's scope (the same answer)
          content:
            application/json:
              schema: ErrorEnvelope
    """
    if collection not in DEVICE_COLLECTIONS:
        raise ApiError(404, ErrorCode.NOT_FOUND, f"no collection {collection!r}")
    return jsonify(row_to_wire(_scoped_record(collection, record_id)))


@bp.put("/<collection>/<record_id>")
@login_required(TOWNSHIP_REVIEWER, COUNTY_ADMIN)
def correct_record(collection: str, record_id: str) -> ResponseReturnValue:
    """A reviewer's correction: a new server version, synced to the doctor on pull.
        `base_version` says which version the reviewer corrected (409 if it moved on).
    ---
    put:
      summary: A reviewer's correction of a record (a new server version)
      parameters:
        - {name: collection, in: path, required: true, schema: {type: string, enum: [leave, trainings, visits]}}
      requestBody:
        required: true
        content:
          application/json:
            schema: CorrectionBody
      responses:
        "200":
          description: the corrected record
          content:
            application/json:
              schema: RecordWire
        "404":
          description: missing or not in the caller's scope
          content:
            application/json:
              schema: ErrorEnvelope
        "409":
          description: the record moved on from base_version
          content:
            application/json:
              schema: ErrorEnvelope
        "415": UnsupportedMediaType
    """
    if collection not in DEVICE_COLLECTIONS:
        raise ApiError(404, ErrorCode.NOT_FOUND, f"no collection {collection!r}")
    body = json_body()  # first: a body that cannot be read is a 400 wherever it is sent
    _scoped_record(collection, record_id)
    if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
        raise ApiError(400, ErrorCode.INVALID_REQUEST, 'send {"base_version": n, "data": {...}}')
    base = body.get("base_version")
    if isinstance(base, bool) or not isinstance(base, int):
        raise ApiError(
            400,
            ErrorCode.VALIDATION,
            "base_version is required",
            errors={"base_version": ["must be the version you corrected"]},
        )
    change = Change(collection, record_id, Op.UPSERT, f"srv-{uuid.uuid4().hex}", base, body["data"])
    batch = PushBatch(
        device_id="server", batch_id=change.change_id, sent_at=None, clock=None, items=[change]
    )
    result = _push(batch, evaluation_queue.CORRECTION)["results"][0]
    if result["status"] == Status.REJECTED:
        raise ApiError(
            400,
            result.get("code", ErrorCode.VALIDATION),
            "the correction is not valid",
            errors=result.get("errors"),
        )
    if result["status"] == Status.CONFLICT:
        raise ApiError(
            409,
            ErrorCode.STALE_VERSION,
            f"the record is at version {result['version']}, not {base}",
            details={"current": result.get("current")},
        )
    return jsonify(row_to_wire(_scoped_record(collection, record_id)))


@bp.get("/conflicts")
@login_required()
def list_conflicts() -> ResponseReturnValue:
    """Conflicts in the caller's scope.
    ---
    get:
      summary: Conflicts in the caller's scope
      parameters:
        - {name: status, in: query, schema: {type: string, enum: [open, resolved, all]}}
      responses:
        "200":
          description: the conflicts
          content:
            application/json:
              schema: ConflictList
    """
    rows = service.list_conflicts(db.session, current_actor(), request.args.get("status", "open"))
    return jsonify({"items": [row_to_wire(r) for r in rows]})
