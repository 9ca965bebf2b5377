"""The OpenAPI document, generated from the registered views (issue 13), so it cannot drift.

apispec's Flask plugin (apispec-webframeworks) reads each route under /api/v1 from the
app's URL map and its operations from the YAML after `---` in the view's docstring: a view
says what it takes and answers next to the code that does it, naming the marshmallow
schemas below (the wire envelopes) and the form schemas of `forms`. `Conventions` adds what
every operation shares, from the facts the server acts on: path parameters from the rule's
variables, the bearer scheme and 401 for views behind `login_required` (403 when it names
roles), and the envelope for 400 (a NUL in the URL is refused before any view) and 503
(database unavailable). A route whose view documents none of its methods stops the build;
`tests/server/api/test_openapi_document.py` compares the URL map with the document.

Why the plugin and not flask-smorest: our views are plain Flask blueprints with one error
translator (server/api/errors.py) and request parsing shared with the sync protocol (total
JSON reading, record-by-record answers). flask-smorest would rebuild every view around its
own Blueprint, argument parsing and error handler, a second error path beside the
envelope; the plugin documents the views as they are.

Unknown fields are ignored everywhere (a batch, a change, a record: not stored), so no
schema here claims `additionalProperties: false` (the schemas exclude unknown fields).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from apispec import APISpec, BasePlugin
from apispec.exceptions import APISpecError
from apispec.ext.marshmallow import MarshmallowPlugin
from apispec_webframeworks.flask import FlaskPlugin
from flask import Blueprint, Flask, current_app, jsonify
from flask.typing import ResponseReturnValue
from marshmallow import EXCLUDE, fields, validate
from marshmallow import Schema as _Schema
from werkzeug.routing import Rule

from forms import LEAVE_V1, TRAINING_V1, VISIT_V1
from forms.schemas import schema_for
from sync.protocol import DEVICE_COLLECTIONS, ErrorCode, Op, Status

bp = Blueprint("openapi", __name__, url_prefix="/api/v1")
PREFIX = "/api/v1"


class Schema(_Schema):
    """A wire schema: fields the server does not know are ignored, not refused."""

    class Meta:
        unknown = EXCLUDE


class ErrorBody(Schema):
    code = fields.String(required=True, metadata={"enum": [c.value for c in ErrorCode]})
    message = fields.String(required=True)
    message_zh = fields.String()
    errors = fields.Dict(keys=fields.String(), values=fields.List(fields.String()))
    details = fields.Dict()


class ErrorEnvelope(Schema):
    error = fields.Nested(ErrorBody, required=True)


class LoginBody(Schema):
    username = fields.String(required=True)
    password = fields.String(required=True)


class TokenAnswer(Schema):
    access_token = fields.String(required=True)
    refresh_token = fields.String()
    expires_in = fields.Integer(required=True)
    user = fields.Dict()


class LogoutBody(Schema):
    refresh_token = fields.String(metadata={"description": "revoked too when given"})


class Revoked(Schema):
    revoked = fields.Boolean(required=True)


class Me(Schema):
    username = fields.String(required=True)
    role = fields.String(required=True)
    doctor = fields.String(allow_none=True)
    township = fields.String(allow_none=True)
    county = fields.String(allow_none=True)


class Health(Schema):
    status = fields.String(required=True)


class ChangeWire(Schema):
    collection = fields.String(required=True, validate=validate.OneOf(sorted(DEVICE_COLLECTIONS)))
    id = fields.String(required=True)
    op = fields.String(required=True, validate=validate.OneOf([o.value for o in Op]))
    change_id = fields.String(
        metadata={"description": "required unless hlc is a valid id (it stands for it)"}
    )
    base_version = fields.Integer(load_default=0, validate=validate.Range(0, 2**63 - 1))
    hlc = fields.String()
    resolves = fields.String()
    data = fields.Dict(
        metadata={"description": "a visit, leave or training record (see the form schemas)"}
    )


class PushBody(Schema):
    device_id = fields.String(required=True)
    batch_id = fields.String(required=True)
    sent_at = fields.String()
    clock = fields.String(
        metadata={"description": "the device's HLC, <millis>-<counter>-<node>, ASCII digits"}
    )
    compact = fields.Boolean(metadata={"description": "answer with compact results"})
    changes = fields.List(fields.Nested(ChangeWire), required=True)


class ChangeResultWire(Schema):
    # Left out of compact results (the device matches them by position).
    collection = fields.String()
    id = fields.String()
    change_id = fields.String()
    status = fields.String(required=True, validate=validate.OneOf([s.value for s in Status]))
    version = fields.Integer()
    code = fields.String()
    errors = fields.Dict(keys=fields.String(), values=fields.List(fields.String()))
    conflict_id = fields.String()
    current = fields.Dict()


class PushAnswer(Schema):
    batch_id = fields.String(required=True)
    server_time = fields.String(required=True)
    clock = fields.String(required=True)
    clock_skew_s = fields.Float(allow_none=True)
    results = fields.List(fields.Nested(ChangeResultWire), required=True)
    summary = fields.Dict(keys=fields.String(), values=fields.Integer())


class RecordWire(Schema):
    collection = fields.String(required=True)
    id = fields.String(required=True)
    version = fields.Integer(required=True)
    deleted = fields.Boolean(required=True)
    seq = fields.Integer(required=True)
    data = fields.Dict(allow_none=True)
    meta = fields.Dict()


class Unservable(Schema):
    collection = fields.String(required=True)
    id = fields.String(required=True)
    seq = fields.Integer(required=True)
    reason = fields.String(required=True)


class PullChange(Schema):
    """A change of a pull page; in the compact form (`compact=1`, issue 14) without seq and
    meta, `deleted` only when true, `data` absent for null, and a flag's body as `flag`."""

    collection = fields.String(required=True)
    id = fields.String(required=True)
    version = fields.Integer(required=True)
    deleted = fields.Boolean(metadata={"description": "absent in the compact form: false"})
    seq = fields.Integer(metadata={"description": "absent in the compact form"})
    data = fields.Dict(allow_none=True)
    meta = fields.Dict(metadata={"description": "absent in the compact form"})
    flag = fields.Dict(
        metadata={
            "description": "compact form only: a flag's body without what its id and the "
            "page's flags_shared say (docs/sync-protocol.md)"
        }
    )


