"""`zhuxun-client`: the device's command line, a thin adapter over the library.

Library errors (`offline_client.errors.ClientError`) become `click.ClickException`
messages, never tracebacks (as sqlite-utils' cli.py does).
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from offline_client.duty import (
    BadWeek,
    describe,
    flags_for_week,
    local_flags,
    requested_week,
)
from offline_client.errors import ClientError, ConflictNotFound, RecordNotFound, ServerRefused
from offline_client.local import (
    LocalStore,
    UnknownCollection,
    new_id,
    open_store,
)
from offline_client.records import (
    checked,
    device_fields,
    local_now,
    parse_date,
    parse_datetime,
    with_changes,
)
from offline_client.server_api import ServerAPI
from offline_client.session import Session, clear_session, load_session, save_session
from offline_client.sync_loop import run_sync
from rules.model import DUTY_KINDS
from rules.periods import week_label
from sync.protocol import (
    DEFAULT_MAX_BATCH_CHANGES,
    FLAGS,
    LEAVE,
    MAX_PULL_LIMIT,
    PLACES,
    VISITS,
)
from sync.records import JSON

APP_NAME = "zhuxun-client"
STORE_FILE = "client.sqlite"


@dataclass
class Context:
    data_dir: Path
    _store: LocalStore | None = None

    @property
    def store(self) -> LocalStore:
        if self._store is None:
            # Health records: the directory is the owner's only, like the session in it.
            self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._store = open_store(self.data_dir / STORE_FILE)
        return self._store

    def session(self) -> Session:
        return load_session(self.data_dir)

    def api(self, session: Session | None = None) -> ServerAPI:
        return ServerAPI(
            session or self.session(),
            on_refresh=lambda s: save_session(self.data_dir, s),
            **network_options(),
        )

    def doctor(self) -> str:
        doctor = self.session().doctor
        if not doctor:
            raise click.ClickException(
                "this login is not a doctor's; log in as the doctor who records visits"
            )
        return doctor

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


def network_options() -> dict[str, Any]:
    """Retry settings, from the environment where a test or a slow county link sets them."""
    options: dict[str, Any] = {}
    for env, key, kind in (
        ("ZHUXUN_CLIENT_MAX_ATTEMPTS", "max_attempts", int),
        ("ZHUXUN_CLIENT_BACKOFF_S", "backoff_s", float),
        ("ZHUXUN_CLIENT_TIMEOUT_S", "timeout_s", float),
    ):
        if os.environ.get(env):
            try:
                options[key] = kind(os.environ[env])
            except ValueError:
                raise click.ClickException(f"{env} must be a number") from None
    return options


class ClientGroup(click.Group):
    """A group whose commands report library errors as one-line messages."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (ClientError, UnknownCollection) as exc:
            raise click.ClickException(str(exc)) from exc
        except sqlite3.OperationalError as exc:
            # Another zhuxun-client process held the device database past the busy timeout.
            raise click.ClickException(
                f"the device database is busy or unreadable ({exc}); try again"
            ) from exc


def echo_json(value: Any) -> None:
    click.echo(json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True))


@click.group(cls=ClientGroup)
@click.option(
    "--data-dir",
    envvar="ZHUXUN_CLIENT_DIR",
    type=click.Path(file_okay=False, path_type=Path),
    default=lambda: click.get_app_dir(APP_NAME),
    show_default="a per-user directory",
    help="Where the device keeps its records, outbox and login (env ZHUXUN_CLIENT_DIR).",
)
@click.version_option(package_name="zhuxun")
@click.pass_context
def cli(ctx: click.Context, data_dir: Path) -> None:
    """Zhuxun (驻巡) offline client: record visits offline, sync when a network appears."""
    context = Context(Path(data_dir))
    ctx.obj = context
    ctx.call_on_close(context.close)


# -- login ----------------------------------------------------------------------------------


