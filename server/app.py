"""The Flask application factory (flaskr's `create_app`, config in layers)."""

from __future__ import annotations

import os
from typing import Any

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Engine
from werkzeug.middleware.proxy_fix import ProxyFix

from server import config as config_module
from server.extensions import db, jwt, limiter


def _tune_sqlite(engine: Engine) -> None:
    """WAL, a busy timeout and foreign keys on every SQLite connection, and transactions
    that SQLAlchemy (not the driver) begins, so the first statement of a write transaction
    takes the write lock (SQLAlchemy's documented pysqlite recipe)."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN")


def create_app(config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__, instance_relative_config=True)
    os.makedirs(app.instance_path, exist_ok=True)
    app.config.update(config_module.DEFAULTS)
    app.config.update(config_module.from_environment(app.instance_path))
    # Login throttling (docs/reliability.md). "memory://" counts per process: with several
    # workers or app servers set a shared store, e.g. redis://host:6379/0.
    app.config["RATELIMIT_STORAGE_URI"] = (
        os.environ.get("ZHUXUN_RATELIMIT_STORAGE_URI") or "memory://"
    )
    app.config["RATELIMIT_HEADERS_ENABLED"] = True
    app.config["ZHUXUN_LOGIN_RATE_LIMIT"] = (
        os.environ.get("ZHUXUN_LOGIN_RATE_LIMIT") or "10 per minute"
    )
    if config:
        app.config.update(config)
    config_module.finalise(app.config)
    hops = app.config.get("ZHUXUN_TRUSTED_PROXIES") or 0
    if not isinstance(hops, int) or hops < 0:
        raise config_module.ConfigError(
            f"ZHUXUN_TRUSTED_PROXIES must be 0 or a number of proxies, not {hops!r}"
        )
    if hops:
        # Behind a load balancer the peer address is the proxy's; trust the last `hops`
        # entries of X-Forwarded-For (and -Proto) so the login throttle counts per client
        # (docs/reliability.md). Never on without a proxy: a client could then pick its own.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)
    from server.api.parsing import JSONProvider

    app.json = JSONProvider(app)  # total reading, servable writing (issue 13)

    db.init_app(app)
    jwt.init_app(app)
    limiter.init_app(app)
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            _tune_sqlite(db.engine)

    from server import api, web

    api.init_app(app)  # the JSON API: JWT, the one error translator, the blueprints
    web.init_app(app)  # the pages: CSRF, the session cookie, the blueprint

    @app.before_request
    def _refuse_nul_in_url() -> None:
        # PostgreSQL text cannot hold NUL; refuse it at the door rather than fail in a query.
        from flask import request

        from server.api.errors import ApiError
        from sync.protocol import ErrorCode

        values = [request.path, *(f"{k}{v}" for k, v in request.args.items(multi=True))]
        if any("\x00" in value for value in values):
            raise ApiError(
                400, ErrorCode.INVALID_REQUEST, "NUL characters are not allowed in the URL"
            )
        # The pages' forms too (issue 13): a NUL in a posted id reached a query.
        form_post = request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data")
        if form_post and any("\x00" in f"{k}{v}" for k, v in request.form.items(multi=True)):
            raise ApiError(
                400, ErrorCode.INVALID_REQUEST, "NUL characters are not allowed in a form"
            )

    @app.after_request
    def _security_headers(response: Any) -> Any:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    return app
