"""The app's database: `init_db` brings any database to the newest schema (Alembic);
`add_user` creates a user with the app's session and settings."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import generate_password_hash

from server.accounts import PASSWORD_METHOD, create_user
from server.extensions import db
from server.models import SyncCounter, User

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def init_db() -> None:
    """Run every migration not yet applied (inside an app context), then make sure the
    sync counter row exists."""
    with db.engine.begin() as connection:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    if db.session.scalar(select(SyncCounter).where(SyncCounter.id == 1)) is None:
        db.session.add(SyncCounter(id=1, value=0))
        db.session.commit()


def add_user(
    username: str,
    password: str,
    role: str,
    *,
    doctor_id: str | None = None,
    unit_code: str | None = None,
) -> User:
    """`accounts.create_user` inside an app context: the app's session and password hasher."""
    return create_user(
        db.session,
        username,
        password,
        role,
        doctor_id=doctor_id,
        unit_code=unit_code,
        hash_password=hash_password,
    )


def hash_password(password: str) -> str:
    """werkzeug's KDF with the app's method: tests lower the cost (ZHUXUN_PASSWORD_METHOD)
    to stay fast; production keeps `accounts.PASSWORD_METHOD`."""
    method = current_app.config.get("ZHUXUN_PASSWORD_METHOD") or PASSWORD_METHOD
    return generate_password_hash(password, method=method)


def ping(session: Session) -> None:
    """A round trip to the database (the health check): raises if it cannot answer."""
    session.execute(select(1))


def schema_state(session: Session) -> str:
    """ "current" when the database's schema is at the migrations' head; otherwise what it
    is at and what to run (the readiness check, server/api/monitoring.py)."""
    from alembic.script import ScriptDirectory
    from sqlalchemy import text
    from sqlalchemy.exc import SQLAlchemyError

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    try:
        current = session.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except SQLAlchemyError:  # no table: never migrated
        session.rollback()
        current = None
    if current == head:
        return "current"
    return f"at {current or 'none'}, head is {head}: run `zhuxun init-db`"
