"""Users, devices, sync health and the spreadsheet import over HTTP, /api/v1/admin (issue
15; docs/operations.md). County admins, and township reviewers for the doctors of their
township; a doctor gets 403, an account or device outside the caller's scope 404. The
operations are server/accounts.py's, server/devices.py's and server/county_import.py's;
their domain errors become the one envelope (server/api/errors.py)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request
from flask.typing import ResponseReturnValue

from server import accounts, county_import, devices, flags, spreadsheets
from server.actor import COUNTY_ADMIN, TOWNSHIP_REVIEWER
from server.api.auth import current_actor, login_required
from server.api.context import rules_as_of, ruleset_name
from server.api.errors import ApiError
from server.api.parsing import int_arg, json_body
from server.database import hash_password
from server.extensions import db
from server.review.workflow import audit_log
from sync.protocol import ErrorCode

bp = Blueprint("admin", __name__, url_prefix="/api/v1/admin")

managers = login_required(TOWNSHIP_REVIEWER, COUNTY_ADMIN)
county_admins = login_required(COUNTY_ADMIN)
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_TYPE = "text/csv; charset=utf-8"
MAX_IMPORT_FILES = 8


def _body() -> dict[str, Any]:
    if not request.get_data(cache=True):
        return {}
    body = json_body()
    if not isinstance(body, dict):
        raise ApiError(400, ErrorCode.INVALID_REQUEST, "send a JSON object")
    return body


def _text(body: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    value = body.get(name)
    if value is None or value == "":
        if required:
            raise ApiError(400, ErrorCode.VALIDATION, f"{name} is required",
                           errors={name: ["is required"]})  # fmt: skip
        return None
    if not isinstance(value, str) or len(value) > 1000:
        raise ApiError(400, ErrorCode.VALIDATION, f"{name} must be a text",
                       errors={name: ["must be a text of at most 1000 characters"]})  # fmt: skip
    return value.strip()


# --- accounts ----------------------------------------------------------------------------


@bp.get("/users")
@managers
def list_users() -> ResponseReturnValue:
    """The accounts the caller manages.
    ---
    get:
      summary: The accounts the caller manages
      responses:
        "200":
          description: "the accounts"
          content:
            application/json:
              schema: {type: object}
    """
    return jsonify({"items": accounts.accounts_in_scope(db.session, current_actor())})


@bp.post("/users")
@managers
def create_user() -> ResponseReturnValue:
    """Create an account with a one-time password.
    ---
    post:
      summary: Create an account with a one-time password
      requestBody:
        required: false
        content:
          application/json:
            schema: {type: object}
      responses:
        "201":
          description: "the account and its one-time password"
          content:
            application/json:
              schema: {type: object}
        "413": BodyTooLarge
        "415": UnsupportedMediaType
    """
    body = _body()
    user, password = accounts.open_account(
        db.session,
        current_actor(),
        _text(body, "username", required=True) or "",
        _text(body, "role", required=True) or "",
        doctor_id=_text(body, "doctor"),
        unit_code=_text(body, "unit"),
        hash_password=hash_password,
    )
    return jsonify({"user": user, "one_time_password": password}), 201


@bp.get("/users/<username>")
@managers
def get_user(username: str) -> ResponseReturnValue:
    """One account with its devices.
    ---
    get:
      summary: One account with its devices
      responses:
        "200": Account
        "404": NoSuchAccountOrDevice
    """
    actor = current_actor()
    user = accounts.account_of(db.session, actor, username)
    return jsonify({**user, "devices": devices.devices(db.session, actor, username=username)})


@bp.post("/users/<username>/deactivate")
@managers
def deactivate_user(username: str) -> ResponseReturnValue:
    """Deactivate an account (its tokens stop at once).
    ---
    post:
      summary: Deactivate an account (its tokens stop at once)
      responses:
        "200": Account
        "404": NoSuchAccountOrDevice
    """
    _body()  # no fields; a body that is not a JSON object is refused all the same
    return jsonify(accounts.set_active(db.session, current_actor(), username, False))


@bp.post("/users/<username>/reactivate")
@managers
def reactivate_user(username: str) -> ResponseReturnValue:
    """Reactivate an account.
    ---
    post:
      summary: Reactivate an account
      responses:
        "200": Account
        "404": NoSuchAccountOrDevice
    """
    _body()  # no fields; a body that is not a JSON object is refused all the same
    return jsonify(accounts.set_active(db.session, current_actor(), username, True))


@bp.post("/users/<username>/reset-password")
@managers
def reset_password(username: str) -> ResponseReturnValue:
    """A new one-time password for an account.
    ---
    post:
      summary: A new one-time password for an account
      responses:
        "200":
          description: "the account and its one-time password"
          content:
            application/json:
              schema: {type: object}
        "404": NoSuchAccountOrDevice
    """
    _body()  # no fields; a body that is not a JSON object is refused all the same
    actor = current_actor()
    password = accounts.reset_password(db.session, actor, username, hash_password=hash_password)
    user = accounts.account_of(db.session, actor, username)
    return jsonify({"user": user, "one_time_password": password})


@bp.post("/users/<username>/role")
@county_admins
def change_role(username: str) -> ResponseReturnValue:
    """Change an account's role and unit (county admins).
    ---
    post:
      summary: Change an account's role and unit (county admins)
      requestBody:
        required: false
        content:
          application/json:
            schema: {type: object}
      responses:
        "200": Account
        "404": NoSuchAccountOrDevice
        "413": BodyTooLarge
        "415": UnsupportedMediaType
    """
    body = _body()
    return jsonify(
        accounts.change_role(
            db.session,
            current_actor(),
            username,
            role=_text(body, "role", required=True) or "",
            doctor_id=_text(body, "doctor"),
            unit_code=_text(body, "unit"),
        )
    )


# --- devices and sync health -------------------------------------------------------------


@bp.get("/devices")
@managers
def list_devices() -> ResponseReturnValue:
    """The devices in the caller's scope.
    ---
    get:
      summary: The devices in the caller's scope
      responses:
        "200":
          description: "the devices"
          content:
            application/json:
              schema: {type: object}
    """
    return jsonify(
        {
            "items": devices.devices(
                db.session,
                current_actor(),
                username=request.args.get("user") or None,
                doctor=request.args.get("doctor") or None,
            )
        }
    )


@bp.post("/devices/<device_id>/revoke")
@managers
def revoke_device(device_id: str) -> ResponseReturnValue:
    """Revoke a device: its tokens and syncs are refused (device_revoked).
    ---
    post:
      summary: "Revoke a device: its tokens and syncs are refused (device_revoked)"
      requestBody:
        required: false
        content:
          application/json:
            schema: {type: object}
      responses:
        "200":
          description: "the device"
          content:
            application/json:
              schema: {type: object}
        "404": NoSuchAccountOrDevice
        "413": BodyTooLarge
        "415": UnsupportedMediaType
    """
    body = _body()
    return jsonify(
        devices.revoke_device(db.session, current_actor(), device_id, reason=_text(body, "reason"))
    )


@bp.get("/sync-health")
@managers
def sync_health() -> ResponseReturnValue:
    """Each doctor's last sync; doctors silent for more than silent_days.
    ---
    get:
      summary: Each doctor's last sync; doctors silent for more than silent_days
      responses:
        "200":
          description: "the sync health"
          content:
            application/json:
              schema: {type: object}
    """
    days = int_arg("silent_days", devices.DEFAULT_SILENT_DAYS, 1, 365)
    return jsonify(
        devices.sync_health(
            db.session,
            current_actor(),
            silent_days=days,
            township=request.args.get("township") or None,
        )
    )


@bp.get("/audit")
@managers
def account_audit() -> ResponseReturnValue:
    """The audit entries of accounts and devices (and imports) the caller may see.
    ---
    get:
      summary: Audit entries of accounts, devices and imports
      responses:
        "200":
          description: "the entries"
          content:
            application/json:
              schema: {type: object}
    """
    limit = int_arg("limit", 200, 1, 1000)
    offset = int_arg("offset", 0, 0, 10**9)
    items = [
        entry
        for kind in ("user", "device", "import")
        for entry in audit_log(db.session, current_actor(), subject_type=kind, limit=10**6)
        if not request.args.get("subject_id")
        or entry["subject"]["id"] == request.args["subject_id"]
    ]
    items.sort(key=lambda e: e["id"])
    return jsonify({"items": items[offset : offset + limit], "offset": offset, "limit": limit})


# --- spreadsheet import ------------------------------------------------------------------


def uploaded_files() -> list[tuple[str, bytes]]:
    files = [f for f in request.files.getlist("files") if f and f.filename]
    if not files:
        raise ApiError(400, ErrorCode.VALIDATION, "send one or more files as 'files'",
                       errors={"files": ["at least one CSV or XLSX file"]})  # fmt: skip
    if len(files) > MAX_IMPORT_FILES:
        raise ApiError(400, ErrorCode.VALIDATION, f"at most {MAX_IMPORT_FILES} files at once",
                       errors={"files": [f"at most {MAX_IMPORT_FILES}"]})  # fmt: skip
    return [(f.filename or "upload", f.read()) for f in files]


def run_import(files: list[tuple[str, bytes]], *, apply: bool) -> county_import.ImportPlan:
    """Read, check and (when `apply`) import; a file that cannot be read at all is a 400.
    With problems, `apply` writes nothing and returns the plan with its errors."""
    actor = current_actor()
    try:
        upload = spreadsheets.read_files(files)
    except spreadsheets.SpreadsheetError as exc:
        raise ApiError(
            400, ErrorCode.VALIDATION, str(exc), details={"message_zh": exc.message_zh}
        ) from exc
    if not apply:
        plan = county_import.check(db.session, upload, actor)
        db.session.rollback()
        return plan
    try:
        plan = county_import.apply(db.session, upload, actor, hash_password=hash_password)
    except county_import.ImportRefused:
        return county_import.check(db.session, upload, actor)
    if plan.changes_duty():
        # Flags follow changed assignments and doctors, as after `zhuxun import`.
        flags.evaluate_all(db.session, ruleset=ruleset_name(), as_of=rules_as_of(), cause="import")
    return plan


@bp.post("/import")
@county_admins
def import_files() -> ResponseReturnValue:
    """`?mode=check` (the default) is the dry run; `?mode=import` imports, all or nothing.
    Either answers the plan: counts, problems by sheet/row/column, one-time passwords.
    ---
    post:
      summary: Check (mode=check) or import (mode=import) CSV/XLSX files
      requestBody:
        required: true
        content:
          multipart/form-data:
            schema:
              type: object
              properties:
                files: {type: array, items: {type: string, format: binary}}
      responses:
        "200":
          description: "the plan: counts, problems, one-time passwords"
          content:
            application/json:
              schema: {type: object}
        "413":
          description: "the files are too large"
          content:
            application/json:
              schema: ErrorEnvelope
        "422":
          description: "problems: nothing was imported (the plan lists them)"
          content:
            application/json:
              schema: {type: object}
    """
    mode = request.args.get("mode", "check")
    if mode not in ("check", "import"):
        raise ApiError(400, ErrorCode.VALIDATION, "mode is check or import",
                       errors={"mode": ["check or import"]})  # fmt: skip
    plan = run_import(uploaded_files(), apply=mode == "import")
    status = 200 if plan.ok else 422
    return jsonify(plan.to_dict()), status


def template(name: str) -> tuple[bytes, str]:
    if name == "template.xlsx":
        return spreadsheets.template_xlsx(), XLSX_TYPE
    if name == "county.xlsx":
        county = current_actor().county_code or ""
        return spreadsheets.write_xlsx(county_import.export_rows(db.session, county)), XLSX_TYPE
    stem = name.removesuffix(".csv")
    if name.endswith(".csv") and stem in spreadsheets.KINDS:
        return spreadsheets.template_csv(stem), CSV_TYPE
    raise ApiError(404, ErrorCode.NOT_FOUND, f"no template {name[:40]!r}")


@bp.get("/import/<name>")
@county_admins
def import_template(name: str) -> ResponseReturnValue:
    """A template (template.xlsx, <kind>.csv) or the county as XLSX.
    ---
    get:
      summary: A template (template.xlsx, <kind>.csv) or the county as XLSX
      responses:
        "200":
          description: "the file"
          content:
            application/json:
              schema: {type: object}
        "404":
          description: "no such template"
          content:
            application/json:
              schema: ErrorEnvelope
    """
    body, mimetype = template(name)
    return Response(
        body,
        content_type=mimetype,
        headers={"Content-Disposition": f'attachment; filename="zhuxun-{name}"'},
    )