class FlagsShared(Schema):
    fields_ = fields.List(fields.String(), data_key="fields", required=True)
    defaults = fields.Dict(required=True)
    templates = fields.List(fields.String(), required=True)


class PullAnswer(Schema):
    changes = fields.List(fields.Nested(PullChange), required=True)
    cursor = fields.String(required=True)
    has_more = fields.Boolean(required=True)
    flags_shared = fields.Nested(
        FlagsShared,
        metadata={
            "description": "compact form only: the key order, default values and explanation "
            "templates of the page's compact flags"
        },
    )
    unservable = fields.List(
        fields.Nested(Unservable),
        metadata={
            "description": "records stored before the value check that cannot be sent "
            "(e.g. text holding a lone surrogate); the rest of the page is served"
        },
    )


class RecordList(Schema):
    items = fields.List(fields.Nested(RecordWire), required=True)
    offset = fields.Integer()
    limit = fields.Integer()


class ConflictList(Schema):
    items = fields.List(fields.Nested(RecordWire), required=True)


class FlagList(Schema):
    items = fields.List(fields.Dict(), required=True)
    offset = fields.Integer(required=True)
    limit = fields.Integer(required=True)


class AuditList(Schema):
    items = fields.List(fields.Dict(), required=True)
    offset = fields.Integer(required=True)
    limit = fields.Integer(required=True)


class CorrectionBody(Schema):
    base_version = fields.Integer(
        required=True, metadata={"description": "the version corrected (409 if it moved on)"}
    )
    data = fields.Dict(required=True, metadata={"description": "the whole corrected record"})


class ReasonBody(Schema):
    reason = fields.String(validate=validate.Length(max=500))


