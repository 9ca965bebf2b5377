"""Each assignment's weekly plan for the signed-in doctor (`GET /api/v1/duty/plan`): the
doctor's app stores it and counts its own visits against it offline, so rules/ stays the
one rule book (issue 12; rules/plan.py, docs/app.md)."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from rules import ScenarioError
from server import flags
from server.actor import DOCTOR
from server.api.auth import current_actor, login_required
from server.api.context import rules_as_of, ruleset_name
from server.api.errors import ApiError
from server.extensions import db
from sync.protocol import ErrorCode

bp = Blueprint("duty", __name__, url_prefix="/api/v1")
PLAN_WEEKS_BEFORE, PLAN_WEEKS_AFTER = 1, 2


@bp.get("/duty/plan")
@login_required(DOCTOR)
def duty_plan() -> ResponseReturnValue:
    """The signed-in doctor's weekly plans from last week to two weeks ahead, computed by
    rules.plan with the server's rule set, calendar, and the approved leave and training
    it holds.
    ---
    get:
      summary: The doctor's weekly duty plans, for counting visits offline
      description: >-
        One plan an assignment and ISO week, from last week to two weeks ahead: the unit
        (duty_days or sessions), the minimum and the required number, the hours that make a
        duty day or a half-day session, the sessions a date can count, the workdays and the
        available ones (approved leave and training taken out), the calendar's source. The
        doctor's app counts its own visits against them (docs/app.md).
      responses:
        "200":
          description: the plans
          content:
            application/json:
              schema:
                type: object
                properties:
                  doctor: {type: string}
                  as_of: {type: string, format: date}
                  ruleset: {type: string}
                  valid_until: {type: string, format: date}
                  plans: {type: array, items: {type: object}}
        "409":
          description: the doctor's reference data is incomplete
          content:
            application/json:
              schema: ErrorEnvelope
    """
    actor = current_actor()
    if not actor.doctor_id or not actor.county_code:
        raise ApiError(403, ErrorCode.FORBIDDEN, "this account is not a doctor's")
    as_of = rules_as_of()
    try:
        plans = flags.week_plans_for(
            db.session,
            actor.county_code,
            actor.doctor_id,
            as_of=as_of,
            ruleset=ruleset_name(),
            weeks_before=PLAN_WEEKS_BEFORE,
            weeks_after=PLAN_WEEKS_AFTER,
        )
    except ScenarioError as exc:
        raise ApiError(
            409, ErrorCode.INVALID_REQUEST, f"the doctor's data is incomplete: {exc}"
        ) from exc
    return jsonify(
        {
            "doctor": actor.doctor_id,
            "as_of": as_of.isoformat(),
            "ruleset": ruleset_name(),
            "valid_until": (as_of + timedelta(weeks=PLAN_WEEKS_AFTER)).isoformat(),
            "plans": [plan.to_dict() for plan in plans],
        }
    )
