"""The form definitions as JSON (`GET /api/v1/forms`), with the protocol's words and limits:
the doctor's app builds its checks and batches from these, so forms/ stays the one source
of fields and checks (issue 12)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from forms.definitions import LATEST, MAX_FUTURE_HOURS, MAX_VISIT_HOURS, FormDef
from sync import protocol

bp = Blueprint("forms", __name__, url_prefix="/api/v1")


def form_json(form: FormDef) -> dict[str, Any]:
    """A form definition as the app reads it: fields with their type and limits, and the
    checks across fields that forms.schemas makes (the same constants)."""
    checks: list[dict[str, Any]] = []
    if form.collection == protocol.VISITS:
        checks = [
            {"check": "after", "field": "check_out", "other": "check_in"},
            {"check": "max_hours", "field": "check_out", "other": "check_in",
             "hours": MAX_VISIT_HOURS},
            {"check": "not_future", "field": "check_in", "hours": MAX_FUTURE_HOURS},
        ]  # fmt: skip
    elif {"start", "end"} <= {f.name for f in form.fields}:
        checks = [{"check": "not_before", "field": "end", "other": "start"}]
    return {
        "name": form.name,
        "version": form.version,
        "collection": form.collection,
        "title": {"zh": form.title_zh, "en": form.title_en},
        "fields": [
            {
                "name": f.name,
                "type": f.type,
                "label": {"zh": f.label_zh, "en": f.label_en},
                "required": f.required,
                "allow_none": f.allow_none,
                "choices": list(f.choices),
                "minimum": f.minimum,
                "maximum": f.maximum,
                "max_length": f.max_length,
            }
            for f in form.fields
        ],
        "checks": checks,
    }


@bp.get("/forms")
def forms() -> ResponseReturnValue:
    """The latest form of each collection a device writes, and the protocol's words and
    limits (docs/sync-protocol.md): the app builds its checks and batches from these.
    ---
    get:
      summary: The form definitions as data, and the protocol's words and limits
      description: >-
        Each collection's latest form (fields with type, zh-CN and English labels, required,
        choices, minimum, maximum, max_length; the checks across fields) and the protocol's
        collections, ops, statuses, device header and limits. Public: the doctor's app checks
        records with them offline (docs/app.md).
      responses:
        "200":
          description: the forms by collection, and the protocol
          content:
            application/json:
              schema:
                type: object
                properties:
                  forms: {type: object, additionalProperties: {type: object}}
                  protocol: {type: object}
    """
    return jsonify(
        {
            "forms": {name: form_json(form) for name, form in sorted(LATEST.items())},
            "protocol": {
                "version": protocol.PROTOCOL_VERSION,
                "device_collections": sorted(protocol.DEVICE_COLLECTIONS),
                "ops": [str(op) for op in protocol.Op],
                "statuses": [str(status) for status in protocol.Status],
                "device_header": protocol.H_DEVICE_ID,
                "max_batch_changes": protocol.DEFAULT_MAX_BATCH_CHANGES,
                "max_pull_limit": protocol.MAX_PULL_LIMIT,
            },
        }
    )
