"""`zhuxun backup DEST` and `zhuxun restore SRC` (issue 15; docs/operations.md).

- SQLite: the online backup API (sqlite3's `Connection.backup`), which copies a consistent
  snapshot while devices keep pushing (in WAL mode readers and the one writer do not block
  each other); the copy is written beside DEST and renamed into place when complete.
- PostgreSQL: `pg_dump --format=custom`, run on a snapshot exported from a REPEATABLE READ
  transaction, so the manifest's digest (below) is of exactly what the dump holds. The
  pg_dump and pg_restore on the machine must be at least the server's major version
  (pg_dump refuses a newer server; we say so first, in plain words).

Every backup writes DEST.json beside it, the manifest: the backend, when, the schema
revision, how many sync records and the digest of what a pull serves (every sync record as
pull sends it, in key order). `restore` restores and then computes the digest of the
restored database: the restore is only reported done when it serves the same pull.

No Flask here: the functions take a SQLAlchemy engine.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, text

MANIFEST_SUFFIX = ".json"
PG_MAGIC = b"PGDMP"
SQLITE_MAGIC = b"SQLite format 3\x00"


class BackupError(RuntimeError):
    """A backup or restore that cannot be done or did not check out; the message says why."""


@dataclass(frozen=True, slots=True)
class Manifest:
    backend: str  # sqlite | postgresql
    created_at: str
    revision: str | None
    records: int
    max_seq: int
    pull_digest: str
    file: str
    size: int
    pg_dump: str | None = None
    server_version: str | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def of(
        cls, backend: str, dest: Path, revision: str | None, served: tuple[str, int, int],
        **tools: str | None,
    ) -> Manifest:  # fmt: skip
        """The manifest of a backup just moved to `dest`; `served` is `pull_digest`'s
        (digest, records, max seq) of the copy."""
        digest, count, max_seq = served
        return cls(
            backend=backend,
            created_at=datetime.now(UTC).isoformat(),
            revision=revision,
            records=count,
            max_seq=max_seq,
            pull_digest=digest,
            file=dest.name,
            size=dest.stat().st_size,
            **tools,
        )

    @classmethod
    def read(cls, path: Path) -> Manifest:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(**data)
        except (OSError, ValueError, TypeError) as exc:
            raise BackupError(f"cannot read the backup's manifest {path}: {exc}") from exc


def manifest_path(dest: Path) -> Path:
    return dest.with_name(dest.name + MANIFEST_SUFFIX)


# --- what a pull serves ------------------------------------------------------------------


def pull_digest(connection: Connection) -> tuple[str, int, int]:
    """SHA-256 of every sync record as pull serves it (collection, id, version, deleted,
    seq, data), in key order; with the count and the highest seq. Two databases with the
    same digest answer every pull alike."""
    digest = hashlib.sha256()
    count = max_seq = 0
    rows = connection.execute(
        text(
            "SELECT collection, id, version, deleted, seq, data FROM sync_records "
            "ORDER BY collection, id"
        )
    )
    for collection, record_id, version, deleted, seq, data in rows:
        if isinstance(data, str | bytes):
            data = json.loads(data)
        line = json.dumps(
            [collection, record_id, version, bool(deleted), seq, data],
            sort_keys=True,
            ensure_ascii=False,
            separators=(",", ":"),
        )
        digest.update(line.encode())
        digest.update(b"\n")
        count += 1
        max_seq = max(max_seq, int(seq))
    return digest.hexdigest(), count, max_seq


def _revision(connection: Connection) -> str | None:
    try:
        return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except Exception:  # noqa: BLE001 - a database never migrated has no revision
        return None


# --- SQLite ------------------------------------------------------------------------------


def _sqlite_path(engine: Engine) -> Path:
    database = engine.url.database
    if not database or database == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up")
    return Path(database)


def _sqlite_backup(engine: Engine, dest: Path) -> Manifest:
    source_path = _sqlite_path(engine)
    if not source_path.exists():
        raise BackupError(f"the database {source_path} does not exist")
    partial = dest.with_name(dest.name + ".part")
    partial.unlink(missing_ok=True)
    source = sqlite3.connect(source_path, timeout=30)
    target = sqlite3.connect(partial)
    try:
        # One step (pages=-1): the copy is one read transaction's snapshot, however many
        # pushes commit meanwhile.
        source.backup(target, pages=-1)
    finally:
        source.close()
        target.close()
    # The manifest describes the copy itself, read back from the file.
    from sqlalchemy import create_engine

    copy = create_engine(f"sqlite:///{partial}")
    try:
        with copy.connect() as connection:
            served = pull_digest(connection)
            revision = _revision(connection)
    finally:
        copy.dispose()
    os.replace(partial, dest)
    return Manifest.of("sqlite", dest, revision, served)


def _sqlite_restore(engine: Engine, source: Path) -> None:
    with source.open("rb") as handle:
        if handle.read(len(SQLITE_MAGIC)) != SQLITE_MAGIC:
            raise BackupError(f"{source} is not a SQLite backup")
    target_path = _sqlite_path(engine)
    engine.dispose()  # no pooled connection of ours keeps the old pages
    backup = sqlite3.connect(source)
    target = sqlite3.connect(target_path, timeout=30)
    try:
        backup.backup(target, pages=-1)
    finally:
        backup.close()
        target.close()


# --- PostgreSQL --------------------------------------------------------------------------


def _libpq_url(engine: Engine) -> str:
    """The engine's URL as libpq reads it (no SQLAlchemy driver name)."""
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


def schema_of(engine_options: dict[str, Any] | None) -> str | None:
    """The schema the app works in when its connections set a search_path (the tests, or
    a database shared with other applications), from SQLALCHEMY_ENGINE_OPTIONS; the dump
    then holds that schema only."""
    options = ((engine_options or {}).get("connect_args") or {}).get("options") or ""
    found = re.search(r"search_path\s*=\s*([A-Za-z0-9_]+)", options)
    return found[1] if found else None


