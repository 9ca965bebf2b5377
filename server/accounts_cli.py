"""`zhuxun users …`, `zhuxun devices …`, `zhuxun sync-health` and the spreadsheet side of
`zhuxun import`: the command line of server/accounts.py and server/county_import.py, run
by whoever runs the server (no scope: every county). Changes are audited as `cli`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from server.actor import ROLES
from server.errors import DomainError

BY = "cli"


def _app() -> Any:
    from server.cli import load_app

    return load_app()


def _fail(exc: Exception) -> click.ClickException:
    errors = getattr(exc, "errors", None)
    detail = "".join(
        f"\n  {field}: {'; '.join(problems)}" for field, problems in (errors or {}).items()
    )
    return click.ClickException(f"{exc}{detail}")


def _session(app: Any) -> Any:
    from server.extensions import db

    return db.session


def hash_password(password: str) -> str:
    from server.database import hash_password as app_hash

    return app_hash(password)


@click.group("users")
def users_group() -> None:
    """Accounts: list, create, deactivate, reactivate, reset a password, change the role.
    New accounts and resets print a one-time password the user changes at first sign-in."""


@users_group.command("list")
@click.option("--county", help="only this county's accounts")
def users_list(county: str | None) -> None:
    from server import accounts

    app = _app()
    with app.app_context():
        for row in accounts.all_accounts(_session(app)):
            if county and row["county"] != county:
                continue
            state = "active" if row["active"] else "deactivated"
            if row["active"] and row["must_change_password"]:
                state = "must change password"
            where = row["doctor"] or row["unit"] or "-"
            click.echo(f"{row['username']:20} {row['role']:18} {where:14} {state}")


@users_group.command("create")
@click.argument("username")
@click.option("--role", required=True, type=click.Choice(list(ROLES)))
@click.option("--doctor", "doctor_id", help="the doctor id (role doctor)")
@click.option("--unit", "unit_code", help="the township or county code (reviewer, admin)")
def users_create(username: str, role: str, doctor_id: str | None, unit_code: str | None) -> None:
    from server import accounts

    app = _app()
    with app.app_context():
        try:
            _user, password = accounts.open_account(
                _session(app), None, username, role, doctor_id=doctor_id, unit_code=unit_code,
                hash_password=hash_password, by=BY,
            )  # fmt: skip
        except DomainError as exc:
            raise _fail(exc) from exc
    click.echo(f"created {role} {username}; one-time password: {password}")


def _simple(action: str) -> Any:
    @users_group.command(action, help=f"{action.capitalize()} the account USERNAME.")
    @click.argument("username")
    def command(username: str) -> None:
        from server import accounts

        app = _app()
        with app.app_context():
            try:
                accounts.set_active(_session(app), None, username, action == "reactivate", by=BY)
            except DomainError as exc:
                raise _fail(exc) from exc
        click.echo(f"{action}d {username}")

    return command


_simple("deactivate")
_simple("reactivate")


@users_group.command("reset-password")
@click.argument("username")
def users_reset_password(username: str) -> None:
    """A new one-time password for USERNAME (the old one stops working at once)."""
    from server import accounts

    app = _app()
    with app.app_context():
        try:
            password = accounts.reset_password(
                _session(app), None, username, hash_password=hash_password, by=BY
            )
        except DomainError as exc:
            raise _fail(exc) from exc
    click.echo(f"one-time password of {username}: {password}")


@users_group.command("set-role")
@click.argument("username")
@click.option("--role", required=True, type=click.Choice(list(ROLES)))
@click.option("--doctor", "doctor_id")
@click.option("--unit", "unit_code")
def users_set_role(username: str, role: str, doctor_id: str | None, unit_code: str | None) -> None:
    """Change the role and unit of USERNAME."""
    from server import accounts

    app = _app()
    with app.app_context():
        try:
            accounts.change_role(
                _session(app), None, username, role=role, doctor_id=doctor_id,
                unit_code=unit_code, by=BY,
            )  # fmt: skip
        except DomainError as exc:
            raise _fail(exc) from exc
    click.echo(f"{username} is now {role} ({doctor_id or unit_code})")


@click.group("devices")
def devices_group() -> None:
    """The devices users sync from: list them, revoke a lost one."""


@devices_group.command("list")
@click.option("--user", "username")
def devices_list(username: str | None) -> None:
    from server import devices

    app = _app()
    with app.app_context():
        for row in devices.all_devices(_session(app), username=username):
            state = f"revoked {row['revoked_at']}" if row["revoked"] else "active"
            click.echo(
                f"{row['id']:24} {row['user']:16} last sync {row['last_sync_at'] or '-':32} "
                f"rejected {row['rejected_pending']}  {state}"
            )


@devices_group.command("revoke")
@click.argument("device_id")
@click.option("--reason")
def devices_revoke(device_id: str, reason: str | None) -> None:
    """Revoke DEVICE_ID: its tokens stop at once, its next sync is refused
    (device_revoked); the records it sent stay."""
    from server import devices

    app = _app()
    with app.app_context():
        try:
            devices.revoke_device(_session(app), None, device_id, reason=reason, by=BY)
        except DomainError as exc:
            raise _fail(exc) from exc
    click.echo(f"revoked {device_id}")


@click.command("sync-health")
@click.option("--county", required=True, help="the county code")
@click.option("--silent-days", default=3, show_default=True, type=click.IntRange(1, 365))
@click.option("--json", "as_json", is_flag=True, help="the whole report as JSON")
def sync_health_command(county: str, silent_days: int, as_json: bool) -> None:
    """Each doctor's last successful sync; the doctors silent for more than N days."""
    from server import devices
    from server.actor import COUNTY_ADMIN, Actor

    app = _app()
    with app.app_context():
        actor = Actor("cli", COUNTY_ADMIN, None, None, county)
        report = devices.sync_health(_session(app), actor, silent_days=silent_days)
    if as_json:
        click.echo(json.dumps(report, ensure_ascii=False, indent=2))
        return
    for doctor in report["doctors"]:
        mark = "SILENT" if doctor["silent"] else "ok"
        click.echo(
            f"{mark:7} {doctor['doctor']:12} {doctor['name']:8} {doctor['last_sync_at'] or 'never'}"
        )
    click.echo(
        f"{len(report['silent'])} of {len(report['doctors'])} doctors silent > {silent_days} days"
    )