class CommentBody(Schema):
    comment = fields.String(required=True, validate=validate.Length(min=1, max=500))


class ReviewAnswer(Schema):
    """A review answer: the week, the decision and what it changed (docs/review.md)."""

    class Meta:
        unknown = EXCLUDE


# The county summary (docs/summaries.md), as a plain JSON schema.
_FIGURE = {"type": "object", "properties": {"raw": {}, "approved": {}}}
COUNTY_SUMMARY = {
    "type": "object",
    "required": ["county", "month", "ruleset", "figures_as_of", "townships", "villages"],
    "properties": {
        "county": {"type": "object"},
        "month": {"type": "string"},
        "period": {"type": "object"},
        "ruleset": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "version": {"type": "string"}},
        },
        "figures_as_of": {"type": "string", "format": "date"},
        "scope": {"type": "object"},
        "townships": {"type": "array", "items": {"type": "object"}},
        "villages": {"type": "array", "items": {"type": "object"}},
        "totals": {
            "type": "object",
            "properties": {"figures": {"type": "object", "additionalProperties": _FIGURE}},
        },
    },
}


# --- the document, from the views ----------------------------------------------------

# Methods every route has that no view implements.
_IMPLICIT = frozenset({"HEAD", "OPTIONS"})


class UndocumentedRoute(APISpecError):
    """A route under /api/v1 whose view does not document one of its methods."""


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}},
    }


# Error answers many views share, named once: a view's docstring says `"404": NotInScope`
# and apispec turns the name into a $ref to #/components/responses.
SHARED_ERRORS = {
    "InvalidRequest": "invalid request (the envelope names the field)",
    "DatabaseUnavailable": "database unavailable: nothing was changed",
    "Unauthorized": "no valid access token",
    "UnsupportedMediaType": "not application/json: send Content-Type: application/json",
    "BodyTooLarge": "the body is too large",
    "NotInScope": "not in the caller's scope",
    "WrongState": "the subject is not in the state this decision needs",
    "NoSuchAccountOrDevice": "no such account or device in the caller's scope",
    "NoSuchTownshipOrCounty": "no such township or county",
    "NeverEdited": "never edited or deleted",
}


# Success answers several views share, named the same way: (description, schema).
SHARED_ANSWERS = {
    "Account": ("the account", {"type": "object"}),
    "Decided": ("decided", {"$ref": "#/components/schemas/ReviewAnswer"}),
}


def methods_of(rule: Rule) -> list[str]:
    """The methods a rule serves, lower case, without HEAD and OPTIONS."""
    return sorted(method.lower() for method in (rule.methods or set()) - _IMPLICIT)


class Conventions(BasePlugin):
    """What every operation shares, added to what its view's docstring says."""

    def operation_helper(
        self,
        path: str | None = None,
        operations: dict[str, Any] | None = None,
        *,
        view: Callable[..., Any] | None = None,
        rule: Rule | None = None,
        **kwargs: Any,
    ) -> None:
        from server.api.auth import LOGIN_ROLES

        if operations is None or view is None or rule is None:
            return
        methods = methods_of(rule)
        missing = [m for m in methods if m not in operations]
        if missing:
            raise UndocumentedRoute(
                f"{rule.rule}: the view {view.__name__} documents no {', '.join(missing)} "
                "operation (YAML after --- in its docstring)"
            )
        for method in list(operations):
            if method not in methods:
                del operations[method]  # documented for another rule of the same view
        roles = getattr(view, LOGIN_ROLES, None)
        for operation in operations.values():
            parameters = operation.setdefault("parameters", [])
            declared = {p["name"] for p in parameters if p.get("in") == "path"}
            for argument in sorted(rule.arguments - declared):
                parameters.append(
                    {"name": argument, "in": "path", "required": True, "schema": {"type": "string"}}
                )
            responses = operation.setdefault("responses", {})
            responses.setdefault("400", "InvalidRequest")
            responses.setdefault("503", "DatabaseUnavailable")
            if roles is not None:
                operation.setdefault("security", [{"bearer": []}])
                responses.setdefault("401", "Unauthorized")
                if roles:
                    responses.setdefault("403", _error(f"needs the role {' or '.join(roles)}"))


