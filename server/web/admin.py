"""The pages of running a county (issue 15): users and devices, sync health, the
spreadsheet import, and changing one's own password (which a one-time password makes the
first stop after signing in). Routes of the pages' blueprint (server/web/session.py), with
its language, CSRF check and session; no JavaScript, every action a form that posts.

No domain logic here: server/accounts.py, server/devices.py and server/county_import.py,
as the API (server/api/admin.py) calls them; their errors become error pages
(server/web/errors.py)."""

from __future__ import annotations

from typing import Any

from flask import Response, flash, g, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import NotFound
from werkzeug.security import check_password_hash

from server import accounts, county_import, devices, spreadsheets
from server.actor import COUNTY_ADMIN, DOCTOR, ROLES, TOWNSHIP_REVIEWER
from server.api import admin as admin_api
from server.api.errors import ApiError
from server.database import hash_password
from server.errors import Forbidden, InvalidInput
from server.extensions import db
from server.models import User
from server.web.session import _, bp, pages_for, password_mark

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
        accounts=accounts.accounts_in_scope(db.session, g.actor),
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
        created, password = accounts.open_account(
            db.session,
            g.actor,
            form["username"] or "",
            form["role"] or "",
            doctor_id=form["doctor"],
            unit_code=form["unit"],
            hash_password=hash_password,
        )
    except InvalidInput as exc:
        db.session.rollback()
        return _users_page(400, form=form, errors=exc.errors or {})
    except Forbidden as exc:
        db.session.rollback()
        return _users_page(403, form=form, errors={"role": [str(exc)]})
    # The one-time password is shown on this answer only: not in a redirect's flash,
    # which would carry it in the (signed, not encrypted) session cookie.
    return _users_page(201, created=created, password=password)


def _user_page(username: str, status: int = 200, **values: Any) -> ResponseReturnValue:
    account = accounts.account_of(db.session, g.actor, username)
    listed = devices.devices(db.session, g.actor, username=username)
    return render_template(
        "admin_user.html",
        account=account,
        devices=listed,
        roles=_roles(),
        trail=accounts.account_trail(db.session, g.actor, username, [d["id"] for d in listed]),
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
                db.session, g.actor, username, hash_password=hash_password
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
                raise Forbidden("only a county admin changes roles")
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
    except (InvalidInput, Forbidden):
        db.session.rollback()
        raise
    return redirect(url_for(".admin_user", username=username))


@bp.post("/admin/devices/<device_id>/revoke")
@pages_for(TOWNSHIP_REVIEWER, COUNTY_ADMIN)
def admin_revoke_device(device_id: str) -> ResponseReturnValue:
    form = _form("user", "reason")
    device = devices.revoke_device(db.session, g.actor, device_id, reason=form["reason"])
    flash(_("Device %(device)s was revoked.", device=device_id), "ok")
    return redirect(url_for(".admin_user", username=form["user"] or device["user"]))


# --- sync health ---------------------------------------------------------------------------


@bp.get("/admin/sync-health")
@pages_for(TOWNSHIP_REVIEWER, COUNTY_ADMIN)
def sync_health() -> ResponseReturnValue:
    raw = request.args.get("silent_days", "")
    days = int(raw) if raw.isdigit() and 1 <= int(raw) <= 365 else devices.DEFAULT_SILENT_DAYS
    health = devices.sync_health(
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
            plan = admin_api.run_import(admin_api.uploaded_files(), apply=apply)
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
        body, mimetype = admin_api.template(name)
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
            hash_password=hash_password,
            check_password=check_password_hash,
        )
    except InvalidInput as exc:
        db.session.rollback()
        errors = {
            field: _(_PASSWORD_PROBLEMS.get(field, "Please check the input"))
            for field in exc.errors or {}
        }
        return render_template("password.html", must_change=must_change, errors=errors), 400
    # The session goes on with the new password's mark (others of the old one end).
    session["mark"] = password_mark(user)
    if user.role in (TOWNSHIP_REVIEWER, COUNTY_ADMIN):
        flash(_("Your password was changed."), "ok")
        return redirect(url_for(".home"))
    return render_template("password_done.html")


_PASSWORD_PROBLEMS = {
    "old_password": "That is not your current password.",
    "new_password": "Choose a new password of at least 8 characters, not the current one.",
}
