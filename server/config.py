"""Configuration in layers (flaskr's pattern): defaults → environment → test override."""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

from sync.protocol import (
    DEFAULT_MAX_BATCH_CHANGES,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_PULL_BYTES,
)

ENV_PREFIX = "ZHUXUN_"


class ConfigError(RuntimeError):
    """The server cannot start with this configuration; the message says what to set."""


def _int_env(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {raw!r}") from None


def from_environment(instance_path: str) -> dict[str, Any]:
    """Settings read from ZHUXUN_* variables, with their defaults."""
    mode = os.environ.get("ZHUXUN_ENV", "production")
    default_db = f"sqlite:///{os.path.join(instance_path, 'zhuxun.sqlite3')}"
    return {
        "ZHUXUN_ENV": mode,
        "SQLALCHEMY_DATABASE_URI": os.environ.get("ZHUXUN_DATABASE_URL") or default_db,
        "SECRET_KEY": os.environ.get("ZHUXUN_SECRET_KEY"),
        "JWT_ACCESS_TOKEN_EXPIRES": timedelta(seconds=_int_env("ZHUXUN_JWT_ACCESS_SECONDS", 900)),
        "JWT_REFRESH_TOKEN_EXPIRES": timedelta(
            seconds=_int_env("ZHUXUN_JWT_REFRESH_SECONDS", 30 * 24 * 3600)
        ),
        "ZHUXUN_MAX_BATCH_CHANGES": _int_env("ZHUXUN_MAX_BATCH_CHANGES", DEFAULT_MAX_BATCH_CHANGES),
        "MAX_CONTENT_LENGTH": _int_env("ZHUXUN_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES),
        # A pull page's JSON stops growing past this many bytes (docs/sync-protocol.md).
        "ZHUXUN_MAX_PULL_BYTES": _int_env("ZHUXUN_MAX_PULL_BYTES", DEFAULT_MAX_PULL_BYTES),
        "ZHUXUN_RULESET": os.environ.get("ZHUXUN_RULESET", "guangxi"),
        # The evaluation date of flags; empty means today in China (UTC+8).
        "ZHUXUN_RULES_AS_OF": os.environ.get("ZHUXUN_RULES_AS_OF") or None,
        # Who judges the flags a write made stale (server/evaluation_queue.py): "request",
        # the requests that find them waiting (and every pull, the caller's own), or
        # "worker", only pulls and `zhuxun worker`.
        "ZHUXUN_EVALUATION": os.environ.get("ZHUXUN_EVALUATION", "request"),
        # Reverse proxies in front of the app whose X-Forwarded-For is trusted (ProxyFix);
        # 0, the default, trusts none: the client address is the peer's.
        "ZHUXUN_TRUSTED_PROXIES": _int_env("ZHUXUN_TRUSTED_PROXIES", 0),
        # Outbound webhook (server/webhooks.py); empty URL means no delivery.
        "ZHUXUN_WEBHOOK_URL": os.environ.get("ZHUXUN_WEBHOOK_URL") or None,
        "ZHUXUN_WEBHOOK_SECRET": os.environ.get("ZHUXUN_WEBHOOK_SECRET") or None,
        "ZHUXUN_WEBHOOK_TIMEOUT": _int_env("ZHUXUN_WEBHOOK_TIMEOUT", 10),
        "ZHUXUN_WEBHOOK_MAX_ATTEMPTS": _int_env("ZHUXUN_WEBHOOK_MAX_ATTEMPTS", 8),
    }


DEFAULTS: dict[str, Any] = {
    "JWT_TOKEN_LOCATION": ["headers"],
    "JWT_ALGORITHM": "HS256",
    "JWT_DECODE_ALGORITHMS": ["HS256"],
    "JSON_SORT_KEYS": False,
    "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
}

DEVELOPMENT_SECRET = "zhuxun-development-only-secret-key-not-for-production"  # noqa: S105


def finalise(config: dict[str, Any]) -> None:
    """Check the merged configuration; fill the development secret only in development."""
    if not config.get("SECRET_KEY"):
        if config.get("ZHUXUN_ENV") in ("development", "test") or config.get("TESTING"):
            config["SECRET_KEY"] = DEVELOPMENT_SECRET
        else:
            raise ConfigError(
                "ZHUXUN_SECRET_KEY is not set. Outside development mode the server refuses to "
                "start without a signing secret: set ZHUXUN_SECRET_KEY to a long random value "
                "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(48))'`), or set "
                "ZHUXUN_ENV=development on a machine nobody else can reach."
            )
    if len(config["SECRET_KEY"]) < 32 and config.get("ZHUXUN_ENV") == "production":
        raise ConfigError("ZHUXUN_SECRET_KEY must be at least 32 characters long")
    config.setdefault("JWT_SECRET_KEY", config["SECRET_KEY"])
    _check_webhook(config)
    if config.get("ZHUXUN_EVALUATION", "request") not in ("request", "worker"):
        raise ConfigError(
            f"ZHUXUN_EVALUATION must be request or worker, not {config['ZHUXUN_EVALUATION']!r}"
        )


def _check_webhook(config: dict[str, Any]) -> None:
    url = config.get("ZHUXUN_WEBHOOK_URL")
    if not url:
        return
    if not url.startswith(("https://", "http://")):
        raise ConfigError(f"ZHUXUN_WEBHOOK_URL must be an http(s) URL, not {url!r}")
    secret = config.get("ZHUXUN_WEBHOOK_SECRET") or ""
    if len(secret) < 32:
        raise ConfigError(
            "ZHUXUN_WEBHOOK_SECRET must be set, at least 32 characters, when "
            "ZHUXUN_WEBHOOK_URL is: receivers check every payload's signature with it"
        )
