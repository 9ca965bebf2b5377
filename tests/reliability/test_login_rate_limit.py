"""Login is throttled per client address and username (flask-limiter), in the one envelope."""

from __future__ import annotations

from typing import Any

import requests

from tests.builders import PASSWORD
from tests.reliability.support import sqlite_unless_long

LOGIN = "/api/v1/auth/login"


def _login(live: Any, username: str, password: str) -> requests.Response:
    return requests.post(
        f"{live.url}{LOGIN}", json={"username": username, "password": password}, timeout=30
    )


@sqlite_unless_long
def test_the_eleventh_login_attempt_in_a_minute_is_refused_in_the_error_envelope(
    live: Any,
) -> None:
    statuses = [_login(live, "d1", "wrong-password-guess").status_code for _ in range(10)]
    assert statuses == [401] * 10
    throttled = _login(live, "d1", "wrong-password-guess")
    assert throttled.status_code == 429
    error = throttled.json()["error"]
    assert error["code"] == "rate_limited"
    assert error["message_zh"] == "尝试次数过多，请稍后再试"
    assert int(throttled.headers["Retry-After"]) > 0
    # Even the right password waits: the limit is on attempts, not on failures.
    assert _login(live, "d1", PASSWORD).status_code == 429


@sqlite_unless_long
def test_the_limit_is_per_username_so_a_neighbour_at_the_same_clinic_still_signs_in(
    live: Any,
) -> None:
    for _ in range(11):
        _login(live, "d1", "wrong-password-guess")
    assert _login(live, "d1", PASSWORD).status_code == 429
    assert _login(live, "d2", PASSWORD).status_code == 200


@sqlite_unless_long
def test_other_endpoints_are_not_throttled(api: Any) -> None:
    d1 = api("d1")
    statuses = {d1.get("/me").status_code for _ in range(30)}
    assert statuses == {200}


def test_the_limit_and_its_store_come_from_the_environment(monkeypatch: Any, tmp_path: Any) -> None:
    from server.app import create_app

    monkeypatch.setenv("ZHUXUN_RATELIMIT_STORAGE_URI", "memory://")
    monkeypatch.setenv("ZHUXUN_LOGIN_RATE_LIMIT", "3 per minute")
    app = create_app(
        {
            "TESTING": True,
            "ZHUXUN_ENV": "test",
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'z.sqlite3'}",
        }
    )
    from server.database import init_db
    from server.extensions import db

    with app.app_context():
        init_db()
    try:
        client = app.test_client()
        statuses = [
            client.post(LOGIN, json={"username": "x", "password": "y"}).status_code
            for _ in range(4)
        ]
        assert statuses == [401, 401, 401, 429]
        assert app.config["RATELIMIT_STORAGE_URI"] == "memory://"
    finally:
        with app.app_context():
            db.engine.dispose()
