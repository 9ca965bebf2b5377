"""`/metrics` and `/health/live`, `/health/ready` (server/metrics.py, server/api/monitoring.py): a scrape after a
push shows its counters; failed sign-ins and the database's state are there; readiness
tells a database behind the migrations apart; under gunicorn's several workers every
scrape adds up every worker's counts."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from tests.builders import PASSWORD, make_change, visit_data
from tests.conftest import app_config
from tests.reliability.support import Fleet, Served, prepare_database, served_url


def scrape(get: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a /metrics answer, by name and labels."""
    answer = get("/metrics")
    assert answer.status_code == 200
    content_type = answer.headers["Content-Type"]
    assert content_type.startswith("text/plain; version=")
    body = answer.get_data(as_text=True) if hasattr(answer, "get_data") else answer.text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
    }


def sign_in(client: Any, username: str) -> dict[str, str]:
    answer = client.post("/api/v1/auth/login", json={"username": username, "password": PASSWORD})
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return {"Authorization": f"Bearer {answer.get_json()['access_token']}"}


PUSHES_OK = ("zhuxun_sync_pushes_total", (("outcome", "ok"),))
PUSH_COUNT = ("zhuxun_sync_push_seconds_count", ())


def accepted(collection: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return (
        "zhuxun_sync_records_total",
        (("code", ""), ("collection", collection), ("status", "accepted")),
    )


def test_a_scrape_after_a_push_shows_its_counters(app: Any) -> None:
    client = app.test_client()
    before = scrape(client.get)
    headers = sign_in(client, "d1")
    bad = make_change(visit_data(patients=-3))
    body = {
        "device_id": "tab-1",
        "batch_id": "b-metrics",
        "changes": [make_change(), make_change(), bad],
    }
    answer = client.post("/api/v1/sync/push", json=body, headers=headers)
    assert answer.status_code == 200
    assert client.get("/api/v1/sync/pull", headers=headers).status_code == 200
    after = scrape(client.get)

    def grew(key: Any) -> float:
        return after.get(key, 0) - before.get(key, 0)

    assert grew(PUSHES_OK) == 1
    assert grew(PUSH_COUNT) == 1
    assert grew(accepted("visits")) == 2
    rejected = {
        dict(k[1])["code"]: grew(k)
        for k in after
        if k[0] == "zhuxun_sync_records_total" and ("status", "rejected") in k[1] and grew(k)
    }
    assert rejected == {"validation_failed": 1}
    assert grew(("zhuxun_sync_pulls_total", (("outcome", "ok"),))) == 1
    assert grew(("zhuxun_sync_pull_seconds_count", ())) == 1
    # The database's state, read at scrape time.
    assert ("zhuxun_queue_depth", (("queue", "webhook"),)) in after
    assert ("zhuxun_queue_depth", (("queue", "evaluation"),)) in after
    assert after[("zhuxun_open_conflicts", ())] == 0
    assert "# TYPE zhuxun_open_flags gauge" in client.get("/metrics").get_data(as_text=True)
    assert after[("zhuxun_devices", (("state", "active"),))] >= 1


def test_failed_sign_ins_are_counted_by_where_they_came_from(app: Any) -> None:
    client = app.test_client()
    key = ("zhuxun_login_failures_total", (("via", "api"),))
    before = scrape(client.get).get(key, 0)
    for _ in range(2):
        answer = client.post("/api/v1/auth/login", json={"username": "d1", "password": "wrong!"})
        assert answer.status_code == 401
    assert scrape(client.get)[key] == before + 2


def test_liveness_asks_nothing_and_readiness_checks_database_and_migrations(app: Any) -> None:
    from server.extensions import db

    client = app.test_client()
    assert client.get("/health/live").get_json() == {"status": "ok"}
    ready = client.get("/health/ready")
    assert ready.status_code == 200
    assert ready.get_json() == {
        "status": "ready",
        "checks": {"database": "ok", "migrations": "current"},
    }
    with app.app_context():
        db.session.execute(text("UPDATE alembic_version SET version_num = '0001'"))
        db.session.commit()
    behind = client.get("/health/ready")
    assert behind.status_code == 503
    state = behind.get_json()
    assert state["status"] == "not_ready"
    assert state["checks"]["migrations"].startswith("at 0001, head is ")
    assert "zhuxun init-db" in state["checks"]["migrations"]
    assert client.get("/health/live").status_code == 200  # alive all the same


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite"])
def test_under_several_gunicorn_workers_every_scrape_counts_every_push(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    database = prepare_database(app_config(backend, tmp_path, request), Fleet(doctors=1))
    served = Served(served_url(database), tmp_path / "serve.log", workers=3, threads=1).start()
    pushes = 12

    def push(n: int) -> int:
        with requests.Session() as http:  # a connection of its own, to whichever worker
            login = http.post(
                f"{served.url}/api/v1/auth/login",
                json={"username": "d1", "password": PASSWORD},
                timeout=30,
            )
            assert login.status_code == 200, login.text
            answer = http.post(
                f"{served.url}/api/v1/sync/push",
                json={"device_id": f"tab-{n}", "batch_id": f"b{n}", "changes": [make_change()]},
                headers={"Authorization": f"Bearer {login.json()['access_token']}"},
                timeout=30,
            )
            return answer.status_code

    try:
        # Concurrent requests: a sync worker answers one at a time, so they spread.
        with ThreadPoolExecutor(max_workers=6) as pool:
            assert list(pool.map(push, range(pushes))) == [200] * pushes
        seen = set()
        for _ in range(9):
            with requests.Session() as http:
                samples = scrape(
                    lambda path, http=http: http.get(f"{served.url}{path}", timeout=30)
                )
            seen.add(samples[PUSHES_OK])
        assert seen == {pushes}, served.log_text()[-2000:]
        found = re.search(r"metrics of every worker gathered in (\S+)", served.log_text())
        assert found, served.log_text()[-2000:]
        # More than one worker counted pushes: the totals above are sums over processes.
        assert len(list(Path(found[1]).glob("counter_*.db"))) >= 2
    finally:
        served.stop()