def import_spreadsheets(files: list[Path], *, dry_run: bool) -> None:
    """The spreadsheet side of `zhuxun import`: every problem by sheet, row and column (and
    nothing written), or the import, all or nothing, with the new users' one-time
    passwords."""
    from server import county_import, spreadsheets
    from server.database import init_db

    contents = []
    for path in files:
        try:
            contents.append((path.name, path.read_bytes()))
        except OSError as exc:
            raise click.ClickException(f"cannot read {path}: {exc.strerror}") from exc
    app = _app()
    with app.app_context():
        init_db()
        session = _session(app)
        try:
            upload = spreadsheets.read_files(contents)
        except spreadsheets.SpreadsheetError as exc:
            raise click.ClickException(str(exc)) from exc
        if dry_run:
            plan = county_import.check(session, upload)
            session.rollback()
        else:
            try:
                plan = county_import.apply(session, upload, hash_password=hash_password, by=BY)
            except county_import.ImportRefused as exc:
                plan = county_import.ImportPlan(errors=exc.problems)
        for error in plan.errors:
            where = f"{error.sheet} row {error.row}" + (f", {error.column}" if error.column else "")
            click.echo(f"  {where}: {error.message} / {error.message_zh}", err=True)
        if plan.errors:
            raise click.ClickException(f"{len(plan.errors)} problem(s); nothing was imported")
        if not dry_run:
            from server.cli import evaluate_everything

            if plan.changes_duty():
                click.echo(str(evaluate_everything(app)))
    verb = "would import" if dry_run else "imported"
    for kind, counts in plan.counts().items():
        click.echo(f"{verb} {kind}: {counts['new']} new, {counts['changed']} changed, "
                   f"{counts['unchanged']} unchanged")  # fmt: skip
    for username, password in plan.passwords.items():
        click.echo(f"one-time password of {username}: {password}")


COMMANDS = (users_group, devices_group, sync_health_command)
