"""`zhuxun backup DEST` and `zhuxun restore SRC`: the command line of server/backup.py
(docs/operations.md has the schedule and the restore drill)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click


def _app() -> Any:
    from server.cli import load_app

    return load_app()


def _where(app: Any) -> str:
    from sqlalchemy import make_url

    return str(make_url(app.config["SQLALCHEMY_DATABASE_URI"]).render_as_string(hide_password=True))


@click.command("backup")
@click.argument("dest", type=click.Path(dir_okay=False, path_type=Path))
def backup_command(dest: Path) -> None:
    """Back the database up to DEST (SQLite: the online backup API; PostgreSQL: pg_dump's
    custom format), with DEST.json describing it. Safe while the server runs."""
    from server import backup
    from server.extensions import db

    app = _app()
    with app.app_context():
        try:
            manifest = backup.backup(
                db.engine,
                dest,
                schema=backup.schema_of(app.config.get("SQLALCHEMY_ENGINE_OPTIONS")),
            )
        except backup.BackupError as exc:
            raise click.ClickException(str(exc)) from exc
        finally:
            db.engine.dispose()
    click.echo(
        f"backed up {_where(app)} to {dest} ({manifest.size} bytes, {manifest.records} "
        f"records, schema {manifest.revision}, digest {manifest.pull_digest[:16]})"
    )


@click.command("restore")
@click.argument("source", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--yes", is_flag=True, help="overwrite the configured database without asking")
def restore_command(source: Path, yes: bool) -> None:
    """Restore SOURCE (made by `zhuxun backup`) over the configured database, then check it
    serves the same pull as the backup. Stop the server first."""
    from server import backup
    from server.extensions import db

    app = _app()
    with app.app_context():
        where = _where(app)
        if not source.is_file():
            raise click.ClickException(f"no backup file {source}")
        if not yes:
            raise click.ClickException(
                f"this replaces everything in {where} with {source}; stop the server, then "
                "run again with --yes"
            )
        try:
            manifest = backup.restore(db.engine, source)
        except backup.BackupError as exc:
            raise click.ClickException(str(exc)) from exc
        finally:
            db.engine.dispose()
    click.echo(
        f"restored {source} (taken {manifest.created_at}) into {where}: {manifest.records} "
        f"records; it serves the same pull as the backup (digest {manifest.pull_digest[:16]}). "
        "Run `zhuxun init-db` if this server's version is newer than the backup's schema "
        f"({manifest.revision})."
    )