@cli.command()
@click.option("--server", required=True, help="The Zhuxun server, e.g. https://zhuxun.example.cn")
@click.option("--username", required=True)
@click.option(
    "--password",
    envvar="ZHUXUN_PASSWORD",
    prompt=True,
    hide_input=True,
    help="Asked for when not given (or taken from ZHUXUN_PASSWORD).",
)
@click.pass_obj
def login(obj: Context, server: str, username: str, password: str) -> None:
    """Log in; the tokens are kept in the data directory, readable by you only."""
    if not server.startswith(("http://", "https://")):
        raise click.BadParameter("give the address with http:// or https://", param_hint="--server")
    try:
        session = ServerAPI.login(
            server, username, password, device_id=obj.store.device_id, **network_options()
        )
    except ClientError as exc:
        raise click.ClickException(f"login failed: {exc}") from exc
    path = save_session(obj.data_dir, session)
    who = session.user.get("doctor") or session.user.get("role") or username
    click.echo(f"logged in to {session.server} as {username} ({who}); device {obj.store.device_id}")
    click.echo(f"session saved in {path}")
    if session.user.get("must_change_password"):
        click.echo("this is a one-time password: set your own with `zhuxun-client password`")


@cli.command()
@click.option("--old", envvar="ZHUXUN_PASSWORD", prompt="Current password", hide_input=True)
@click.option(
    "--new",
    envvar="ZHUXUN_NEW_PASSWORD",
    prompt="New password",
    hide_input=True,
    confirmation_prompt=True,
)
@click.pass_obj
def password(obj: Context, old: str, new: str) -> None:
    """Set your own password (the county's one-time password must be changed first)."""
    try:
        obj.api().change_password(old, new)
    except ServerRefused as exc:
        problems = "; ".join(f"{k}: {', '.join(v)}" for k, v in (exc.errors or {}).items())
        raise click.ClickException(f"the password was not changed: {problems or exc}") from exc
    click.echo("password changed")


@cli.command()
@click.pass_obj
def logout(obj: Context) -> None:
    """Forget the tokens (the records and the outbox stay on the device)."""
    # Offline, forgetting the tokens locally is what matters.
    with contextlib.suppress(ClientError):
        obj.api().logout()
    clear_session(obj.data_dir)
    click.echo("logged out; unsynced changes stay on this device")


# -- visits ---------------------------------------------------------------------------------


def visit_options(required: bool):  # noqa: ANN201 - a decorator factory
    def decorate(fn):  # noqa: ANN001, ANN202
        options = [
            click.option("--place", required=required, help="The place's administrative code."),
            click.option(
                "--kind",
                type=click.Choice(DUTY_KINDS),
                required=required,
            ),
            click.option(
                "--check-in", required=required, help="ISO 8601, e.g. 2026-03-09T08:00+08:00"
            ),
            click.option("--check-out", required=required, help="ISO 8601"),
            click.option("--patients", type=int, required=required, help="Patients seen."),
            click.option("--notes", default=None),
            click.option("--assignment", default=None, help="The assignment this visit fulfils."),
            click.option("--lat", type=float, default=None),
            click.option("--lon", type=float, default=None),
            click.option("--accuracy", type=float, default=None, help="Position accuracy, metres."),
        ]
        for option in reversed(options):
            fn = option(fn)
        return fn

    return decorate


def visit_fields(**values: Any) -> JSON:
    fields = {
        "place": values.get("place"),
        "kind": values.get("kind"),
        "check_in": parse_datetime(values["check_in"], "check_in")
        if values.get("check_in")
        else None,
        "check_out": (
            parse_datetime(values["check_out"], "check_out") if values.get("check_out") else None
        ),
        "patients": values.get("patients"),
        "notes": values.get("notes"),
        "assignment": values.get("assignment"),
        "lat": values.get("lat"),
        "lon": values.get("lon"),
        "accuracy_m": values.get("accuracy"),
    }
    return {key: value for key, value in fields.items() if value is not None}


@cli.group(cls=ClientGroup)
def visit() -> None:
    """Record, edit, delete and list visits (驻村巡诊记录)."""


@visit.command("add")
@visit_options(required=True)
@click.pass_obj
def visit_add(obj: Context, **values: Any) -> None:
    """Record a visit; prints its id. Works offline; `sync` sends it."""
    data = {**device_fields(obj.doctor(), obj.store.device_id), **visit_fields(**values)}
    record_id = new_id()
    obj.store.save(VISITS, record_id, checked(VISITS, data))
    click.echo(record_id)


