"""More than one server: two `zhuxun serve` processes on different ports share one
PostgreSQL, and the tablets reach them through a round-robin load balancer (the fault
proxy), so consecutive requests of one tablet — a sign-in, a push, its retry, the next pull
page — land on different servers, some of them lost, cut, duplicated or raced to both at
once. Nothing is lost, nothing is held twice, no pull skips a change: nothing a request
needs lives in one server's memory (docs/scaling.md)."""

from __future__ import annotations

import json
import random
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.builders import PASSWORD
from tests.conftest import app_config
from tests.reliability.faults import (
    Exchange,
    Fault,
    FaultProxy,
    cut_body,
    drop_request,
    drop_response,
    duplicate,
    passthrough,
    race,
)
from tests.reliability.support import (
    LONG,
    CallLog,
    Database,
    Fleet,
    LoadResult,
    Served,
    Watcher,
    assert_converged,
    prepare_database,
    pull_everything,
    run_load,
    served_url,
    sync_until_quiet,
)

PUSH, PULL = "/api/v1/sync/push", "/api/v1/sync/pull"
# (doctors, tablets per doctor, visits a round, rounds)
SIZE = (50, 2, 4, 4) if LONG else (20, 2, 2, 3)
SERVERS = 2

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(1200 if LONG else 300)]


@pytest.fixture
def database(tmp_path: Path, request: pytest.FixtureRequest) -> Database:
    return prepare_database(app_config("postgres", tmp_path, request), Fleet(SIZE[0]))


@pytest.fixture
def servers(database: Database, tmp_path: Path) -> Iterator[list[Served]]:
    secret = uuid.uuid4().hex * 2  # one site: every app server signs with the same key
    started: list[Served] = []
    try:
        for n in range(SERVERS):
            server = Served(
                served_url(database, name=f"zhuxun-multi-{n}"),
                tmp_path / f"server{n}.log",
                workers=2,
                threads=2,
                secret=secret,
            )
            started.append(server.start())
        yield started
    finally:
        for server in started:
            server.stop()


def faults(count: int, seed: int, *kinds: Fault) -> list[Fault]:
    """`count` faults for consecutive requests, about one in four of them one of `kinds`."""
    rng = random.Random(seed)
    return [rng.choice(kinds) if rng.random() < 0.25 else passthrough() for _ in range(count)]


def test_tablets_switching_between_two_servers_under_faults_lose_nothing_and_skip_nothing(
    servers: list[Served], database: Database, tmp_path: Path
) -> None:
    doctors, per_doctor, visits, rounds = SIZE
    balancer = FaultProxy([s.url for s in servers])
    push_faults = (drop_response(40), cut_body(10), drop_request(200), duplicate(), race())
    balancer.plan(PUSH, *faults(doctors * per_doctor * rounds, 6, *push_faults))
    balancer.plan(PULL, *faults(doctors * per_doctor * rounds, 7, cut_body(10), race()))
    watcher_log = CallLog()
    watcher = Watcher(balancer.url, "admin", watcher_log)
    stop = threading.Event()
    follower = threading.Thread(target=watcher.follow, args=(stop,), daemon=True)
    follower.start()
    devices = tmp_path / "devices"
    devices.mkdir()
    result: LoadResult | None = None
    try:
        result = run_load(
            devices,
            lambda _i: balancer.url,
            Fleet(doctors),
            tablets_per_doctor=per_doctor,
            visits=visits,
            rounds=rounds,
        )
        stop.set()
        follower.join(timeout=120)
        print()
        print(result.report(f"{SERVERS} servers (2 workers x 2 threads each) behind faults"))
        assert not result.errors, "\n".join(result.errors[:10])
        assert not watcher.errors, watcher.errors

        sync_until_quiet(result.tablets)
        watcher.pull()
        for log in (result.log, watcher_log):
            assert not log.server_errors(), log.server_errors()[:10]
        for server in servers:
            assert "Traceback" not in server.log_text()

        on_server = pull_everything(servers[0].url, "admin")
        assert pull_everything(servers[1].url, "admin") == on_server, "both servers agree"
        assert_converged(result.tablets, on_server, rounds=rounds, visits=visits)
        # The admin who pulled all along, page after page from both servers, skipped nothing.
        assert watcher.seen == {i: (c["version"], c["deleted"]) for i, c in on_server.items()}
        assert watcher.pages > 2

        expected = doctors * per_doctor * visits * rounds
        held = database.scalar("select count(*) from sync_records where collection = 'visits'")
        assert held == database.scalar("select count(*) from visits") == expected
        counter = database.scalar("select value from sync_counter")
        assert counter == database.scalar("select max(seq) from sync_records")

        # The faults happened, and both servers answered pushes and pulls.
        kinds = {e.fault.kind for e in balancer.exchanges_to(PUSH)}
        assert {"drop_response", "cut_body", "drop_request", "duplicate", "race"} <= kinds
        for path in (PUSH, PULL):
            targets = {t for e in balancer.exchanges_to(path) for t in e.targets}
            assert len(targets) == SERVERS, f"{path} went to {targets}"
        raced = [e for e in balancer.exchanges_to(PUSH) if e.fault.kind == "race"]
        assert all(len(e.answers) == 2 and e.answers[0].startswith(b"HTTP/1.1 200") for e in raced)
        for exchange in raced:
            first, second = (Exchange.body_of(a) for a in exchange.answers)
            assert _results(first) == _results(second), "both servers answered the same"
    finally:
        stop.set()
        balancer.close()
        for tablet in result.tablets if result else []:
            tablet.close()


def _results(body: bytes) -> Any:
    return json.loads(body)["results"]


def test_a_session_started_at_one_server_goes_on_at_the_other(servers: list[Served]) -> None:
    first, second = (s.url for s in servers)
    login = requests.post(
        f"{first}/api/v1/auth/login", json={"username": "d1", "password": PASSWORD}, timeout=30
    )
    assert login.status_code == 200
    tokens = login.json()
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert requests.get(f"{second}/api/v1/me", headers=bearer, timeout=30).status_code == 200
    # A pull cursor handed out by one server is good at the other.
    page = requests.get(
        f"{first}/api/v1/sync/pull", params={"limit": 1}, headers=bearer, timeout=30
    ).json()
    assert page["has_more"]
    onward = requests.get(
        f"{second}/api/v1/sync/pull",
        params={"limit": 1000, "cursor": page["cursor"]},
        headers=bearer,
        timeout=30,
    )
    assert onward.status_code == 200
    assert page["changes"][0]["id"] not in {c["id"] for c in onward.json()["changes"]}
    # Refreshed at one, signed out at the other: revoked everywhere.
    refreshed = requests.post(
        f"{second}/api/v1/auth/refresh",
        headers={"Authorization": f"Bearer {tokens['refresh_token']}"},
        timeout=30,
    )
    assert refreshed.status_code == 200
    out = requests.post(
        f"{second}/api/v1/auth/logout",
        json={"refresh_token": tokens["refresh_token"]},
        headers=bearer,
        timeout=30,
    )
    assert out.status_code == 200
    for url in (first, second):
        assert requests.get(f"{url}/api/v1/me", headers=bearer, timeout=30).status_code == 401
        again = requests.post(
            f"{url}/api/v1/auth/refresh",
            headers={"Authorization": f"Bearer {tokens['refresh_token']}"},
            timeout=30,
        )
        assert again.status_code == 401
