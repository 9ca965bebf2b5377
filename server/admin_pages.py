"""The pages of running a county (issue 15): users and devices, sync health, the
spreadsheet import, and changing one's own password (which a one-time password makes the
first stop after signing in). Routes of the pages' blueprint (server/web.py), with its
language, CSRF check and session; no JavaScript, every action a form that posts.

No domain logic here: server/accounts.py and server/county_import.py, as the API
(server/accounts_api.py) calls them."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from flask import Response, flash, g, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import select
from werkzeug.exceptions import NotFound

from server import accounts, accounts_api, county_import, spreadsheets
from server.auth import COUNTY_ADMIN, DOCTOR, ROLES, TOWNSHIP_REVIEWER
from server.errors import ApiError
from server.extensions import db
from server.models import AuditEntry, User
from server.review import audit_json
from server.web import _, _password_mark, bp, pages_for

ACTIONS = ("reset-password", "deactivate", "reactivate", "role")


def _roles() -> tuple[str, ...]:
    return ROLES if g.user.role == COUNTY_ADMIN else (DOCTOR,)


def _form(*names: str) -> dict[str, str | None]:
    return {name: (request.form.get(name) or "").strip() or None for name in names}


# --- users -------------------------------------------------------------------------------


def _users_page(status: int = 200, **values: Any) -> ResponseReturnValue:
    values.setdefault("form", {})
    values.setdefault("errors", {})
    return render_template(
        "admin_users.html",
        accounts=accounts.accounts(db.session, g.actor),
        roles=_roles(),
        **values,
    ), status


@bp.get("/admin/users")
@pages_for(TOWNSHIP_REVIEWER, COUNTY_ADMIN)
def admin_users() -> ResponseReturnValue:
    return _users_page()


@bp.post("/admin/users")
@pages_for(TOWNSHIP_REVIEWER, COUNTY_ADMIN)
def admin_create_user() -> ResponseReturnValue:
    form = _form("username", "role", "doctor", "unit")
    try:
        created, password = accounts.create_user(
            db.session,
            g.actor,
            form["username"] or "",
            form["role"] or "",
            doctor_id=form["doctor"],
            unit_code=form["unit"],
            password_method=accounts_api.password_method(),
        )
    except accounts.InvalidInput as exc:
        db.session.rollback()
        return _users_page(400, form=form, errors=exc.errors)
    except accounts.NotAllowed as exc:
        db.session.rollback()
        return _users_page(403, form=form, errors={"role": [str(exc)]})
    # The one-time password is shown on this answer only: not in a redirect's flash,
    # which would carry it in the (signed, not encrypted) session cookie.
    return _users_page(201, created=created, password=password)


def _trail(username: str, device_ids: list[str]) -> list[dict[str, Any]]:
    subjects = [("user", username), *(("device", d) for d in device_ids)]
    rows = db.session.scalars(
        select(AuditEntry)
        .where(g.actor.owns(AuditEntry))
        .where(
            AuditEntry.subject_type.in_([s[0] for s in subjects]),
            AuditEntry.subject_id.in_([s[1] for s in subjects]),
        )
        .order_by(AuditEntry.id)
    )
    trail = []
    for row in rows:
        if (row.subject_type, row.subject_id) not in subjects:
            continue
        entry = audit_json(row)
        # SQLite hands the stored UTC time back without its zone; the pages show China time.
        if row.at is not None and row.at.tzinfo is None:
            entry["at"] = row.at.replace(tzinfo=UTC).isoformat()
        trail.append(entry)
    return trail


def _user_page(username: str, status: int = 200, **values: Any) -> ResponseReturnValue:
    try:
        account = accounts.account(db.session, g.actor, username)
    except accounts.NotFound as exc:
        raise NotFound(str(exc)) from exc
    devices = accounts.devices(db.session, g.actor, username=username)
    return render_template(
        "admin_user.html",
        account=account,
        devices=devices,
        roles=_roles(),
        trail=_trail(username, [d["id"] for d in devices]),
        **values,
    ), status


@bp.get("/admin/users/<username>")
@pages_for(TOWNSHIP_REVIEWER, COUNTY_ADMIN)
def admin_user(username: str) -> ResponseReturnValue:
    return _user_page(username)


@bp.post("/admin/users/<username>/<action>")
@pages_for(TOWNSHIP_REVIEWER, COUNTY_ADMIN)
def admin_user_action(username: str, action: str) -> ResponseReturnValue:
    if action not in ACTIONS:
        raise NotFound(f"no action {action[:20]!r}")
    try:
        if action == "reset-password":
            password = accounts.reset_password(
                db.session, g.actor, username, password_method=accounts_api.password_method()
            )
            return _user_page(username, password=password)
        if action in ("deactivate", "reactivate"):
            accounts.set_active(db.session, g.actor, username, action == "reactivate")
            flash(
                _("The account was deactivated.")
                if action == "deactivate"
                else _("The account was reactivated."),
                "ok",
            )
        else:
            if g.user.role != COUNTY_ADMIN:
                raise accounts.NotAllowed("only a county admin changes roles")
            form = _form("role", "doctor", "unit")
            accounts.change_role(
                db.session,
                g.actor,
                username,
                role=form["role"] or "",
                doctor_id=form["doctor"],
                unit_code=form["unit"],
            )
            flash(_("The role and unit were changed."), "ok")
    except accounts.NotFound as exc:
        raise NotFound(str(exc)) from exc
    except accounts.InvalidInput as exc:
        db.session.rollback()
        raise ApiError(400, "validation_failed", str(exc), errors=exc.errors) from exc
    except accounts.NotAllowed as exc:
        db.session.rollback()
        raise ApiError(403, "forbidden", str(exc)) from exc
    return redirect(url_for(".admin_user", username=username))


@bp.post("/admin/devices/<device_id>/revoke")
@pages_for(TOWNSHIP_REVIEWER, COUNTY_ADMIN)
def admin_revoke_device(device_id: str) -> ResponseReturnValue:
    form = _form("user", "reason")
    try:
        device = accounts.revoke_device(db.session, g.actor, device_id, reason=form["reason"])
    except accounts.NotFound as exc:
        raise NotFound(str(exc)) from exc
    flash(_("Device %(device)s was revoked.", device=device_id), "ok")
    return redirect(url_for(".admin_user", username=form["user"] or device["user"]))


# --- sync health ---------------------------------------------------------------------------


@bp.get("/admin/sync-health")
@pages_for(TOWNSHIP_REVIEWER, COUNTY_ADMIN)
def sync_health() -> ResponseReturnValue:
    raw = request.args.get("silent_days", "")
    days = int(raw) if raw.isdigit() and 1 <= int(raw) <= 365 else accounts.DEFAULT_SILENT_DAYS
    health = accounts.sync_health(
        db.session, g.actor, silent_days=days, township=request.args.get("township") or None
    )
    return render_template("sync_health.html", health=health)


# --- import ----------------------------------------------------------------------------------


@bp.route("/admin/import", methods=["GET", "POST"])
@pages_for(COUNTY_ADMIN)
def admin_import() -> ResponseReturnValue:
    plan = None
    status = 200
    if request.method == "POST":
        apply = request.form.get("mode") == "import"
        try:
            plan = accounts_api.run_import(accounts_api.uploaded_files(), apply=apply)
        except ApiError as exc:
            message = exc.message
            if exc.details and "message_zh" in exc.details and g.lang != "en":
                message = exc.details["message_zh"]
            plan = county_import.ImportPlan(
                errors=[spreadsheets.CellError("", 0, "", message, message)]
            )
        status = 200 if plan.ok else 422
    return render_template("admin_import.html", plan=plan, kinds=spreadsheets.KINDS), status


@bp.get("/admin/import/<name>")
@pages_for(COUNTY_ADMIN)
def admin_import_template(name: str) -> ResponseReturnValue:
    try:
        body, mimetype = accounts_api.template(name)
    except ApiError as exc:
        raise NotFound(exc.message) from exc
    return Response(
        body,
        content_type=mimetype,
        headers={"Content-Disposition": f'attachment; filename="zhuxun-{name}"'},
    )


# --- one's own password ----------------------------------------------------------------------


@bp.route("/password", methods=["GET", "POST"])
def change_password() -> ResponseReturnValue:
    """Any signed-in user, doctors too: the first stop after a one-time password."""
    user: User | None = g.user
    if user is None:
        return redirect(url_for(".login", next=url_for(".change_password")))
    must_change = bool(user.must_change_password)
    if request.method == "GET":
        return render_template("password.html", must_change=must_change, errors={})
    form = {k: request.form.get(k, "") for k in ("old_password", "new_password", "repeat_password")}
    if form["new_password"] != form["repeat_password"]:
        errors = {"repeat_password": _("The two new passwords differ.")}
        return render_template("password.html", must_change=must_change, errors=errors), 400
    try:
        accounts.change_own_password(
            db.session,
            user.username,
            form["old_password"],
            form["new_password"],
            password_method=accounts_api.password_method(),
        )
    except accounts.InvalidInput as exc:
        db.session.rollback()
        errors = {
            field: _(_PASSWORD_PROBLEMS.get(field, "Please check the input"))
            for field in exc.errors
        }
        return render_template("password.html", must_change=must_change, errors=errors), 400
    # The session goes on with the new password's mark (others of the old one end).
    session["mark"] = _password_mark(user)
    if user.role in (TOWNSHIP_REVIEWER, COUNTY_ADMIN):
        flash(_("Your password was changed."), "ok")
        return redirect(url_for(".home"))
    return render_template("password_done.html")


_PASSWORD_PROBLEMS = {
    "old_password": "That is not your current password.",
    "new_password": "Choose a new password of at least 8 characters, not the current one.",
}