def live_record(store: LocalStore, collection: str, record_id: str) -> JSON:
    record = store.get(collection, record_id)
    if record is None or record.deleted:
        raise RecordNotFound(collection, record_id)
    return record.data


@visit.command("edit")
@click.argument("record_id", metavar="ID")
@visit_options(required=False)
@click.pass_obj
def visit_edit(obj: Context, record_id: str, **values: Any) -> None:
    """Change fields of a visit (a rejected visit is sent again once edited)."""
    data = live_record(obj.store, VISITS, record_id)
    changes = visit_fields(**values)
    if not changes:
        raise click.UsageError("give at least one field to change, e.g. --patients 12")
    data = with_changes(data, {**changes, "recorded_at": local_now()})
    answered = obj.store.send_backs(visit_id=record_id)
    obj.store.save(VISITS, record_id, checked(VISITS, data))
    click.echo(f"visit {record_id} changed; `sync` sends it")
    for send_back in answered:
        click.echo(f"the send-back by {send_back.by} ({send_back.comment}) is answered")


@visit.command("delete")
@click.argument("record_id", metavar="ID")
@click.pass_obj
def visit_delete(obj: Context, record_id: str) -> None:
    """Delete a visit (on the server too, at the next sync)."""
    live_record(obj.store, VISITS, record_id)
    obj.store.delete(VISITS, record_id)
    click.echo(f"visit {record_id} deleted")


def listing(store: LocalStore, collection: str) -> list[JSON]:
    rows = []
    for record in store.records(collection):
        row = {"id": record.id, **record.data, "version": record.version}
        row["sync"] = store.sync_state(collection, record.id)
        rejection = store.rejection(collection, record.id)
        if rejection is not None:
            row["rejected"] = rejection.reason
        if collection == VISITS:
            comments = [s.comment for s in store.send_backs(visit_id=record.id)]
            if comments:
                row["sent_back"] = comments
        rows.append(row)
    return rows


@visit.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def visit_list(obj: Context, as_json: bool) -> None:
    """The visits on this device, with their sync state."""
    rows = sorted(listing(obj.store, VISITS), key=lambda r: (r.get("check_in", ""), r["id"]))
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("no visits on this device")
        return
    for row in rows:
        line = (
            f"{row['id']}  {row.get('check_in', '?')} → {row.get('check_out', '?')}  "
            f"{row.get('place', '?')}  {row.get('kind', '?')}  patients {row.get('patients', '?')}"
            f"  [{row['sync']}]"
        )
        if "rejected" in row:
            line += f"  {row['rejected']}"
        for comment in row.get("sent_back", []):
            line += f"  sent back: {comment}"
        click.echo(line)


# -- leave ----------------------------------------------------------------------------------


@cli.group(cls=ClientGroup)
def leave() -> None:
    """Request leave (请假)."""


@leave.command("add")
@click.option("--start", required=True, help="First day, e.g. 2026-03-09")
@click.option("--end", required=True, help="Last day (inclusive)")
@click.option("--reason", required=True)
@click.pass_obj
def leave_add(obj: Context, start: str, end: str, reason: str) -> None:
    """Request leave; prints its id."""
    data = {
        **device_fields(obj.doctor(), obj.store.device_id),
        "start": parse_date(start, "start", LEAVE),
        "end": parse_date(end, "end", LEAVE),
        "reason": reason,
        "status": "pending",
    }
    record_id = new_id()
    obj.store.save(LEAVE, record_id, checked(LEAVE, data))
    click.echo(record_id)


@leave.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def leave_list(obj: Context, as_json: bool) -> None:
    """Leave on this device, with its sync state."""
    rows = listing(obj.store, LEAVE)
    if as_json:
        echo_json(rows)
        return
    for row in rows:
        click.echo(
            f"{row['id']}  {row.get('start')} → {row.get('end')}  {row.get('status', '')}  "
            f"{row.get('reason', '')}  [{row['sync']}]"
        )
    if not rows:
        click.echo("no leave on this device")


