"""`zhuxun backup` and `zhuxun restore` (server/backup.py): a backup taken while ten devices
push restores to a database that serves the pull the backup's manifest describes, on SQLite
and PostgreSQL; a restore that does not serve it is refused; the command line."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, make_url, text

from tests.builders import VILLAGE_A1, VILLAGE_B1, make_change, visit_data
from tests.conftest import PG_URL, Api, LiveServer

DEVICES = 10
# (user, doctor, assignment, place) of the doctors of county 450999 in the small scenario.
WRITERS = [
    ("d1", "D1", "A1", VILLAGE_A1),
    ("d2", "D2", "A2", VILLAGE_A1),
    ("d3", "D3", "A3", VILLAGE_B1),
]


class Pushers:
    """Ten devices pushing visits in a loop until stopped; every answer must be 200."""

    def __init__(self, base: str) -> None:
        self.stop = threading.Event()
        self.failures: list[str] = []
        self.batches = 0
        self.lock = threading.Lock()
        self.threads = []
        for n in range(DEVICES):
            user, doctor, assignment, place = WRITERS[n % len(WRITERS)]
            api = Api(base, user)
            api.device_id = f"tablet-{n}"
            fields = dict(doctor=doctor, assignment=assignment, place=place)
            if doctor == "D2":
                fields["kind"] = "posting"
            self.threads.append(threading.Thread(target=self._run, args=(api, fields)))
        for thread in self.threads:
            thread.start()

    def _run(self, api: Api, fields: dict[str, Any]) -> None:
        while not self.stop.is_set():
            changes = [make_change(visit_data(**fields, patients=n)) for n in range(5)]
            body = {"device_id": api.device_id, "batch_id": uuid.uuid4().hex, "changes": changes}
            answer = api.push_raw(body)
            with self.lock:
                if answer.status_code != 200:
                    self.failures.append(f"{answer.status_code} {answer.text[:200]}")
                self.batches += 1

    def wait_for(self, batches: int) -> None:
        while True:
            with self.lock:
                if self.batches >= batches or self.failures:
                    return
            self.stop.wait(0.05)

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=60)


@pytest.fixture
def restored_config(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[dict[str, Any]]:
    """The configuration of an empty database to restore into: another SQLite file, or
    another PostgreSQL database (the dump recreates the test's schema in it)."""
    from tests.conftest import app_config

    config = app_config(backend, tmp_path / "restored", request)
    if backend == "sqlite":
        (tmp_path / "restored").mkdir()
        yield config
        return
    name = f"r_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    config["SQLALCHEMY_DATABASE_URI"] = (
        make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    )
    try:
        yield config
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _visits(base: str) -> dict[str, dict[str, Any]]:
    changes, _cursor = Api(base, "admin").pull_all(limit=2000)
    return {c["id"]: c for c in changes if c["collection"] == "visits"}


def test_a_backup_taken_while_ten_devices_push_restores_to_the_same_pull(
    app: Any, live: LiveServer, restored_config: dict[str, Any], tmp_path: Path
) -> None:
    from server import backup
    from server.app import create_app
    from server.extensions import db

    before = _visits(live.url)
    pushers = Pushers(live.url)
    try:
        pushers.wait_for(3 * DEVICES)
        with app.app_context():
            schema = backup.schema_of(app.config.get("SQLALCHEMY_ENGINE_OPTIONS"))
            manifest = backup.backup(db.engine, tmp_path / "zhuxun.backup", schema=schema)
        taken_at = pushers.batches
        pushers.wait_for(taken_at + 3 * DEVICES)
    finally:
        pushers.finish()
    assert pushers.failures == []
    assert pushers.batches > taken_at  # the devices kept pushing after the backup
    after = _visits(live.url)

    restored_app = create_app(restored_config)
    with restored_app.app_context():
        got = backup.restore(db.engine, tmp_path / "zhuxun.backup")
        with db.engine.connect() as connection:
            assert backup.pull_digest(connection)[0] == manifest.pull_digest
            counter = connection.execute(text("SELECT value FROM sync_counter")).scalar()
        db.session.remove()
    assert got == manifest
    # New changes are numbered past every cursor a device took after the backup.
    assert counter >= manifest.max_seq + backup.COUNTER_JUMP
    restored_server = LiveServer(restored_app)
    try:
        restored = _visits(restored_server.url)
    finally:
        restored_server.stop()
        with restored_app.app_context():
            db.engine.dispose()

    # The restored pull is a moment of the original's: everything pushed before the backup
    # began, as the original serves it, and none of what came after the last push it holds.
    assert set(before) <= set(restored)
    assert len(before) < len(restored) < len(after)
    assert all(after[key] == change for key, change in restored.items())
    assert manifest.records > len(restored)  # places, doctors, flags… are in the digest too


def test_a_restore_that_does_not_serve_the_backups_pull_is_refused(
    app: Any, tmp_path: Path
) -> None:
    from server import backup
    from server.extensions import db

    dest = tmp_path / "zhuxun.backup"
    with app.app_context():
        schema = backup.schema_of(app.config.get("SQLALCHEMY_ENGINE_OPTIONS"))
        backup.backup(db.engine, dest, schema=schema)
        manifest = backup.manifest_path(dest)
        manifest.write_text(
            manifest.read_text().replace('"pull_digest": "', '"pull_digest": "0'),
            encoding="utf-8",
        )
        with pytest.raises(backup.BackupError, match="does not serve the backup's pull"):
            backup.restore(db.engine, dest)


@pytest.mark.parametrize("backend", ["sqlite"])
def test_backup_and_restore_on_the_command_line(app: Any, tmp_path: Path, monkeypatch: Any) -> None:
    from server.backup_cli import backup_command, restore_command

    monkeypatch.setenv("ZHUXUN_DATABASE_URL", app.config["SQLALCHEMY_DATABASE_URI"])
    monkeypatch.setenv("ZHUXUN_ENV", "test")
    runner = CliRunner()
    dest = tmp_path / "nightly" / "zhuxun.sqlite3.backup"
    done = runner.invoke(backup_command, [str(dest)])
    assert done.exit_code == 0, done.output
    assert "records" in done.output and dest.exists()
    assert backup_manifest_records(dest) > 0

    refused = runner.invoke(restore_command, [str(dest)])
    assert refused.exit_code != 0
    assert "--yes" in refused.output  # it says what it would overwrite and how to go on

    restored = runner.invoke(restore_command, [str(dest), "--yes"])
    assert restored.exit_code == 0, restored.output
    assert "serves the same pull" in restored.output

    missing = runner.invoke(restore_command, [str(tmp_path / "nothing"), "--yes"])
    assert missing.exit_code != 0
    assert "Error: no backup file" in missing.output
    assert "Traceback" not in missing.output


def test_tools_older_than_the_server_are_refused_in_plain_words(monkeypatch: Any) -> None:
    from server import backup

    class Connection:
        def execute(self, statement: Any) -> Any:
            value = "170002" if "num" in str(statement) else "17.2"

            class Result:
                def scalar(self) -> str:
                    return value

            return Result()

    monkeypatch.setattr(backup, "_tool_version", lambda tool: (15, f"{tool} (PostgreSQL) 15.20"))
    with pytest.raises(backup.BackupError, match="postgresql-client-17"):
        backup.check_pg_tools(Connection(), "pg_dump")  # type: ignore[arg-type]


def backup_manifest_records(dest: Path) -> int:
    from server.backup import Manifest, manifest_path

    return Manifest.read(manifest_path(dest)).records
