"""The evaluation queue across real processes (issue 14).

1. A `zhuxun serve` that keeps the evaluation out of its requests is killed (SIGKILL, the
   whole process group) after pushes committed and before anything judged them: after a
   restart, `zhuxun worker --once` judges them and the doctor's next pull carries the flags.
2. Two `zhuxun serve` on one PostgreSQL and a `zhuxun worker` drain one queue at once (the
   servers settle each pulling doctor's own entries, the worker everything): every entry is
   leased exactly once (a trigger in the test's schema writes down each lease), none is
   left, and the stored flags are what a full evaluation gives.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import requests
from requests.adapters import HTTPAdapter
from sqlalchemy import create_engine, text
from urllib3.util.retry import Retry

from tests.builders import PASSWORD, VILLAGE_A1, VILLAGE_A2, make_change, posting_day, visit_data
from tests.conftest import app_config, make_app
from tests.reliability.support import (
    ZHUXUN,
    Database,
    Fleet,
    Served,
    prepare_database,
    served_url,
)

POSTING_WEEK_KEY = "posting.days_per_week|assignment|A2|2026-W02"

pytestmark = pytest.mark.timeout(300)


def _session(url: str, username: str) -> requests.Session:
    http = requests.Session()
    # gunicorn closes a kept-alive connection idle for 2 s; a request sent on it just then is
    # reset (seen once here under load while the worker started). Sent again once: pulls
    # are reads and pushes are exactly-once by their change ids.
    http.mount("http://", HTTPAdapter(max_retries=Retry(total=2, allowed_methods=None,
                                                        status=0, backoff_factor=0.1)))  # fmt: skip
    answer = http.post(
        f"{url}/api/v1/auth/login", json={"username": username, "password": PASSWORD}, timeout=60
    )
    assert answer.status_code == 200, answer.text
    http.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"
    return http


def _push(http: requests.Session, url: str, *changes: dict[str, Any]) -> None:
    body = {"device_id": f"dev-{uuid.uuid4().hex[:8]}", "batch_id": uuid.uuid4().hex,
            "changes": list(changes)}  # fmt: skip
    answer = http.post(f"{url}/api/v1/sync/push", json=body, timeout=120)
    assert answer.status_code == 200, answer.text
    assert all(r["status"] == "accepted" for r in answer.json()["results"]), answer.text


def _pulled_flags(http: requests.Session, url: str) -> dict[str, Any]:
    flags: dict[str, Any] = {}
    cursor = None
    while True:
        params = {"cursor": cursor} if cursor else {}
        answer = http.get(f"{url}/api/v1/sync/pull", params=params, timeout=120)
        assert answer.status_code == 200, answer.text
        page = answer.json()
        flags.update({c["id"]: c["data"] for c in page["changes"] if c["collection"] == "flags"})
        cursor = page["cursor"]
        if not page["has_more"]:
            return flags


def _worker(database_url: str, env: dict[str, str], log: Path, *args: str) -> Any:
    full_env = dict(os.environ, ZHUXUN_ENV="development", ZHUXUN_DATABASE_URL=database_url,
                    ZHUXUN_SECRET_KEY=uuid.uuid4().hex * 2, **env)  # fmt: skip
    with log.open("ab") as out:
        return subprocess.Popen(
            [str(ZHUXUN), "worker", *args], env=full_env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip


def test_the_queue_survives_a_kill_between_commit_and_evaluation(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    app = make_app(app_config("sqlite", tmp_path, request))
    from server.extensions import db

    with app.app_context():
        db.engine.dispose()
    db_file = tmp_path / "zhuxun.sqlite3"
    env = {"ZHUXUN_RULES_AS_OF": "2026-01-11", "ZHUXUN_EVALUATION": "worker"}
    first = Served(f"sqlite:///{db_file}", tmp_path / "first.log", workers=1, threads=2, env=env)
    first.start()
    try:
        d2 = _session(first.url, "d2")
        _push(d2, first.url, *(make_change(posting_day(day)) for day in (5, 6, 7, 8)))
    finally:
        first.kill()  # SIGKILL: the pushes committed, nothing judged them
    with sqlite3.connect(db_file) as conn:
        assert conn.execute("SELECT doctor_id FROM evaluation_queue").fetchall() == [("D2",)]
        assert conn.execute("SELECT count(*) FROM flags WHERE key = ?",
                            (POSTING_WEEK_KEY,)).fetchone() == (0,)  # fmt: skip

    worker = _worker(f"sqlite:///{db_file}", env, tmp_path / "worker.log", "--once")
    assert worker.wait(timeout=120) == 0, (tmp_path / "worker.log").read_text()
    with sqlite3.connect(db_file) as conn:
        assert conn.execute("SELECT count(*) FROM evaluation_queue").fetchone() == (0,)

    second = Served(f"sqlite:///{db_file}", tmp_path / "second.log", workers=1, threads=2,
                    env=env)  # fmt: skip
    second.start()
    try:
        flags = _pulled_flags(_session(second.url, "d2"), second.url)
    finally:
        second.stop()
    assert flags[POSTING_WEEK_KEY]["measured"] == 4
    assert flags[POSTING_WEEK_KEY]["state"] == "open"


# -- two app servers and a worker -----------------------------------------------------------

DOCTORS = 12
WEEKS = (5, 12, 19)  # 2026-01-05, -12, -19: three ISO weeks a doctor
AS_OF = "2026-02-01"

AUDIT = """
CREATE TABLE lease_audit (doctor_id text, week date, generation int, lease text);
CREATE FUNCTION audit_lease() RETURNS trigger AS $$
BEGIN
  IF NEW.lease IS NOT NULL AND NEW.lease IS DISTINCT FROM OLD.lease THEN
    INSERT INTO lease_audit VALUES (NEW.doctor_id, NEW.week, NEW.generation, NEW.lease);
  END IF;
  RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER evaluation_queue_leases AFTER UPDATE ON evaluation_queue
  FOR EACH ROW EXECUTE FUNCTION audit_lease();