# -- sync -----------------------------------------------------------------------------------


@cli.command("sync")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option(
    "--batch-size",
    type=click.IntRange(1, DEFAULT_MAX_BATCH_CHANGES),
    default=DEFAULT_MAX_BATCH_CHANGES,
    show_default=True,
    help="Changes a push at most (halved on its own if the server refuses a batch as too large).",
)
@click.option(
    "--pull-limit",
    type=click.IntRange(1, MAX_PULL_LIMIT),
    envvar="ZHUXUN_CLIENT_PULL_LIMIT",
    default=MAX_PULL_LIMIT,
    show_default=True,
    help="Changes a pull page at most (the server also bounds a page by its size in bytes).",
)
@click.pass_obj
def sync_command(obj: Context, as_json: bool, batch_size: int, pull_limit: int) -> None:
    """Push the outbox, then pull everything new. Safe to interrupt and run again."""
    api = obj.api()

    def progress(message: str) -> None:
        click.echo(message, err=True)

    summary = run_sync(
        obj.store, api, batch_size=batch_size, pull_limit=pull_limit, progress=progress
    )
    if as_json:
        echo_json(summary.to_json())
        return
    click.echo(
        f"sent {summary.sent}: {summary.accepted} accepted, {summary.duplicates} already there, "
        f"{len(summary.rejected)} rejected, {len(summary.conflicts)} in conflict; "
        f"received {summary.received}"
    )
    for rejection in summary.rejected:
        click.echo(
            f"rejected: {rejection.collection} {rejection.record_id}: {rejection.reason} "
            f"(edit it and sync again, or delete it)"
        )
    for conflict in summary.conflicts:
        click.echo(
            f"conflict {conflict.id}: {conflict.collection} {conflict.record_id} was changed on "
            f"the server too; `zhuxun-client conflicts` shows both versions"
        )
    if summary.open_conflicts:
        click.echo(f"open conflicts: {summary.open_conflicts}")
    if summary.pending:
        click.echo(f"still pending (edited during the sync): {summary.pending}")


# -- status ---------------------------------------------------------------------------------


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option(
    "--week", default=None, help="The ISO week of the duty standing (default: this week)."
)
@click.pass_obj
def status(obj: Context, as_json: bool, week: str | None) -> None:
    """Pending changes, rejected records, conflicts, visits sent back for correction, last
    sync, this week's duty standing."""
    store = obj.store
    try:
        days = requested_week(week)
    except BadWeek as exc:
        raise click.BadParameter(str(exc), param_hint="--week") from exc
    try:
        session: Session | None = obj.session()
    except ClientError:
        session = None
    doctor = session.doctor if session else None
    entries = store.outbox()
    pulled_flags = store.records(FLAGS, include_deleted=True)
    flags = flags_for_week(pulled_flags, doctor, days)
    computed = local_flags(store, doctor, days) if doctor else []
    report = {
        "device_id": store.device_id,
        "server": session.server if session else None,
        "username": session.username if session else None,
        "doctor": doctor,
        "pending": len(entries),
        "in_flight": sum(1 for entry in entries if entry.in_flight),
        "rejected": [r.to_json() for r in store.rejections()],
        "conflicts": [view.to_json() for view in store.conflict_views(status="open")],
        "sent_back": [send_back.to_json() for send_back in store.send_backs()],
        "last_sync_at": store.last_sync_at,
        "week": week_label(days[0]),
        "flags": flags,
        "flags_pulled": bool(pulled_flags),
        "flags_on_device": computed,
    }
    if as_json:
        echo_json(report)
        return
    who = f"{report['username']} (doctor {doctor})" if session else "not logged in"
    click.echo(f"device {store.device_id}, {who}, server {report['server'] or '-'}")
    click.echo(f"pending changes: {report['pending']} ({report['in_flight']} in flight)")
    click.echo(f"rejected records: {len(report['rejected'])}")
    for rejection in report["rejected"]:
        click.echo(f"  {rejection['collection']} {rejection['id']}: {rejection['reason']}")
    click.echo(f"open conflicts: {len(report['conflicts'])}")
    click.echo(f"visits sent back for correction: {len(report['sent_back'])}")
    names = place_names(store)
    for item in report["sent_back"]:
        place = item["place"] or "?"
        if item["place"] in names:
            place += f" {names[item['place']]}"
        click.echo(
            f"  visit {item['visit']}  {item['date'] or '?'}  {place}: {item['comment']} "
            f"(by {item['by']}, {local_minute(item['at'])}; edit the visit to answer)"
        )
    click.echo(f"last successful sync: {report['last_sync_at'] or 'never'}")
    if not report["flags_pulled"]:
        click.echo(f"duty {report['week']}: no duty flags pulled yet (sync to get them)")
    elif not flags:
        click.echo(f"duty {report['week']}: no flags, nothing is missing")
    else:
        click.echo(f"duty {report['week']}: {len(flags)} flag(s)")
        for flag in flags:
            click.echo(f"  {describe(flag)}")
    if computed:
        click.echo(f"computed on this device (unsynced visits included): {len(computed)} flag(s)")
        for flag in computed:
            click.echo(f"  {describe(flag)}")


