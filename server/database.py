"""Schema management with Alembic: `init_db` brings any database to the newest schema."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import select

from server.extensions import db
from server.models import SyncCounter

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
