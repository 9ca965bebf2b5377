"""The database briefly unavailable: the production server (`zhuxun serve`) reaches
PostgreSQL through a TCP gate that drops every connection and refuses new ones for a moment,
as a database restart or failover does — once while nothing happens, then again and again
while tablets sync. The server answers 503 `database_unavailable` with Retry-After, never a
500; the tablets retry with their backoff, and nothing is lost or held twice."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from sync.batch import encode
from tests.builders import PASSWORD, make_change, visit_data
from tests.conftest import app_config
from tests.reliability.faults import TcpGate
from tests.reliability.support import (
    LONG,
    Database,
    Fleet,
    LoadResult,
    Served,
    assert_converged,
    pg_address,
    prepare_database,
    pull_everything,
    run_load,
    served_url,
    sync_until_quiet,
)

# (doctors, tablets per doctor, visits a round, rounds)
SIZE = (30, 2, 4, 4) if LONG else (10, 2, 2, 3)
# The database down OUTAGE_S, then up UP_S, OUTAGES times while the tablets sync.
OUTAGES, OUTAGE_S, UP_S = (8, 1.0, 2.0) if LONG else (4, 1.0, 2.0)
UNAVAILABLE = "database_unavailable"

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(900 if LONG else 300)]


@pytest.fixture
def database(tmp_path: Path, request: pytest.FixtureRequest) -> Database:
    return prepare_database(app_config("postgres", tmp_path, request), Fleet(SIZE[0]))


@pytest.fixture
def gate() -> Iterator[TcpGate]:
    relay = TcpGate(pg_address())
    try:
        yield relay
    finally:
        relay.close()


@pytest.fixture
def served(database: Database, gate: TcpGate, tmp_path: Path) -> Iterator[Served]:
    server = Served(
        served_url(database, port=gate.port, name="zhuxun-db-outage"),
        tmp_path / "server.log",
        workers=2,
        threads=4,
    )
    try:
        yield server.start()
    finally:
        server.stop()


def signed_in(url: str) -> dict[str, str]:
    login = requests.post(
        f"{url}/api/v1/auth/login", json={"username": "d1", "password": PASSWORD}, timeout=30
    )
    assert login.status_code == 200, login.text
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


def wait_until_answered(url: str, headers: dict[str, str]) -> requests.Response:
    """The database is back: the first answer that is not a 503 (within a few seconds)."""
    deadline = time.monotonic() + 20
    while True:
        answer = requests.get(f"{url}/api/v1/me", headers=headers, timeout=30)
        if answer.status_code != 503 or time.monotonic() > deadline:
            return answer
        time.sleep(0.1)


def test_requests_during_an_outage_get_503_in_the_envelope_and_change_nothing(
    served: Served, gate: TcpGate
) -> None:
    bearer = signed_in(served.url)
    change = make_change(visit_data())
    body = {"device_id": "tab-outage", "batch_id": "b" * 32, "changes": [change]}
    push_headers = {**bearer, "Content-Type": "application/json", "Content-Encoding": "gzip"}

    gate.outage(3.0)
    during = [
        requests.get(f"{served.url}/api/v1/me", headers=bearer, timeout=30),
        requests.post(
            f"{served.url}/api/v1/sync/push", data=encode(body), headers=push_headers, timeout=30
        ),
        requests.get(f"{served.url}/api/v1/sync/pull", headers=bearer, timeout=30),
    ]
    for answer in during:
        assert answer.status_code == 503, (answer.request.url, answer.status_code, answer.text)
        error = answer.json()["error"]
        assert error["code"] == UNAVAILABLE
        assert "nothing was changed" in error["message"]
        assert error["message_zh"] == "数据库暂时不可用，请稍后重试"
        assert int(answer.headers["Retry-After"]) > 0
    assert gate.dropped + gate.refused > 0

    assert wait_until_answered(served.url, bearer).status_code == 200
    pushed = requests.post(
        f"{served.url}/api/v1/sync/push", data=encode(body), headers=push_headers, timeout=30
    )
    assert pushed.status_code == 200, pushed.text
    [result] = pushed.json()["results"]
    assert (result["status"], result["version"]) == ("accepted", 1), "the 503 applied nothing"
    assert "unexpected error" not in served.log_text()


def test_tablets_syncing_through_repeated_outages_retry_and_lose_nothing(
    served: Served, gate: TcpGate, database: Database, tmp_path: Path
) -> None:
    doctors, per_doctor, visits, rounds = SIZE
    devices = tmp_path / "devices"
    devices.mkdir()
    finished = threading.Event()
    outages: list[float] = []

    def break_the_database() -> None:
        while len(outages) < OUTAGES and not finished.wait(UP_S):
            gate.outage(OUTAGE_S)
            outages.append(time.monotonic())
            finished.wait(OUTAGE_S)

    breaker = threading.Thread(target=break_the_database, daemon=True)
    result: LoadResult | None = None
    try:
        breaker.start()
        result = run_load(
            devices,
            lambda _i: served.url,
            Fleet(doctors),
            tablets_per_doctor=per_doctor,
            visits=visits,
            rounds=rounds,
            # Patience for a request caught by two outages in a row: ~10 s of backoff.
            max_attempts=12,
            backoff_s=0.1,
            max_backoff_s=2.0,
        )
        finished.set()
        breaker.join(timeout=30)
        print()
        print(result.report(f"{len(outages)} database outages of {OUTAGE_S} s during the load"))
        print(f"gate: {gate.dropped} connections dropped, {gate.refused} refused")
        assert not result.errors, "\n".join(result.errors[:10])
        unavailable = [c for c in result.log.calls if c.status == 503]
        assert unavailable, "no outage reached a tablet's request"
        assert {c.detail for c in unavailable} == {UNAVAILABLE}
        assert not result.log.server_errors(allowed=[UNAVAILABLE]), "a 5xx other than 503"
        assert "unexpected error" not in served.log_text(), "a 500 was answered"

        sync_until_quiet(result.tablets)
        on_server = pull_everything(served.url, "admin")
        assert_converged(result.tablets, on_server, rounds=rounds, visits=visits)
        expected = doctors * per_doctor * visits * rounds
        held = database.scalar("select count(*) from sync_records where collection = 'visits'")
        assert held == database.scalar("select count(*) from visits") == expected
        counter = database.scalar("select value from sync_counter")
        assert counter == database.scalar("select max(seq) from sync_records")
    finally:
        finished.set()
        for tablet in result.tablets if result else []:
            tablet.close()