class _FlaskRules(FlaskPlugin):
    """apispec's Flask plugin, told which rule to document when a view serves several."""

    def path_helper(  # type: ignore[override]
        self,
        path: str | None = None,
        operations: dict[str, Any] | None = None,
        parameters: list[dict[str, Any]] | None = None,
        *,
        view: Callable[..., Any] | None = None,
        app: Flask | None = None,
        rule: Rule | None = None,
        **kwargs: Any,
    ) -> str | None:
        found = super().path_helper(path, operations, parameters, view=view, app=app, **kwargs)
        return self.flaskpath2openapi(rule.rule) if rule is not None else found


def api_rules(app: Flask) -> list[Rule]:
    """The app's routes under /api/v1, in path order."""
    return sorted(
        (rule for rule in app.url_map.iter_rules() if rule.rule.startswith(PREFIX)),
        key=lambda rule: (rule.rule, rule.endpoint),
    )


def build_spec(app: Flask) -> APISpec:
    """The document of `app`: one path a route under /api/v1, its operations from the
    view's docstring; the wire and form schemas as components."""
    spec = APISpec(
        title="Zhuxun (驻巡) sync API",
        version="1",
        openapi_version="3.0.3",
        plugins=[_FlaskRules(), MarshmallowPlugin(), Conventions()],
        info={
            "description": "Offline-first sync of rural-health duty visits. See "
            "docs/sync-protocol.md. Unknown fields are ignored, never stored."
        },
    )
    spec.components.security_scheme(
        "bearer", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    )
    for name, schema in (
        # Nested schemas first: the plugin registers a nested schema on first sight.
        ("RecordWire", RecordWire),
        ("Unservable", Unservable),
        ("ChangeWire", ChangeWire),
        ("ChangeResultWire", ChangeResultWire),
        ("ErrorBody", ErrorBody),
        ("ErrorEnvelope", ErrorEnvelope),
        ("LoginBody", LoginBody),
        ("LogoutBody", LogoutBody),
        ("Revoked", Revoked),
        ("TokenAnswer", TokenAnswer),
        ("Me", Me),
        ("Health", Health),
        ("PushBody", PushBody),
        ("PushAnswer", PushAnswer),
        ("PullChange", PullChange),
        ("FlagsShared", FlagsShared),
        ("PullAnswer", PullAnswer),
        ("RecordList", RecordList),
        ("ConflictList", ConflictList),
        ("FlagList", FlagList),
        ("AuditList", AuditList),
        ("CorrectionBody", CorrectionBody),
        ("ReasonBody", ReasonBody),
        ("CommentBody", CommentBody),
        ("ReviewAnswer", ReviewAnswer),
    ):
        spec.components.schema(name, schema=schema)
    spec.components.schema("CountySummary", COUNTY_SUMMARY)
    for name, description in SHARED_ERRORS.items():
        spec.components.response(name, _error(description))
    for name, (description, schema) in SHARED_ANSWERS.items():
        spec.components.response(
            name, {"description": description, "content": {"application/json": {"schema": schema}}}
        )
    for form in (VISIT_V1, LEAVE_V1, TRAINING_V1):
        spec.components.schema(
            f"{form.name.title()}FormV{form.version}", schema=type(schema_for(form))
        )
    for rule in api_rules(app):
        spec.path(view=app.view_functions[rule.endpoint], app=app, rule=rule)
    return spec


@bp.get("/openapi.json")
def openapi_document() -> ResponseReturnValue:
    """This document, built once from the app's routes.
    ---
    get:
      summary: This document
      responses:
        "200":
          description: the OpenAPI document
          content:
            application/json:
              schema:
                type: object
    """
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    document = app.extensions.get("zhuxun_openapi")
    if document is None:
        document = app.extensions["zhuxun_openapi"] = build_spec(app).to_dict()
    return jsonify(document)
