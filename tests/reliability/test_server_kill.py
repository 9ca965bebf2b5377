"""A real `zhuxun serve` (gunicorn, 2 workers) on SQLite, killed with SIGKILL — master and
workers at once, through the process group — while it applies a large push. After a restart
the device resends every batch unchanged: each visit is held exactly once, none is lost, the
answers of the batches answered before the kill come back byte for byte, and SQLite's
`PRAGMA integrity_check` says ok."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from sync.batch import encode
from tests.builders import PASSWORD, make_change, visit_data
from tests.conftest import app_config, make_app
from tests.reliability.support import LONG, Served

BATCH = 500  # the protocol's largest batch


@pytest.fixture
def served(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Served]:
    config = app_config("sqlite", tmp_path, request)
    app = make_app(config)
    from server.extensions import db

    with app.app_context():
        db.engine.dispose()
    server = Served(
        f"sqlite:///{tmp_path / 'zhuxun.sqlite3'}", tmp_path / "server.log", workers=2, threads=2
    )
    try:
        yield server
    finally:
        server.stop()
        server.kill()


def _login(url: str) -> str:
    answer = requests.post(
        f"{url}/api/v1/auth/login", json={"username": "d1", "password": PASSWORD}, timeout=30
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


def _push(url: str, token: str, body: dict[str, Any], timeout: float = 120) -> requests.Response:
    return requests.post(
        f"{url}/api/v1/sync/push",
        data=encode(body),
        timeout=timeout,
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
        },
    )


def _batches(count: int) -> list[dict[str, Any]]:
    # Visits spread over many days, so the flag re-evaluation after each push has work too.
    return [
        {
            "device_id": "tab-kill",
            "batch_id": uuid.uuid4().hex,
            "changes": [
                make_change(
                    visit_data(
                        patients=(b * BATCH + n) % 40,
                        check_in=f"2026-03-{1 + n % 28:02d}T08:00:00+08:00",
                        check_out=f"2026-03-{1 + n % 28:02d}T12:00:00+08:00",
                    )
                )
                for n in range(BATCH)
            ],
        }
        for b in range(count)
    ]


@pytest.mark.parametrize("kill_after_s", [0.05, 0.3, 0.8] if LONG else [0.3])
def test_a_server_killed_mid_push_loses_nothing_and_applies_nothing_twice(
    served: Served, kill_after_s: float
) -> None:
    served.start()
    token = _login(served.url)
    # Five batches, so the kill lands while one is in flight however fast pushes get.
    batches = _batches(5)
    answers: dict[int, dict[str, Any]] = {}
    errors: dict[int, str] = {}
    in_flight = threading.Event()

    def device() -> None:
        for number, body in enumerate(batches):
            if number == 1:
                in_flight.set()
            try:
                answer = _push(served.url, token, body)
            except requests.RequestException as exc:
                errors[number] = type(exc).__name__
                return
            assert answer.status_code == 200, answer.text
            answers[number] = answer.json()

    pusher = threading.Thread(target=device)
    pusher.start()
    assert in_flight.wait(120), "the first batch was never answered"
    time.sleep(kill_after_s)
    served.kill()
    pusher.join(timeout=60)
    assert 0 in answers, "the first batch was answered before the kill"
    assert errors, f"the kill came after every push was answered ({sorted(answers)})"

    served.start()
    token = _login(served.url)
    for number, body in enumerate(batches):
        again = _push(served.url, token, body)
        assert again.status_code == 200, again.text
        results = again.json()["results"]
        if number in answers:
            assert results == answers[number]["results"], "a resent batch is answered the same"
        assert {(r["status"], r["version"]) for r in results} == {("accepted", 1)}

    sent = {c["id"] for body in batches for c in body["changes"]}
    held: dict[str, int] = {}
    cursor = ""
    while True:
        page = requests.get(
            f"{served.url}/api/v1/sync/pull",
            params={"cursor": cursor, "limit": 5000},
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        ).json()
        for change in page["changes"]:
            if change["collection"] == "visits":
                assert change["id"] not in held, "a visit pulled twice"
                held[change["id"]] = change["version"]
        cursor = page["cursor"]
        if not page["has_more"]:
            break
    assert set(held) == sent
    assert set(held.values()) == {1}

    served.stop()
    database = served.database_url.removeprefix("sqlite:///")
    with contextlib.closing(sqlite3.connect(database)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        visits = conn.execute("select count(*) from sync_records where collection = 'visits'")
        assert visits.fetchone()[0] == len(sent)
        projected = conn.execute("select count(*) from visits").fetchone()[0]
        assert projected == len(sent), "the typed visits table matches the sync records"
        top = conn.execute("select max(seq) from sync_records").fetchone()[0]
        counter = conn.execute("select value from sync_counter").fetchone()[0]
        assert counter == top, "the counter and the records agree after the crash"
