"""Sign-in, tokens, revocation and the secret-key rule."""

from __future__ import annotations

import time
from typing import Any

import jwt as pyjwt
import pytest
import requests

from server.config import ConfigError
from tests.builders import PASSWORD


def test_a_wrong_password_is_refused_without_saying_which_part_was_wrong(live: Any) -> None:
    for username in ("d1", "nobody"):
        answer = requests.post(
            f"{live.url}/api/v1/auth/login",
            json={"username": username, "password": "wrong-password"},
            timeout=30,
        )
        assert answer.status_code == 401
        assert answer.json()["error"]["message"] == "wrong username or password"


def test_login_needs_a_json_object_with_both_fields(live: Any) -> None:
    answer = requests.post(f"{live.url}/api/v1/auth/login", json={"username": "d1"}, timeout=30)
    assert answer.status_code == 400
    assert "password" in answer.json()["error"]["errors"]


def test_every_sync_call_needs_a_token(live: Any) -> None:
    assert requests.get(f"{live.url}/api/v1/sync/pull", timeout=30).status_code == 401
    answer = requests.post(f"{live.url}/api/v1/sync/push", json={}, timeout=30)
    assert answer.status_code == 401 and answer.json()["error"]["code"] == "unauthorized"


def test_a_tampered_token_is_refused(api: Any) -> None:
    d1 = api("d1")
    token = d1.tokens["access_token"]
    header, payload, signature = token.split(".")
    forged = f"{header}.{payload}.{signature[:-4]}AAAA"
    answer = requests.get(d1.url("/me"), headers={"Authorization": f"Bearer {forged}"}, timeout=30)
    assert answer.status_code == 401


def test_a_token_signed_with_another_algorithm_or_none_is_refused(api: Any) -> None:
    d1 = api("d1")
    claims = pyjwt.decode(d1.tokens["access_token"], options={"verify_signature": False})
    unsigned = pyjwt.encode(claims, key=None, algorithm="none")
    other_key = pyjwt.encode(claims, key="x" * 64, algorithm="HS512")
    for token in (unsigned, other_key):
        answer = requests.get(
            d1.url("/me"), headers={"Authorization": f"Bearer {token}"}, timeout=30
        )
        assert answer.status_code == 401, token


def test_a_refresh_token_cannot_be_used_as_an_access_token(api: Any) -> None:
    d1 = api("d1")
    answer = requests.get(
        d1.url("/me"), timeout=30, headers={"Authorization": f"Bearer {d1.tokens['refresh_token']}"}
    )
    assert answer.status_code == 401


def test_refresh_gives_a_working_access_token(api: Any) -> None:
    d1 = api("d1")
    answer = requests.post(
        d1.url("/auth/refresh"),
        timeout=30,
        headers={"Authorization": f"Bearer {d1.tokens['refresh_token']}"},
    )
    assert answer.status_code == 200
    me = requests.get(
        d1.url("/me"),
        timeout=30,
        headers={"Authorization": f"Bearer {answer.json()['access_token']}"},
    )
    assert me.json()["doctor"] == "D1"


def test_logout_revokes_the_access_and_refresh_tokens(api: Any) -> None:
    d1 = api("d1")
    out = d1.http.post(
        d1.url("/auth/logout"), json={"refresh_token": d1.tokens["refresh_token"]}, timeout=30
    )
    assert out.status_code == 200
    assert d1.get("/me").status_code == 401
    assert d1.get("/me").json()["error"]["code"] == "token_revoked"
    refresh = requests.post(
        d1.url("/auth/refresh"),
        timeout=30,
        headers={"Authorization": f"Bearer {d1.tokens['refresh_token']}"},
    )
    assert refresh.status_code == 401


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_an_expired_access_token_answers_token_expired(app: Any, live: Any) -> None:
    from datetime import timedelta

    app.config["JWT_ACCESS_TOKEN_EXPIRES"] = timedelta(seconds=1)
    answer = requests.post(
        f"{live.url}/api/v1/auth/login", json={"username": "d1", "password": PASSWORD}, timeout=30
    ).json()
    time.sleep(2.1)
    expired = requests.get(
        f"{live.url}/api/v1/me",
        timeout=30,
        headers={"Authorization": f"Bearer {answer['access_token']}"},
    )
    assert expired.status_code == 401
    assert expired.json()["error"]["code"] == "token_expired"


def test_passwords_are_stored_with_scrypt_never_in_clear(app: Any) -> None:
    from sqlalchemy import select

    from server.accounts import PASSWORD_METHOD
    from server.extensions import db
    from server.models import User

    with app.app_context():
        hashes = list(db.session.scalars(select(User.password_hash)))
    assert hashes and all(h.startswith("scrypt:") and PASSWORD not in h for h in hashes)
    assert PASSWORD_METHOD.startswith("scrypt:32768:")


def test_production_mode_refuses_to_start_without_a_secret(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    from server.app import create_app

    monkeypatch.delenv("ZHUXUN_SECRET_KEY", raising=False)
    monkeypatch.setenv("ZHUXUN_ENV", "production")
    monkeypatch.setenv("ZHUXUN_DATABASE_URL", f"sqlite:///{tmp_path / 'x.sqlite3'}")
    with pytest.raises(ConfigError, match="ZHUXUN_SECRET_KEY"):
        create_app()
    monkeypatch.setenv("ZHUXUN_SECRET_KEY", "short")
    with pytest.raises(ConfigError, match="at least 32"):
        create_app()


def test_development_mode_starts_with_the_development_secret(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    from server.app import create_app
    from server.config import DEVELOPMENT_SECRET

    monkeypatch.delenv("ZHUXUN_SECRET_KEY", raising=False)
    monkeypatch.setenv("ZHUXUN_ENV", "development")
    monkeypatch.setenv("ZHUXUN_DATABASE_URL", f"sqlite:///{tmp_path / 'x.sqlite3'}")
    assert create_app().config["SECRET_KEY"] == DEVELOPMENT_SECRET
