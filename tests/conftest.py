"""Fixtures: a fresh database per test on SQLite (a real file) and on the real PostgreSQL,
the app served over real HTTP on 127.0.0.1, and an API helper that signs in."""

from __future__ import annotations

import os
import secrets
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from sqlalchemy import create_engine, text
from werkzeug.serving import make_server

from sync.batch import encode
from tests.builders import PASSWORD, USERS, small_scenario

PG_URL = os.environ.get("ZHUXUN_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A fresh schema in the real PostgreSQL, dropped afterwards; its URL."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{name}"'))
    try:
        yield name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
        admin.dispose()


def app_config(backend: str, tmp_path: Any, request: pytest.FixtureRequest) -> dict[str, Any]:
    config: dict[str, Any] = {
        "TESTING": True,
        "ZHUXUN_ENV": "test",
        "SECRET_KEY": secrets.token_urlsafe(48),
        "ZHUXUN_PASSWORD_METHOD": "scrypt:1024:8:1",
    }
    if backend == "sqlite":
        config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{tmp_path / 'zhuxun.sqlite3'}"
    else:
        schema = request.getfixturevalue("pg_schema")
        config["SQLALCHEMY_DATABASE_URI"] = PG_URL
        config["SQLALCHEMY_ENGINE_OPTIONS"] = {
            "pool_pre_ping": True,
            "connect_args": {"options": f"-c search_path={schema}"},
        }
    return config


def make_app(config: dict[str, Any], scenario: dict[str, Any] | None = None) -> Any:
    from server.app import create_app
    from server.database import add_user, init_db
    from server.extensions import db
    from server.records.importer import import_scenario

    app = create_app(config)
    with app.app_context():
        init_db()
        import_scenario(db.session, scenario or small_scenario())
        for username, role, doctor, unit in USERS:
            add_user(username, PASSWORD, role, doctor_id=doctor, unit_code=unit)
    return app


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def app_overrides() -> dict[str, Any]:
    """Extra app configuration; a test module overrides this fixture to set its own."""
    return {}


@pytest.fixture
def app(
    backend: str, tmp_path: Any, request: pytest.FixtureRequest, app_overrides: dict[str, Any]
) -> Iterator[Any]:
    application = make_app({**app_config(backend, tmp_path, request), **app_overrides})
    yield application
    from server.extensions import db

    with application.app_context():
        db.session.remove()
        db.engine.dispose()


class LiveServer:
    """The app served by werkzeug on 127.0.0.1 in a thread; stopped by the fixture."""

    def __init__(self, app: Any) -> None:
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(timeout=10)


@pytest.fixture
def live(app: Any) -> Iterator[LiveServer]:
    server = LiveServer(app)
    yield server
    server.stop()


class Api:
    """A signed-in HTTP client of the live server."""

    def __init__(self, base: str, username: str) -> None:
        self.base = base
        self.username = username
        self.http = requests.Session()
        answer = self.http.post(
            f"{base}/api/v1/auth/login",
            json={"username": username, "password": PASSWORD},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        self.tokens = answer.json()
        self.http.headers["Authorization"] = f"Bearer {self.tokens['access_token']}"
        self.device_id = f"dev-{username}"

    def url(self, path: str) -> str:
        return f"{self.base}/api/v1{path}"

    def push_raw(self, body: Any, *, gzip: bool = False, **kwargs: Any) -> requests.Response:
        if gzip:
            return self.http.post(
                self.url("/sync/push"),
                data=encode(body),
                headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
                timeout=60,
                **kwargs,
            )
        return self.http.post(self.url("/sync/push"), json=body, timeout=60, **kwargs)

    def push(
        self,
        *changes: dict[str, Any],
        batch_id: str | None = None,
        sent_at: str | None = None,
        gzip: bool = False,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "device_id": self.device_id,
            "batch_id": batch_id or uuid.uuid4().hex,
            "changes": list(changes),
        }
        if sent_at:
            body["sent_at"] = sent_at
        answer = self.push_raw(body, gzip=gzip)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def pull_all(
        self, cursor: str | None = None, limit: int = 500
    ) -> tuple[list[dict[str, Any]], str]:
        changes: list[dict[str, Any]] = []
        while True:
            params: dict[str, Any] = {"limit": limit}
            if cursor:
                params["cursor"] = cursor
            answer = self.http.get(self.url("/sync/pull"), params=params, timeout=60)
            assert answer.status_code == 200, answer.text
            page = answer.json()
            changes.extend(page["changes"])
            cursor = page["cursor"]
            if not page["has_more"]:
                return changes, cursor

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.http.get(self.url(path), timeout=30, **kwargs)

    def put(self, path: str, body: Any) -> requests.Response:
        return self.http.put(self.url(path), json=body, timeout=30)


@pytest.fixture
def api(live: LiveServer) -> Any:
    """`api("d1")` signs in as that user of the small scenario."""
    return lambda username: Api(live.url, username)