def local_minute(stamp: str) -> str:
    """An ISO time from the server as this device's local time, to the minute."""
    try:
        return datetime.fromisoformat(stamp).astimezone().strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return stamp


def place_names(store: LocalStore) -> dict[str, str]:
    """Place code → name, from the places pulled from the server."""
    return {
        record.id: str(record.data["name"])
        for record in store.records(PLACES)
        if record.data.get("name")
    }


# -- conflicts ------------------------------------------------------------------------------


@cli.group(cls=ClientGroup, invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def conflicts(ctx: click.Context, as_json: bool) -> None:
    """Open conflicts with both versions; `conflicts resolve ID --keep mine|theirs`."""
    if ctx.invoked_subcommand is not None:
        return
    views = ctx.obj.store.conflict_views(status="open")
    if as_json:
        echo_json([view.to_json() for view in views])
        return
    if not views:
        click.echo("no open conflicts")
        return
    for view in views:
        c = view.conflict
        theirs = view.theirs or {}
        click.echo(f"conflict {c.id}: {c.collection} {c.record_id} ({c.reason})")
        mine_data = None if c.incoming_op == "delete" else c.incoming_data
        theirs_data = None if theirs.get("deleted") else theirs.get("data")
        click.echo(f"  mine   ({c.incoming_op} on version {c.base_version}): {compact(mine_data)}")
        click.echo(
            f"  theirs (version {theirs.get('version', c.stored_version)}): {compact(theirs_data)}"
        )
        for name, (mine_value, their_value) in differences(mine_data, theirs_data).items():
            click.echo(f"  differs: {name}: mine {mine_value!r}, theirs {their_value!r}")


def compact(data: JSON | None) -> str:
    if data is None:
        return "(deleted)"
    return json.dumps(data, ensure_ascii=False, sort_keys=True)


def differences(mine: JSON | None, theirs: JSON | None) -> dict[str, tuple[Any, Any]]:
    """Fields whose values differ between both versions (none when one side is deleted)."""
    if mine is None or theirs is None:
        return {}
    ignored = {"recorded_at", "device_id"}
    names = sorted((set(mine) | set(theirs)) - ignored)
    return {n: (mine.get(n), theirs.get(n)) for n in names if mine.get(n) != theirs.get(n)}


@conflicts.command("resolve")
@click.argument("conflict_id", metavar="ID")
@click.option("--keep", type=click.Choice(["mine", "theirs"]), required=True)
@click.pass_obj
def conflicts_resolve(obj: Context, conflict_id: str, keep: str) -> None:
    """Settle a conflict; `sync` sends the decision."""
    change = obj.store.resolve(conflict_id, keep)
    if change is None:
        raise ConflictNotFound(conflict_id)
    click.echo(f"conflict {conflict_id}: keeping {keep}; `sync` sends it")


def main() -> None:
    cli(prog_name=APP_NAME)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
