"""`zhuxun`, the server-side command line: a thin adapter over the library (sqlite-utils'
pattern: library errors become click errors with a clear message, never a traceback)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from rules.cli import evaluate
from server.config import ConfigError


def load_app(**overrides: Any) -> Any:
    """The app, or a clear error (not a traceback) when its configuration is wrong."""
    from server.app import create_app

    try:
        return create_app(overrides or None)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


@click.group(help="Zhuxun (驻巡) server: sync API, database, imports and rules.")
@click.version_option(package_name="zhuxun")
def cli() -> None:
    pass


@cli.command("init-db")
def init_db_command() -> None:
    """Create or upgrade the database schema (Alembic migrations)."""
    from server.database import init_db
    from server.extensions import db

    app = load_app()
    with app.app_context():
        init_db()
        click.echo(f"database ready: {db.engine.url.render_as_string(hide_password=True)}")


@cli.command("create-user")
@click.argument("username")
@click.option(
    "--role", required=True, type=click.Choice(["doctor", "township_reviewer", "county_admin"])
)
@click.option("--doctor", "doctor_id", help="the doctor id (role doctor)")
@click.option("--unit", "unit_code", help="the township or county code (reviewer, admin)")
def create_user_command(
    username: str, role: str, doctor_id: str | None, unit_code: str | None
) -> None:
    """Create a user; the password comes from ZHUXUN_PASSWORD or a prompt."""
    from server.accounts import UserError
    from server.database import add_user

    password = os.environ.get("ZHUXUN_PASSWORD") or click.prompt(
        "Password", hide_input=True, confirmation_prompt=True
    )
    app = load_app()
    with app.app_context():
        try:
            add_user(username, password, role, doctor_id=doctor_id, unit_code=unit_code)
        except UserError as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(f"created {role} {username}")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise click.ClickException(f"cannot read {path}: {exc.strerror}") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise click.ClickException(f"{path} is not valid UTF-8 JSON: {exc}") from exc


@cli.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--dry-run",
    is_flag=True,
    help="spreadsheets: report every problem and what would change; write nothing",
)
def import_command(files: tuple[Path, ...], dry_run: bool) -> None:
    """Import a scenario file (places, doctors, assignments, visits, leave, trainings), or
    CSV/XLSX spreadsheets of places, doctors, assignments and users (docs/operations.md):
    all or nothing, upserted by code."""
    if all(path.suffix.lower() == ".json" for path in files):
        if len(files) != 1 or dry_run:
            raise click.UsageError("give one JSON scenario file (no --dry-run for scenarios)")
        _import_scenario(files[0])
        return
    if any(path.suffix.lower() == ".json" for path in files):
        raise click.UsageError("give either one JSON scenario or spreadsheets, not both")
    from server.accounts_cli import import_spreadsheets

    import_spreadsheets(list(files), dry_run=dry_run)


def _import_scenario(file: Path) -> None:
    from server.database import init_db
    from server.extensions import db
    from server.records.importer import ScenarioError, import_scenario

    scenario = _read_json(file)
    app = load_app()

    def progress(collection: str, done: int, total: int) -> None:
        click.echo(f"\r  {collection}: {done}/{total}", nl=done >= total, err=True)

    with app.app_context():
        init_db()
        try:
            report = import_scenario(db.session, scenario, progress=progress)
        except ScenarioError as exc:
            raise click.ClickException(str(exc)) from exc
        changes = evaluate_everything(app)
    for name, count in sorted(report.counts.items()):
        click.echo(f"imported {count} {name}")
    for name, count in sorted(report.unchanged.items()):
        click.echo(f"unchanged {count} {name}")
    click.echo(str(changes))


def evaluate_everything(app: Any) -> Any:
    from rules import RuleSetError
    from server.extensions import db
    from server.flags import evaluate_all, rules_as_of

    try:
        return evaluate_all(
            db.session,
            ruleset=app.config["ZHUXUN_RULESET"],
            as_of=rules_as_of(app.config.get("ZHUXUN_RULES_AS_OF")),
            cause="evaluate",
            # As of today, today is not over (issue 14); a configured date is over.
            today_open=not app.config.get("ZHUXUN_RULES_AS_OF"),
        )
    except RuleSetError as exc:
        raise click.ClickException(str(exc)) from exc


@cli.command("reevaluate")
def reevaluate_command() -> None:
    """Evaluate every rule for every county again and store what changed (with history)."""
    app = load_app()
    with app.app_context():
        changes = evaluate_everything(app)
    click.echo(str(changes))


@cli.command("worker")
@click.option("--once", is_flag=True, help="judge what is due now, then stop")
@click.option("--idle", default=1.0, show_default=True, type=float,
              help="seconds to wait when nothing is due")  # fmt: skip
@click.option("--batch", default=2000, show_default=True, type=int,
              help="doctor-weeks leased at a time")  # fmt: skip
def worker_command(once: bool, idle: float, batch: int) -> None:
    """Judge the flags writes left stale (the evaluation queue) until stopped (Ctrl-C or
    SIGTERM), for a deployment that keeps the evaluation out of its requests
    (ZHUXUN_EVALUATION=worker). Any number of workers and app servers may share the queue:
    each doctor-week is leased to one of them at a time."""
    import dataclasses
    import signal
    import threading

    from server import evaluation_queue
    from server.extensions import db
    from server.flags import judge_entries

    app = load_app()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    settings = dataclasses.replace(evaluation_queue.settings_from(app.config), batch=batch)

    def said(report: evaluation_queue.Settled) -> None:
        click.echo(
            f"judged {report.entries} doctor-week(s) in {report.groups} group(s): "
            f"{report.flag_changes} flag change(s)"
            + (f"; failed for {', '.join(report.failed)}" if report.failed else ""),
        )

    mode = "once" if once else f"until stopped, looking every {idle:g} s when idle"
    click.echo(f"worker: judging the flags writes left stale, {mode}")
    with app.app_context():
        try:
            total = evaluation_queue.run_worker(
                lambda: db.session, settings, judge_entries, stop=stop, idle=idle, once=once,
                on_round=said,
            )  # fmt: skip
        except KeyboardInterrupt:
            return
        finally:
            db.session.remove()
            db.engine.dispose()  # the pool's connections closed, not left to the collector
    click.echo(f"worker done: {total.entries} doctor-week(s) judged")


@cli.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=int, help="worker processes")
@click.option("--threads", default=4, show_default=True, type=int, help="threads per worker")
def serve_command(host: str, port: int, workers: int, threads: int) -> None:
    """Run the server with the production WSGI server (gunicorn)."""
    from gunicorn.app.base import BaseApplication

    # /metrics adds up every worker's counters from files in this directory
    # (prometheus-client's multiprocess mode). It must be set before prometheus_client is
    # first imported, which server.metrics does: so the name is spelled out here.
    multiproc = "PROMETHEUS_MULTIPROC_DIR"
    if workers > 1 and not os.environ.get(multiproc):
        import tempfile

        os.environ[multiproc] = tempfile.mkdtemp(prefix="zhuxun-metrics-")
    if os.environ.get(multiproc):
        from server.metrics import prepare_multiprocess_dir

        prepare_multiprocess_dir(os.environ[multiproc])
        click.echo(f"metrics of every worker gathered in {os.environ[multiproc]}")
    load_app()  # fail here, with the reason, rather than in every worker

    class _Server(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("threads", threads)
            self.cfg.set("worker_class", "gthread" if threads > 1 else "sync")
            self.cfg.set("timeout", 60)
            self.cfg.set("graceful_timeout", 10)
            self.cfg.set("accesslog", os.environ.get("ZHUXUN_ACCESS_LOG"))
            # gunicorn's control socket lives at one path under $HOME: two servers on one
            # machine (tests, several app servers) would share it. Zhuxun does not use it.
            self.cfg.set("control_socket_disable", True)

        def load(self) -> Any:
            from server.app import create_app

            return create_app()

    click.echo(f"Zhuxun serving on http://{host}:{port}/ ({workers} workers x {threads} threads)")
    _Server().run()


@cli.command("demo")
@click.option("--seed", default=2026, show_default=True, type=int)
@click.option("--townships", default=10, show_default=True, type=int)
@click.option("--villages", default=120, show_default=True, type=int)
@click.option("--doctors", default=150, show_default=True, type=int)
@click.option("--weeks", default=26, show_default=True, type=int)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="only write the scenario file (the `import` format) and stop",
)
@click.option(
    "--run", is_flag=True, help="seed, serve, simulate two tablets (what `make demo` does)"
)
@click.option(
    "--dir",
    "directory",
    default="instance/demo",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="where the demo keeps its files",
)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option(
    "--serve/--no-serve",
    default=True,
    show_default=True,
    help="keep the server running at the end (Ctrl-C stops it)",
)
def demo_command(
    seed: int,
    townships: int,
    villages: int,
    doctors: int,
    weeks: int,
    out: Path | None,
    run: bool,
    directory: Path,
    port: int,
    serve: bool,
) -> None:
    """A demo county: generate it (--out), or run the whole demo (--run)."""
    from demo_county import generate_county, summarize, write_scenario

    sizes = {"townships": townships, "villages": villages, "doctors": doctors, "weeks": weeks}
    try:
        if run:
            from server.demo import run_demo

            run_demo(directory=directory, port=port, serve=serve, sizes=sizes, seed=seed)
            return
        scenario = generate_county(seed=seed, **sizes)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    if out is None:
        raise click.UsageError("say --out FILE to write the scenario, or --run for the whole demo")
    write_scenario(out, scenario)
    click.echo(f"wrote {out}: {json.dumps(summarize(scenario), ensure_ascii=False)}")


# `zhuxun evaluate` is the rules package's own command, on scenario files (no database).
cli.add_command(evaluate)


def _add_county_commands() -> None:
    """Backups, accounts, devices and sync health (issue 15; docs/operations.md)."""
    from server.accounts_cli import COMMANDS
    from server.backup_cli import backup_command, restore_command

    for command in (backup_command, restore_command, *COMMANDS):
        cli.add_command(command)


_add_county_commands()


@contextmanager
def _database(app: Any) -> Iterator[Any]:
    """The app context with its session, connections closed afterwards."""
    from server.extensions import db

    with app.app_context():
        try:
            yield db.session
        finally:
            db.session.remove()
            db.engine.dispose()


@cli.group("webhooks")
def webhooks_group() -> None:
    """Outbound notifications (a flag opened, a visit sent back): deliver, retry, status.

    The receiver is ZHUXUN_WEBHOOK_URL; every POST is signed with ZHUXUN_WEBHOOK_SECRET
    (header X-Zhuxun-Signature, see docs/review.md)."""


def _webhook_settings(app: Any) -> Any:
    from server.webhooks import Settings

    url = app.config.get("ZHUXUN_WEBHOOK_URL")
    if not url:
        raise click.ClickException(
            "ZHUXUN_WEBHOOK_URL is not set: there is nowhere to deliver to. Events are kept "
            "in the database meanwhile (`zhuxun webhooks status`)."
        )
    return Settings(
        url=url,
        secret=app.config["ZHUXUN_WEBHOOK_SECRET"],
        timeout=float(app.config["ZHUXUN_WEBHOOK_TIMEOUT"]),
        max_attempts=int(app.config["ZHUXUN_WEBHOOK_MAX_ATTEMPTS"]),
    )


@webhooks_group.command("deliver")
@click.option("--limit", default=1000, show_default=True, type=int, help="events at most")
def webhooks_deliver_command(limit: int) -> None:
    """Send every due event once, then exit (for cron)."""
    from server import webhooks

    app = load_app()
    with _database(app) as session:
        report = webhooks.deliver_due(session, _webhook_settings(app), limit=limit)
    for error in report.errors:
        click.echo(f"  {error}", err=True)
    click.echo(str(report))


@webhooks_group.command("run")
@click.option("--interval", default=15.0, show_default=True, type=float, help="seconds")
def webhooks_run_command(interval: float) -> None:
    """Deliver due events every INTERVAL seconds until stopped (Ctrl-C or SIGTERM). Any
    number of these may run against one database: each event is leased to one of them."""
    import signal
    import time

    from server import webhooks
    from server.extensions import db

    app = load_app()
    stop = {"now": False}

    def _stop(*_: Any) -> None:
        stop["now"] = True

    signal.signal(signal.SIGTERM, _stop)
    with app.app_context():
        settings = _webhook_settings(app)
        click.echo(f"delivering webhooks to {settings.url} every {interval:g} s")
        try:
            while not stop["now"]:
                report = webhooks.deliver_due(db.session, settings)
                if report.total():
                    click.echo(str(report))
                db.session.remove()
                slept = 0.0
                while slept < interval and not stop["now"]:
                    time.sleep(min(0.5, interval - slept))
                    slept += 0.5
        except KeyboardInterrupt:
            pass
    click.echo("stopped")


@webhooks_group.command("retry")
@click.argument("event_id", required=False)
def webhooks_retry_command(event_id: str | None) -> None:
    """Queue failed events again (all of them, or EVENT_ID)."""
    from server import webhooks

    app = load_app()
    with _database(app) as session:
        n = webhooks.retry_failed(session, event_id=event_id)
    if event_id and not n:
        raise click.ClickException(f"no failed webhook event {event_id!r}")
    click.echo(f"{n} event(s) queued again")


@webhooks_group.command("status")
def webhooks_status_command() -> None:
    """Events per state."""
    from server import webhooks

    app = load_app()
    with _database(app) as session:
        states = webhooks.counts(session)
    for state in ("pending", "delivered", "failed", "expired"):
        click.echo(f"{state:10} {states.get(state, 0)}")


def main() -> None:
    cli(prog_name="zhuxun")


if __name__ == "__main__":
    sys.exit(main())