"""


def _run_sql(database: Database, sql: str) -> list[Any]:
    engine = create_engine(database.url, **database.engine_options)
    try:
        with engine.begin() as conn:
            result = conn.execute(text(sql))
            return list(result) if result.returns_rows else []
    finally:
        engine.dispose()


@pytest.fixture
def database(tmp_path: Path, request: pytest.FixtureRequest) -> Database:
    return prepare_database(app_config("postgres", tmp_path, request), Fleet(DOCTORS))


@pytest.fixture
def servers(database: Database, tmp_path: Path) -> Iterator[list[Served]]:
    secret = uuid.uuid4().hex * 2
    env = {"ZHUXUN_RULES_AS_OF": AS_OF, "ZHUXUN_EVALUATION": "worker"}
    started: list[Served] = []
    try:
        for n in range(2):
            server = Served(served_url(database, name=f"zhuxun-queue-{n}"),
                            tmp_path / f"server{n}.log", workers=2, threads=2, secret=secret,
                            env=env)  # fmt: skip
            started.append(server.start())
        yield started
    finally:
        for server in started:
            server.stop()


def _patrol_visit(doctor: str, assignment: str, day: int, hour: int) -> dict[str, Any]:
    return visit_data(
        doctor=doctor, assignment=assignment, place=VILLAGE_A1 if hour < 12 else VILLAGE_A2,
        check_in=f"2026-01-{day:02d}T{hour:02d}:00:00+08:00",
        check_out=f"2026-01-{day:02d}T{hour + 4:02d}:30:00+08:00",
        recorded_at=f"2026-01-{day:02d}T{hour + 5:02d}:00:00+08:00",
    )  # fmt: skip


@pytest.mark.postgres
def test_two_app_servers_and_a_worker_drain_one_queue_without_double_work_or_loss(
    database: Database, servers: list[Served], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    _run_sql(database, AUDIT)
    fleet = Fleet(DOCTORS)
    sessions = {}
    for n in range(DOCTORS):
        username, doctor, assignment = fleet.doctor(n)
        url = servers[n % 2].url
        sessions[n] = (_session(url, username), url)
        for monday in WEEKS:  # one push a week, through alternating servers
            visits = [_patrol_visit(doctor, assignment, monday + n % 3, 8)]
            visits += [_patrol_visit(doctor, assignment, monday + 1 + n % 4, 13)]
            http, _ = sessions[n]
            _push(http, servers[(n + monday) % 2].url, *(make_change(v) for v in visits))
    entries = DOCTORS * len(WEEKS)
    assert _run_sql(database, "SELECT count(*) FROM evaluation_queue")[0][0] == entries

    worker = _worker(served_url(database, name="zhuxun-queue-worker"),
                     {"ZHUXUN_RULES_AS_OF": AS_OF}, tmp_path / "worker.log", "--idle", "0.05", "--batch", "3")  # fmt: skip
    deadline = time.monotonic() + 60
    while "worker: judging" not in (tmp_path / "worker.log").read_text():
        assert worker.poll() is None and time.monotonic() < deadline, "the worker did not start"
        time.sleep(0.1)
    errors: list[str] = []

    def pull(n: int) -> None:
        http, _ = sessions[n]
        try:
            for server in servers:  # a pull through each server: both settle this doctor's
                _pulled_flags(http, server.url)
        except AssertionError as exc:  # pragma: no cover - reported below
            errors.append(str(exc))

    threads = [threading.Thread(target=pull, args=(n,)) for n in range(DOCTORS)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=240)
        deadline = time.monotonic() + 120
        while _run_sql(database, "SELECT count(*) FROM evaluation_queue")[0][0]:
            assert time.monotonic() < deadline, "the queue was not drained"
            time.sleep(0.2)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    assert errors == []
    leases = _run_sql(database, "SELECT doctor_id, week, generation FROM lease_audit")
    assert len(leases) == entries, "each entry leased once: no double work"
    assert len(set(leases)) == entries, "and every entry leased: none lost"
    worker_log = (tmp_path / "worker.log").read_text()
    assert "worker done" in worker_log  # it stopped cleanly on SIGTERM

    # The stored doctors' flags are a full evaluation's: judging everything again changes none.
    from server.app import create_app
    from server.extensions import db
    from server.flags import evaluate_all

    config = {**app_config("postgres", tmp_path, request), "ZHUXUN_RULES_AS_OF": AS_OF}
    app = create_app(config)
    with app.app_context():
        changes = evaluate_all(db.session, ruleset=app.config["ZHUXUN_RULESET"],
                               as_of=date.fromisoformat(AS_OF), cause="check")  # fmt: skip
        from sqlalchemy import select

        from server.models import FlagRecord

        fleet_ids = [fleet.doctor(n)[1] for n in range(DOCTORS)]
        doctor_keys = list(
            db.session.scalars(
                select(FlagRecord.key).where(
                    FlagRecord.key.in_(changes.keys),
                    FlagRecord.doctor_id.in_(fleet_ids),
                    # the pushed weeks (2026-W02..W04): no write touched the others
                    FlagRecord.scope_start <= date(2026, 1, 25),
                    FlagRecord.scope_end >= date(2026, 1, 5),
                )
            )
        )
        db.session.remove()
        db.engine.dispose()
    assert doctor_keys == []