def _tool_version(tool: str) -> tuple[int, str]:
    path = shutil.which(tool)
    if path is None:
        raise BackupError(f"{tool} is not installed; install the PostgreSQL client tools")
    out = subprocess.run([path, "--version"], capture_output=True, text=True, check=True).stdout
    found = re.search(r"(\d+)(?:\.(\d+))?", out)
    if found is None:
        raise BackupError(f"cannot read the version of {tool}: {out.strip()!r}")
    return int(found[1]), out.strip()


def _server_version(connection: Connection) -> tuple[int, str]:
    number = int(connection.execute(text("SHOW server_version_num")).scalar() or 0)
    return number // 10000, str(connection.execute(text("SHOW server_version")).scalar())


def check_pg_tools(connection: Connection, *tools: str) -> tuple[str, str]:
    """Refuse tools older than the server: pg_dump cannot dump a newer server, and the
    message it gives is not one an operator reads at 2 a.m."""
    server_major, server = _server_version(connection)
    described = ""
    for tool in tools:
        major, described = _tool_version(tool)
        if major < server_major:
            raise BackupError(
                f"{tool} is version {major} but the server is {server_major} ({server}): "
                f"install the PostgreSQL {server_major} client tools "
                f"(e.g. postgresql-client-{server_major})"
            )
    return described, server


def _run(command: list[str], what: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BackupError(f"{what} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")


def _pg_backup(engine: Engine, dest: Path, schema: str | None) -> Manifest:
    partial = dest.with_name(dest.name + ".part")
    partial.unlink(missing_ok=True)
    with engine.connect() as plain:
        connection = plain.execution_options(isolation_level="REPEATABLE READ")
        with connection.begin():
            tool, server = check_pg_tools(connection, "pg_dump")
            snapshot = connection.execute(text("SELECT pg_export_snapshot()")).scalar()
            served = pull_digest(connection)
            revision = _revision(connection)
            command = [
                "pg_dump",
                "--format=custom",
                "--no-owner",
                f"--snapshot={snapshot}",
                f"--file={partial}",
            ]
            if schema:
                command.append(f"--schema={schema}")
            _run([*command, f"--dbname={_libpq_url(engine)}"], "pg_dump")
    os.replace(partial, dest)
    return Manifest.of("postgresql", dest, revision, served, pg_dump=tool, server_version=server)


def _pg_restore(engine: Engine, source: Path) -> None:
    with source.open("rb") as handle:
        if handle.read(len(PG_MAGIC)) != PG_MAGIC:
            raise BackupError(f"{source} is not a pg_dump custom-format backup")
    with engine.connect() as connection:
        check_pg_tools(connection, "pg_restore")
    engine.dispose()
    command = [
        "pg_restore",
        "--clean",
        "--if-exists",
        "--no-owner",
        "--single-transaction",
        "--exit-on-error",
    ]
    # No --schema: a dump of one schema holds that schema's own CREATE SCHEMA, which
    # pg_restore --schema would leave out.
    _run([*command, f"--dbname={_libpq_url(engine)}", str(source)], "pg_restore")


# --- the two commands --------------------------------------------------------------------


def backup(engine: Engine, dest: Path, *, schema: str | None = None) -> Manifest:
    """Back the database up to DEST and write DEST.json; returns the manifest."""
    dest = Path(dest)
    if dest.is_dir():
        raise BackupError(f"{dest} is a directory: name the backup file")
    dest.parent.mkdir(parents=True, exist_ok=True)
    name = engine.dialect.name
    if name == "sqlite":
        manifest = _sqlite_backup(engine, dest)
    elif name == "postgresql":
        manifest = _pg_backup(engine, dest, schema)
    else:
        raise BackupError(f"no backup for a {name} database")
    manifest_path(dest).write_text(manifest.to_json(), encoding="utf-8")
    return manifest


def restore(engine: Engine, source: Path) -> Manifest:
    """Restore SOURCE over the database, then check the restored database serves the
    pull the manifest describes. Raises `BackupError` when it does not. (A PostgreSQL
    dump of one schema restores into that schema.)"""
    source = Path(source)
    if not source.is_file():
        raise BackupError(f"no backup file {source}")
    manifest = Manifest.read(manifest_path(source))
    name = engine.dialect.name
    if name != manifest.backend:
        raise BackupError(f"{source} is a {manifest.backend} backup; this database is {name}")
    if name == "sqlite":
        _sqlite_restore(engine, source)
    else:
        _pg_restore(engine, source)
    with engine.connect() as connection:
        digest, count, _max_seq = pull_digest(connection)
    if (digest, count) != (manifest.pull_digest, manifest.records):
        raise BackupError(
            f"the restored database does not serve the backup's pull: {count} records "
            f"(digest {digest[:12]}) where the backup had {manifest.records} "
            f"({manifest.pull_digest[:12]})"
        )
    advance_counter(engine)
    return manifest


# Devices that synced after the backup hold pull cursors past the restored database's last
# sequence number; new changes must be numbered past every such cursor, or those devices
# would never pull them. A county writes far fewer changes than this between two backups.
COUNTER_JUMP = 1_000_000_000


def advance_counter(engine: Engine) -> int:
    """Move the sync counter past any cursor a device may hold; returns the new value."""
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE sync_counter SET value = value + :jump"), {"jump": COUNTER_JUMP}
        )
        return int(connection.execute(text("SELECT max(value) FROM sync_counter")).scalar() or 0)


def describe(manifest: Manifest) -> dict[str, Any]:
    return asdict(manifest)
