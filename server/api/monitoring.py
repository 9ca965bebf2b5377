"""`/metrics` (server/metrics.py) and the health checks: `/health/live`, the process
answers (nothing else is checked, so a database outage does not get workers restarted);
`/health/ready`, the database answers and its schema is at the migrations' head (a load
balancer sends no traffic until it is). docs/operations.md, "What to monitor"."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from flask.typing import ResponseReturnValue
from prometheus_client import CONTENT_TYPE_LATEST

from server import metrics
from server.api.errors import ApiError
from server.database import ping, schema_state
from server.extensions import db
from sync.protocol import ErrorCode

bp = Blueprint("monitoring", __name__)


@bp.get("/metrics")
def scrape() -> ResponseReturnValue:
    token = current_app.config.get("ZHUXUN_METRICS_TOKEN")
    if token and request.headers.get("Authorization") != f"Bearer {token}":
        raise ApiError(401, ErrorCode.UNAUTHORIZED, "send the metrics token (Bearer)")
    return Response(metrics.scrape(db.session), content_type=CONTENT_TYPE_LATEST)


@bp.get("/health/live")
def live() -> ResponseReturnValue:
    """The process answers requests. Nothing else is checked."""
    return jsonify({"status": "ok"})


@bp.get("/health/ready")
def ready() -> ResponseReturnValue:
    """Send traffic here: the database answers and its schema is current."""
    checks: dict[str, Any] = {}
    try:
        ping(db.session)
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means not ready; say which
        db.session.rollback()
        checks["database"] = f"unavailable: {type(exc).__name__}"
    if checks["database"] == "ok":
        checks["migrations"] = schema_state(db.session)
    ready_now = checks["database"] == "ok" and checks.get("migrations") == "current"
    body = {"status": "ready" if ready_now else "not_ready", "checks": checks}
    return jsonify(body), 200 if ready_now else 503
