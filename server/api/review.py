"""The review workflow over HTTP, /api/v1/review: township reviewers and county admins
only (a doctor gets 403), subjects outside the caller's scope answer 404, and every error
is the one envelope (server/api/errors.py). The decisions themselves are in
server/review/workflow.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, jsonify, request
from flask.typing import ResponseReturnValue

from server.actor import COUNTY_ADMIN, TOWNSHIP_REVIEWER
from server.api.auth import current_actor, login_required
from server.api.context import evaluation
from server.api.errors import ApiError
from server.api.parsing import int_arg, json_body
from server.extensions import db
from server.records.sql_store import row_to_wire
from server.review import workflow as review
from sync.protocol import ErrorCode

bp = Blueprint("review", __name__, url_prefix="/api/v1/review")

reviewers = login_required(TOWNSHIP_REVIEWER, COUNTY_ADMIN)


def _body(*, optional: bool = False) -> dict[str, Any]:
    """The JSON object body; none at all is an empty object when every field is optional."""
    if optional and not request.get_data(cache=True):
        return {}
    body = json_body()
    if not isinstance(body, dict):
        raise ApiError(400, ErrorCode.INVALID_REQUEST, "send a JSON object")
    return body


@bp.get("/weeks/<doctor>/<week>")
@reviewers
def week(doctor: str, week: str) -> ResponseReturnValue:
    """A doctor's week for review.
    ---
    get:
      summary: A doctor's week for review (days, visits, flags, leave, decisions)
      parameters:
        - {name: week, in: path, required: true, description: "an ISO week, YYYY-Www, 2000-W01..2099-W52", schema: {type: string}}
      responses:
        "200":
          description: the week
          content:
            application/json:
              schema: ReviewAnswer
        "404":
          description: the doctor is not in the caller's scope
          content:
            application/json:
              schema: ErrorEnvelope
    """
    return jsonify(review.week_calendar(db.session, current_actor(), doctor, week))


@bp.post("/weeks/<doctor>/<week>/approve")
@reviewers
def approve_week(doctor: str, week: str) -> ResponseReturnValue:
    """Approve a doctor's week.
    ---
    post:
      summary: Approve a doctor's week
      requestBody:
        required: false
        content:
          application/json:
            schema: ReasonBody
      responses:
        "200": Decided
        "404": NotInScope
        "409": WrongState
        "415": UnsupportedMediaType
    """
    body = _body(optional=True)
    reason = review.text_field(body, "reason", required=False)
    return jsonify(review.approve_week(db.session, current_actor(), doctor, week, reason=reason))


@bp.post("/visits/<visit_id>/send-back")
@reviewers
def send_back(visit_id: str) -> ResponseReturnValue:
    """Send a visit back to its doctor.
    ---
    post:
      summary: Send a visit back to its doctor with a comment
      requestBody:
        required: true
        content:
          application/json:
            schema: CommentBody
      responses:
        "200": Decided
        "404": NotInScope
        "409": WrongState
        "415": UnsupportedMediaType
    """
    body = _body()
    comment = review.text_field(body, "comment")
    assert comment is not None
    return jsonify(review.send_back(db.session, current_actor(), visit_id, comment=comment))


@bp.post("/flags/<path:key>/excuse")
@reviewers
def excuse_flag(key: str) -> ResponseReturnValue:
    """Excuse a flag.
    ---
    post:
      summary: Excuse a flag with a reason
      requestBody:
        required: true
        content:
          application/json:
            schema: ReasonBody
      responses:
        "200": Decided
        "404": NotInScope
        "409": WrongState
        "415": UnsupportedMediaType
    """
    body = _body()
    reason = review.text_field(body, "reason")
    assert reason is not None
    return jsonify(review.excuse_flag(db.session, current_actor(), key, reason=reason))


_LEAVE_DOCS = {
    "approve": """Approve a leave request.
    ---
    post:
      summary: Approve a leave request
      requestBody:
        required: false
        content:
          application/json:
            schema: ReasonBody
      responses:
        "200":
          description: decided
          content:
            application/json:
              schema: RecordWire
        "404": NotInScope
        "409": WrongState
        "415": UnsupportedMediaType
    """,
    "refuse": """Refuse a leave request.
    ---
    post:
      summary: Refuse a leave request (a reason is required)
      requestBody:
        required: false
        content:
          application/json:
            schema: ReasonBody
      responses:
        "200":
          description: decided
          content:
            application/json:
              schema: RecordWire
        "404": NotInScope
        "409": WrongState
        "415": UnsupportedMediaType
    """,
}


def _decide_leave(decision: str) -> Callable[[str], ResponseReturnValue]:
    def view(leave_id: str) -> ResponseReturnValue:
        body = _body(optional=True)
        reason = review.text_field(body, "reason", required=decision == "refuse")
        row = review.decide_leave(
            db.session, current_actor(), leave_id, decision, reason=reason,
            evaluation=evaluation(),
        )  # fmt: skip
        return jsonify(row_to_wire(row))

    view.__name__ = f"{decision}_leave"
    view.__doc__ = _LEAVE_DOCS[decision]
    return view


bp.post("/leave/<leave_id>/approve")(reviewers(_decide_leave("approve")))
bp.post("/leave/<leave_id>/refuse")(reviewers(_decide_leave("refuse")))


@bp.get("/audit")
@reviewers
def audit_log() -> ResponseReturnValue:
    """The decisions on subjects in the caller's scope. Read-only: the log has no write
        endpoint, so PUT, POST and DELETE answer 405.
    ---
    get:
      summary: The review decisions on subjects in the caller's scope (append-only)
      parameters:
        - {name: subject_type, in: query, schema: {type: string}}
        - {name: subject_id, in: query, schema: {type: string}}
        - {name: limit, in: query, schema: {type: integer, minimum: 1, maximum: 5000}}
        - {name: offset, in: query, schema: {type: integer, minimum: 0, maximum: 1000000000}}
      responses:
        "200":
          description: the decisions, newest first
          content:
            application/json:
              schema: AuditList
    """
    limit = int_arg("limit", 200, 1, 5000)
    offset = int_arg("offset", 0, 0, 10**9)
    items = review.audit_log(
        db.session,
        current_actor(),
        subject_type=request.args.get("subject_type") or None,
        subject_id=request.args.get("subject_id") or None,
        offset=offset,
        limit=limit,
    )
    return jsonify({"items": items, "offset": offset, "limit": limit})


@bp.route("/audit", methods=["POST", "PUT", "PATCH", "DELETE"])
@bp.route("/audit/<path:_entry>", methods=["POST", "PUT", "PATCH", "DELETE"])
def audit_is_append_only(_entry: str | None = None) -> ResponseReturnValue:
    # Declared so the answer is 405 rather than whatever a broader route (api.bp's
    # PUT /<collection>/<record_id>) would say: decisions are only ever appended.
    """Audit is append only.
    ---
    post:
      summary: The audit log is append-only
      responses:
        "405": NeverEdited

    put:
      summary: The audit log is append-only
      responses:
        "405": NeverEdited

    patch:
      summary: The audit log is append-only
      responses:
        "405": NeverEdited

    delete:
      summary: The audit log is append-only
      responses:
        "405": NeverEdited
    """
    raise ApiError(
        405,
        ErrorCode.INVALID_REQUEST,
        "the audit log is append-only: it can be read, never edited or deleted",
        headers={"Allow": "GET, HEAD, OPTIONS"},
    )
