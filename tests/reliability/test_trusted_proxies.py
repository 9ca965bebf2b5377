"""Behind a load balancer the login throttle keys on the real client address: with
ZHUXUN_TRUSTED_PROXIES=n the app trusts the last n entries of X-Forwarded-For (werkzeug's
ProxyFix); by default it trusts none, so a client cannot pick its own address."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from server.config import ConfigError
from tests.builders import PASSWORD
from tests.reliability.support import sqlite_unless_long

LOGIN = "/api/v1/auth/login"
WRONG = "wrong-password-guess"


def login_from(live: Any, forwarded_for: str, password: str = WRONG) -> int:
    return requests.post(
        f"{live.url}{LOGIN}",
        json={"username": "d1", "password": password},
        headers={"X-Forwarded-For": forwarded_for},
        timeout=30,
    ).status_code


@sqlite_unless_long
def test_without_trusted_proxies_x_forwarded_for_is_ignored(live: Any) -> None:
    # Each attempt claims another address; all of them count against the peer's.
    statuses = [login_from(live, f"203.0.113.{n}") for n in range(11)]
    assert statuses == [401] * 10 + [429]
    assert login_from(live, "198.51.100.7", PASSWORD) == 429


class TestBehindOneProxy:
    @pytest.fixture
    def app_overrides(self) -> dict[str, Any]:
        return {"ZHUXUN_TRUSTED_PROXIES": 1}

    @sqlite_unless_long
    def test_the_throttle_counts_per_forwarded_client(self, live: Any) -> None:
        statuses = [login_from(live, "203.0.113.5") for _ in range(11)]
        assert statuses == [401] * 10 + [429]
        # Another clinic behind the same load balancer signs in as the same doctor.
        assert login_from(live, "198.51.100.7", PASSWORD) == 200

    @sqlite_unless_long
    def test_a_client_cannot_escape_by_prepending_addresses(self, live: Any) -> None:
        # The proxy appends the address it saw; only that last entry is trusted.
        statuses = [login_from(live, f"10.9.9.{n}, 203.0.113.5") for n in range(11)]
        assert statuses == [401] * 10 + [429]


@pytest.mark.parametrize("value", ["-1", "two"])
def test_a_bad_number_of_trusted_proxies_stops_the_server(
    monkeypatch: Any, tmp_path: Any, value: str
) -> None:
    from server.app import create_app

    monkeypatch.setenv("ZHUXUN_TRUSTED_PROXIES", value)
    with pytest.raises(ConfigError, match="ZHUXUN_TRUSTED_PROXIES"):
        create_app(
            {
                "TESTING": True,
                "ZHUXUN_ENV": "test",
                "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'z.sqlite3'}",
            }
        )
